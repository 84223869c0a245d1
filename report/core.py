"""What every sheet module uses: a Section that writes Markdown and records every number it prints,
the figure helper and the options of a run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class Options:
    """One run's choices, as a sheet module sees them."""

    sheets: tuple
    data_dir: Path | None = None
    device: str = "cpu"
    quick: bool = False


def escape_cell(text: str) -> str:
    """A table cell in GitHub-flavoured Markdown: one line, every ``|`` escaped."""
    return " ".join(str(text).split()).replace("\\|", "|").replace("|", "\\|")


def _plain(value):
    """A JSON-friendly copy of a number (tensors and numpy scalars become floats or ints)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().reshape(()).item()
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    value = float(value)
    return value if math.isfinite(value) else str(value)


@dataclass
class Section:
    """The Markdown of one sheet, block by block, and every number it printed: ``numbers[question][label]``.

    Numbers enter the text only through :meth:`num`, which formats and records them at once, so
    ``numbers.json`` holds what the page shows (at full precision). Labels listed in ``volatile``
    (timings) are kept but not compared between runs by default.
    """

    sheet: str
    title: str
    lines: list = field(default_factory=list)
    numbers: dict = field(default_factory=dict)
    volatile: list = field(default_factory=list)
    data: list = field(default_factory=list)      # provenance: (what, source) pairs
    figures: list = field(default_factory=list)

    def num(self, question: str, label: str, value, fmt: str = ".3f", *, volatile: bool = False) -> str:
        plain = _plain(value)
        bucket = self.numbers.setdefault(question, {})
        if label in bucket and bucket[label] != plain:
            raise ValueError(f"{self.sheet} {question}: {label!r} recorded twice with different values")
        bucket[label] = plain
        if volatile:
            self.volatile.append(f"{self.sheet}/{question}/{label}")
        if isinstance(plain, str):
            return plain
        return format(plain, fmt)

    def nums(self, question: str, label: str, values, fmt: str = ".3f", sep: str = ", ") -> str:
        return sep.join(self.num(question, f"{label}[{i}]", v, fmt) for i, v in enumerate(values))

    def heading(self, text: str):
        self.lines += [f"### {text}", ""]

    def text(self, text: str):
        self.lines += [" ".join(text.split("\n")), ""]

    def math(self, latex: str):
        """A display equation ($$ ... $$ on lines of their own: GitHub and markdown-it both render it)."""
        self.lines += ["$$", latex.strip(), "$$", ""]

    def table(self, header, rows):
        cells = [[escape_cell(c) for c in header]] + [[escape_cell(c) for c in row] for row in rows]
        width = len(cells[0])
        if any(len(row) != width for row in cells):
            raise ValueError(f"{self.sheet}: table rows of different widths {[len(r) for r in cells]}")
        self.lines.append("| " + " | ".join(cells[0]) + " |")
        self.lines.append("|" + "---|" * width)
        self.lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
        self.lines.append("")

    def figure(self, name: str, caption: str):
        self.figures.append(name)
        alt = caption.replace("[", "(").replace("]", ")").replace("$", "")
        self.lines += [f"![{alt}]({name})", "", f"*{caption}*", ""]

    def uses(self, what: str, source: str):
        """Provenance: which data this section used."""
        self.data.append((what, source))

    def markdown(self) -> str:
        return "\n".join(self.lines)


def save_figure(path: Path, draw, size=(6.4, 4.0)) -> str:
    """Draw on a fresh matplotlib Figure (no pyplot state) and save it as PNG."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    draw(figure)
    figure.savefig(path, dpi=100)
    return path.name


def plot_curves(figure, series: dict, xlabel, ylabel, title, log=False):
    axes = figure.subplots()
    for label, values in series.items():
        axes.plot(values, label=label)
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if log:
        axes.set_yscale("log")
    if len(series) > 1:
        axes.legend()
    axes.grid(alpha=0.3)


def file_source(path: Path) -> str:
    """``path (size)`` for the provenance block."""
    path = Path(path)
    if path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    else:
        size = path.stat().st_size
    return f"`{path}` ({human_size(size)})"


def human_size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
