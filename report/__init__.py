"""The solutions report of the course's five sheets: ``python -m report --help``.

One module per sheet (:mod:`report.ps09`, :mod:`report.ex08`, :mod:`report.moons`, :mod:`report.a7`,
:mod:`report.dl_a1`) computes through ``impl`` and writes its part of the Markdown, choosing the words
of every claim from the numbers it measured; :mod:`report.render` turns the Markdown into the page.
A run writes ``report.md``, ``index.html``, ``numbers.json`` (every printed number, keyed by sheet and
question) and the PNG figures, in a staging folder that replaces ``out`` at the end
(:mod:`report.safety` says which folders may be replaced).

Threads: these nets are small, so each process uses one torch thread (more only add synchronisation
cost, and on a loaded machine much more); the sheets run in parallel processes instead.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

from report.core import Options, Section, escape_cell
from report.safety import MARKER, ReportError, check_out, install, staging

SHEETS = ("ps09", "ex08", "moons", "a7", "dl-a1")
MODULES = {"ps09": "report.ps09", "ex08": "report.ex08", "moons": "report.moons", "a7": "report.a7",
           "dl-a1": "report.dl_a1"}
DEFAULT_OUT = "solutions-report"

__all__ = ["DEFAULT_OUT", "MARKER", "SHEETS", "ReportError", "build_report"]


class Progress:
    """A one-line progress bar on stderr: [#####.....] 3/12 name (seconds so far)."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.done, self.stream, self.start = total, 0, stream, time.perf_counter()

    def step(self, name: str):
        self.done += 1
        filled = int(20 * self.done / self.total)
        self.stream.write(f"\r[{'#' * filled}{'.' * (20 - filled)}] {self.done}/{self.total} {name:<40} "
                          f"{time.perf_counter() - self.start:6.1f}s")
        self.stream.flush()
        if self.done == self.total:
            self.stream.write("\n")


class _Silent:
    def step(self, name: str):
        pass


def title(sheet: str) -> str:
    return importlib.import_module(MODULES[sheet]).TITLE


def slug(text: str) -> str:
    """The heading anchor that both GitHub and the page (mdit-py-plugins' anchors) give a heading."""
    from mdit_py_plugins.anchors.index import slugify

    return slugify(text)


def _worker_init(threads: int):
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _run_sheet(sheet: str, opts: Options, work: Path, progress=None) -> Section:
    import matplotlib

    matplotlib.use("Agg")
    import torch

    start = time.perf_counter()
    section = importlib.import_module(MODULES[sheet]).build(opts, work, progress or _Silent())
    section.seconds = time.perf_counter() - start
    section.threads = torch.get_num_threads()   # as the sheet ran, for the provenance block
    return section


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _run(sheets, opts: Options, work: Path, jobs: int, threads: int, stream) -> list[Section]:
    import torch

    if jobs <= 1:
        steps = sum(importlib.import_module(MODULES[s]).STEPS for s in sheets)
        progress = Progress(steps, stream)
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return [_run_sheet(sheet, opts, work, progress) for sheet in sheets]
        finally:
            torch.set_num_threads(previous)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    progress = Progress(len(sheets), stream)
    context = multiprocessing.get_context("spawn")
    # the slowest sheets first, so that the last one to finish is a short one
    order = sorted(sheets, key=["moons", "dl-a1", "ex08", "ps09", "a7"].index)
    with ProcessPoolExecutor(max_workers=min(jobs, len(sheets)), mp_context=context, initializer=_worker_init,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(_run_sheet, sheet, opts, work): sheet for sheet in order}
        done = {}
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            progress.step(f"{futures[future]} ({done[futures[future]].seconds:.1f} s)")
    return [done[sheet] for sheet in sheets]


def provenance(sections, opts: Options, *, jobs: int, threads: int, seconds: float) -> dict:
    import numpy
    import torch

    import impl

    device = opts.device
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name(device)})"
    else:
        device += f" ({platform.machine()}, {_cpus()} cores available)"
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": opts.quick,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": device,
        "threads": sorted({getattr(s, "threads", threads) for s in sections}),
        "processes": jobs,
        "implementation": str(Path(impl.__file__).parent),
        "data_dir": str(opts.data_dir) if opts.data_dir else None,
        "seconds": round(seconds, 1),
        "sheet_seconds": {s.sheet: round(getattr(s, "seconds", 0.0), 1) for s in sections},
        "data": {s.sheet: [list(pair) for pair in s.data] for s in sections},
    }


def _provenance_markdown(meta: dict, sections) -> list[str]:
    rows = [("date", meta["date"]),
            ("run", "**quick** (`--quick`: fewer epochs and seeds, a smoke test, not the report's numbers)"
             if meta["quick"] else "full"),
            ("versions", f"Python {meta['python']}, torch {meta['torch']}, numpy {meta['numpy']}"),
            ("device", meta["device"]),
            ("threads", f"{' or '.join(map(str, meta['threads']))} torch thread(s) per process, "
                        f"{meta['processes']} process(es)"),
            ("implementation", f"`{meta['implementation']}`"),
            ("time", f"{meta['seconds']} s in all; per sheet "
             + ", ".join(f"{k} {v} s" for k, v in meta["sheet_seconds"].items()))]
    for section in sections:
        for what, source in section.data:
            rows.append((f"data: {section.sheet} {what}", source))
    if meta["data_dir"] and not any(meta["data_dir"] in source for s in sections for _, source in s.data):
        rows.append(("data: --data-dir", f"`{meta['data_dir']}` held no usable file; every section used its "
                                         f"embedded data"))
    lines = ["## Provenance", "", "| item | value |", "|---|---|"]
    lines += [f"| {escape_cell(k)} | {escape_cell(v)} |" for k, v in rows]
    return [*lines, ""]


def markdown(sections, meta: dict) -> str:
    head = "Solutions report" + (" (quick run)" if meta["quick"] else "")
    lines = [f"# {head}", ""]
    if meta["quick"]:
        lines += ["**A `--quick` run**: fewer epochs and seeds than the sheets ask for; its numbers and answers "
                  "are a smoke test, not the report.", ""]
    lines += ["Contents: " + " · ".join(f"[{s.title}](#{slug(s.title)})" for s in sections)
              + " · [Provenance](#provenance)", ""]
    for section in sections:
        lines += [f"## {section.title}", "", section.markdown()]
    lines += _provenance_markdown(meta, sections)
    return "\n".join(lines).rstrip() + "\n"


def validate(sheets, device: str, data_dir) -> tuple:
    import torch

    sheets = tuple(sheets)
    unknown = [s for s in sheets if s not in SHEETS]
    if unknown or not sheets:
        raise ReportError(f"sheets must be a non-empty selection of {list(SHEETS)}, got {list(sheets)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ReportError(f"device {device!r} asked for, but CUDA is not available")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ReportError(f"--data-dir {data_dir}: no such folder")
    return tuple(s for s in SHEETS if s in sheets)


def build_report(out=DEFAULT_OUT, sheets=SHEETS, *, data_dir=None, device: str = "cpu", quick: bool = False,
                 force: bool = False, jobs: int | None = None, threads: int = 1, stream=sys.stderr) -> Path:
    """Write the report (index.html, report.md, numbers.json, PNG figures) to ``out`` and return it.

    ``out`` must be new, empty or a previous report (``force`` allows any other folder, but never the
    working directory, its parents, home or a repository). ``jobs`` processes (default: one per sheet
    up to the available cores) each use ``threads`` torch threads.
    """
    from report.render import to_html

    sheets = validate(sheets, device, data_dir)
    target = check_out(out, force=force)
    jobs = min(len(sheets), _cpus()) if jobs is None else jobs
    opts = Options(sheets, Path(data_dir).resolve() if data_dir else None, device, quick)
    work = staging(target)
    try:
        start = time.perf_counter()
        sections = _run(sheets, opts, work, jobs, threads, stream)
        meta = provenance(sections, opts, jobs=max(min(jobs, len(sheets)), 1), threads=threads,
                          seconds=time.perf_counter() - start)
        text = markdown(sections, meta)
        (work / "report.md").write_text(text, encoding="utf-8")
        (work / "index.html").write_text(to_html(text, text.splitlines()[0][2:]), encoding="utf-8")
        numbers = {"meta": meta, "numbers": {s.sheet: s.numbers for s in sections},
                   "volatile": sorted(v for s in sections for v in s.volatile)}
        (work / "numbers.json").write_text(json.dumps(numbers, indent=1) + "\n", encoding="utf-8")
        if opts.data_dir and not any(str(opts.data_dir) in source for s in sections for _, source in s.data):
            stream.write(f"note: --data-dir {opts.data_dir} held no file the chosen sheets use; every section used "
                         f"its embedded data (see the provenance block)\n")
        return install(work, target, force=force, meta={"date": meta["date"], "quick": quick})
    finally:
        if work.exists():
            import shutil

            shutil.rmtree(work, ignore_errors=True)
