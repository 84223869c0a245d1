"""The solutions report (``python -m report``, the project's main job).

Default run: every claim sentence against the numbers it is generated from (and counter-cases where
the claim would be false), the Markdown (tables parsed by markdown-it-py) and the page, the output
folder's safety, numbers.json and --compare, on a quick one-sheet report of a few seconds. Marked slow:
the quick and the full report of all five sheets. The chromium check skips where chromium is absent."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("markdown_it", reason="the report extra (markdown-it-py, mdit-py-plugins, latex2mathml)")

import report
from report import compare as cmp
from report import core, dl_a1, ex08, moons, ps09
from report.safety import MARKER, ReportError, check_out

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {
    "ps09": ["ps09_sigmoid.png", "ps09_loss_curve.png", "ps09_train_val.png", "ps09_momentum.png"],
    "ex08": ["ex08_predictions.png", "ex08_bound.png"],
    "moons": ["moons_grad_norms.png", "moons_manual_loss.png", "moons_boundary.png"],
    "a7": ["a7_depth_study.png", "a7_kernels.png", "a7_cnn.png"],
    "dl-a1": ["dl_a1_housing.png", "dl_a1_jacobian_timing.png", "dl_a1_handbuilt.png", "dl_a1_init_before.png",
              "dl_a1_init_after.png", "dl_a1_init_accuracy.png", "dl_a1_gd.png"],
}
OUTPUTS = {"index.html", "report.md", "numbers.json", MARKER}


def assert_non_empty_png(path):
    __tracebackhide__ = True
    from matplotlib.image import imread

    assert path.is_file(), f"{path.name} was not produced"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    pixels = imread(path)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100, f"{path.name} is too small: {pixels.shape}"
    assert float(np.std(pixels[..., :3])) > 0.01, f"{path.name} is blank"


def tables(markdown: str) -> list[list[list[str]]]:
    """Every table as markdown-it-py (GitHub-flavoured tables) parses it: rows of cell texts."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    found, rows, row = [], None, None
    for token in tokens:
        if token.type == "table_open":
            rows = []
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and row is not None:
            row.append(token.content)
        elif token.type == "tr_close":
            rows.append(row)
            row = None
        elif token.type == "table_close":
            found.append(rows)
    return found


def source_tables(markdown: str) -> list[list[str]]:
    """The tables as written: consecutive lines starting with '|'."""
    blocks, block = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            blocks.append(block)
            block = []
    return blocks


def check_markdown(markdown: str):
    __tracebackhide__ = True
    written, parsed = source_tables(markdown), tables(markdown)
    assert len(parsed) == len(written), f"{len(written)} tables written, {len(parsed)} parse as tables"
    for rows, lines in zip(parsed, written, strict=True):
        assert len(rows) == len(lines) - 1, f"table {lines[0]!r}: {len(lines) - 1} rows written, {len(rows)} parsed"
        width = len(rows[0])
        assert all(len(r) == width for r in rows), f"table {lines[0]!r}: rows of different widths"
        for line in lines:
            cells = len(re.split(r"(?<!\\)\|", line.strip())) - 2
            assert cells == width, f"{line!r}: {cells} cells written in a table of {width} columns (unescaped |?)"


NUMBER = re.compile(r"^-?\d+(\.\d+)?(e[+-]?\d+)?$")
FORMATS = (".3f", ".5f", ".4f", ".2f", ".1e", ".4g", ".3g", "d")


def assert_table_numbers_recorded(markdown: str, numbers: dict):
    """Every number in a table cell (after the label column) is one of numbers.json's, as formatted."""
    __tracebackhide__ = True
    recorded = set()
    for questions in numbers["numbers"].values():
        for labels in questions.values():
            for value in labels.values():
                for fmt in FORMATS:
                    try:
                        recorded.add(format(value, fmt))
                    except (TypeError, ValueError):
                        pass
    body = markdown.split("## Provenance")[0]
    for table in tables(body):
        for row in table[1:]:
            for cell in row[1:]:
                for token in cell.split():
                    if NUMBER.match(token):
                        assert token in recorded, f"{token!r} (row {row}) is printed but not in numbers.json"


def check_report(out: Path, sheets=report.SHEETS):
    html = (out / "index.html").read_text(encoding="utf-8")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for sheet in sheets:
        title = report.title(sheet)
        assert f'id="{report.slug(title)}"' in html, f"the page has no anchor for {sheet}"
        assert f"](#{report.slug(title)})" in markdown, f"the contents do not link {sheet}"
        for name in FIGURES[sheet]:
            assert_non_empty_png(out / name)
            assert name in html and name in markdown, f"{name} is not linked from the report"
    assert 'id="provenance"' in html and "](#provenance)" in markdown
    produced = {p.name for p in out.iterdir()}
    assert produced == OUTPUTS | {n for s in sheets for n in FIGURES[s]}, f"unexpected files {produced}"
    check_markdown(markdown)
    assert "$" not in re.sub(r"<math.*?</math>", "", html, flags=re.S), "math left unrendered in the page"
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org/1998/Math/MathML", ""), \
        "the page loads nothing from the network"
    numbers = json.loads((out / "numbers.json").read_text(encoding="utf-8"))
    assert set(numbers["numbers"]) == set(sheets)
    assert_table_numbers_recorded(markdown, numbers)
    return html, markdown, numbers


# ----------------------------------------------------------------------------- one quick sheet (a few seconds)
@pytest.fixture(scope="module")
def quick_a7(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    return report.build_report(out, ("a7",), quick=True, jobs=1, stream=io.StringIO())


def test_quick_sheet_report_is_complete(quick_a7):
    html, markdown, numbers = check_report(quick_a7, ("a7",))
    assert markdown.startswith("# Solutions report (quick run)"), "a --quick report says so in its title"
    assert "<title>Solutions report (quick run)</title>" in html
    assert "<math" in html, "math is rendered as MathML"
    meta = numbers["meta"]
    assert meta["quick"] is True and meta["threads"] == [1] and meta["torch"] and meta["numpy"] and meta["python"]
    assert "## Provenance" in markdown and "data: a7 1" in markdown and "breast-cancer" in markdown


def test_every_printed_number_is_in_numbers_json(impl, quick_a7):
    numbers = json.loads((quick_a7 / "numbers.json").read_text())["numbers"]["a7"]
    markdown = (quick_a7 / "report.md").read_text()
    for eps in (0.1, 0.01, 1e-3, 1e-6):
        expected = float(impl.saturation_threshold(eps))
        assert numbers["2"][f"threshold eps={eps:g}"] == pytest.approx(expected)
        assert f"| {eps:g} | {expected:.3f} |" in markdown
    accuracies = numbers["4"]
    assert len(accuracies) == 5 and all(0 <= v <= 1 for v in accuracies.values())


def test_numbers_match_an_independent_computation(quick_a7):
    numbers = json.loads((quick_a7 / "numbers.json").read_text())["numbers"]["a7"]
    # sigma'(s) = eps solved by hand: sigma(1 - sigma) = eps, sigma = (1 + sqrt(1 - 4 eps)) / 2
    for eps in (0.1, 0.01):
        sigma = (1 + np.sqrt(1 - 4 * eps)) / 2
        assert numbers["2"][f"threshold eps={eps:g}"] == pytest.approx(np.log(sigma / (1 - sigma)), rel=1e-6)


# ----------------------------------------------------------------------------- Markdown and page
def test_table_cells_escape_pipes_and_parse():
    s = core.Section("x", "X")
    s.table(["a | b", "c"], [["|x|", "1"], ["y", "2 | 3"]])
    markdown = s.markdown()
    check_markdown(markdown)
    assert tables(markdown)[0] == [["a | b", "c"], ["|x|", "1"], ["y", "2 | 3"]]


def test_an_unescaped_pipe_breaks_the_check():
    with pytest.raises(AssertionError):
        check_markdown("| a | b |\n|---|---|\n| x | y | z |\n")


def test_renderer_math_anchors_and_tables():
    from report.render import to_html

    page = to_html("## ex08: PyTorch introduction\n\nInline $\\sigma'(x) \\le 1/4$.\n\n$$\nw^* = X^+ y\n$$\n\n"
                   "| a | b |\n|---|---|\n| 1 \\| 2 | 3 |\n", "t")
    assert 'id="ex08-pytorch-introduction"' in page
    assert page.count("<math") == 2 and 'display="block"' in page and "$" not in page
    assert "<td>1 | 2</td>" in page


def test_impl_no_longer_exports_the_report(impl):
    assert not hasattr(impl, "build_report"), "the report is not part of the solutions' interface"
    process = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "report", "--help"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 0 and "Warning" not in process.stderr, process.stderr


# ----------------------------------------------------------------------------- output safety
def cli(argv, capsys):
    from report.__main__ import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines()


def bad_out_cases(tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "notes").mkdir(parents=True)
    (work / "notes" / "mine.txt").write_text("keep me")
    (work / "repo" / ".git").mkdir(parents=True)
    (work / "a_file").write_text("x")
    (work / "previous").mkdir()
    (work / "previous" / MARKER).write_text("{}")
    (work / "previous" / "notes.txt").write_text("mine")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return {
        "the working directory": (".", "working directory"),
        "a parent of the working directory": ("..", "parent of the working directory"),
        "home": (str(home), "home folder"),
        "a repository": ("repo", "repository"),
        "a folder with other files": ("notes", "--force"),
        "an existing file": ("a_file", "is a file"),
        "a path under a file": ("a_file/out", "is a file"),
        "a filesystem root": ("/", "a filesystem root"),
        "a previous report with a file added": ("previous", "notes.txt"),
        "a name with a NUL byte": ("bad\0name", "not a usable path"),
        "a name too long": ("x" * 300, "not a usable path"),
    }


@pytest.mark.parametrize("case", ["the working directory", "a parent of the working directory", "home",
                                  "a repository", "a folder with other files", "an existing file",
                                  "a path under a file", "a filesystem root", "a previous report with a file added",
                                  "a name with a NUL byte", "a name too long"])
def test_bad_out_is_refused_in_one_line_and_nothing_is_deleted(case, tmp_path, monkeypatch, capsys):
    out, reason = bad_out_cases(tmp_path, monkeypatch)[case]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, err = cli(["--out", out, "--sheets", "a7", "--quick", "--jobs", "1"], capsys)
    assert code == 2 and len(err) == 1 and reason in err[0], err
    assert "another --out" in err[0] or "choose a new folder" in err[0], err
    assert "Traceback" not in "\n".join(err)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "something was deleted"


@pytest.mark.parametrize("case", ["the working directory", "a parent of the working directory", "home",
                                  "a repository"])
def test_force_never_replaces_cwd_parents_home_or_a_repository(case, tmp_path, monkeypatch):
    out, _ = bad_out_cases(tmp_path, monkeypatch)[case]
    with pytest.raises(ReportError):
        check_out(out, force=True)


def test_force_replaces_a_foreign_folder_but_not_one_holding_a_repository(tmp_path, monkeypatch):
    bad_out_cases(tmp_path, monkeypatch)
    assert check_out("notes", force=True) == (tmp_path / "work" / "notes").resolve()
    (tmp_path / "work" / "notes" / "deep" / "project" / ".git").mkdir(parents=True)
    with pytest.raises(ReportError, match="holds a repository"):
        check_out("notes", force=True)


def test_unwritable_out_is_one_line(tmp_path, capsys):
    code, err = cli(["--out", "/proc/no-report-here/out", "--sheets", "a7", "--quick"], capsys)
    assert code == 2 and len(err) == 1 and "/proc" in err[0], err


def test_new_empty_and_previous_reports_are_accepted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / MARKER).write_text("{}")
    (previous / "stale.png").write_bytes(b"old")
    for name in ("new/deeper", "empty", "previous"):
        assert check_out(name) == (tmp_path / name).resolve()


def test_rerun_over_a_previous_report_leaves_nothing_stale(quick_a7, tmp_path):
    out = tmp_path / "again"
    report.build_report(out, ("a7",), quick=True, jobs=1, stream=io.StringIO())
    (out / "stale.png").write_bytes(b"old")
    report.build_report(out, ("a7",), quick=True, jobs=1, stream=io.StringIO())
    assert {p.name for p in out.iterdir()} == OUTPUTS | set(FIGURES["a7"])
    assert not list(tmp_path.glob(".again-*")), "a staging folder was left behind"


def test_command_line_errors_without_a_traceback(tmp_path):
    for argv in (["--out", "."],):
        process = subprocess.run([sys.executable, "-m", "report", *argv, "--quick"], cwd=tmp_path,
                                 capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT),
                                                                                   "PATH": "/usr/bin:/bin"})
        assert process.returncode == 2 and "Traceback" not in process.stderr, process.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs", [{"sheets": ("ps10",)}, {"sheets": ()}, {"device": "cuda"},
                                    {"data_dir": "/no/such/folder"}], ids=str)
def test_bad_options_are_refused(tmp_path, kwargs):
    import torch

    if kwargs.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here, so the refusal cannot be observed")
    sheets = kwargs.pop("sheets", ("a7",))
    with pytest.raises(ReportError):
        report.build_report(tmp_path / "out", sheets, **kwargs)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- numbers.json and --compare
def test_compare_flags_a_changed_solution_and_nothing_between_equal_runs(quick_a7, tmp_path, monkeypatch, capsys):
    import importlib

    impl = importlib.import_module("impl")  # what the report runs: the reference, changed here on purpose
    same = report.build_report(tmp_path / "same", ("a7",), quick=True, jobs=1, stream=io.StringIO())
    assert cmp.compare(cmp.load(quick_a7), cmp.load(same)) == [], "two runs of the same code agree"
    original = impl.saturation_threshold
    monkeypatch.setattr(impl, "saturation_threshold", lambda eps: original(eps) * 1.01)
    code, _ = cli(["--out", str(tmp_path / "changed"), "--sheets", "a7", "--quick", "--jobs", "1",
                   "--compare", str(quick_a7)], capsys)
    assert code == 1
    lines = cmp.compare(cmp.load(quick_a7), cmp.load(tmp_path / "changed"))
    assert sorted(line.split(":")[0] for line in lines) == sorted(
        f"changed  a7/2/threshold eps={eps:g}" for eps in (0.1, 0.01, 1e-3, 1e-6)), lines


def test_compare_tolerances_timings_and_missing_keys():
    old = {"numbers": {"s": {"q": {"a": 1.0, "b": 2.0, "t": 5.0, "gone": 1}}}, "volatile": ["s/q/t"]}
    new = {"numbers": {"s": {"q": {"a": 1.0 + 1e-5, "b": 2.1, "t": 9.0, "new": 3}}}, "volatile": ["s/q/t"]}
    lines = cmp.compare(old, new)
    assert [line.split()[1].rstrip(":") for line in lines] == ["s/q/b", "s/q/gone", "s/q/new"]
    assert any("s/q/t" in line for line in cmp.compare(old, new, timings=True))
    assert cmp.compare(old, old) == []


def test_compare_of_a_folder_without_numbers_is_one_line(tmp_path, capsys):
    code, err = cli(["--out", str(tmp_path / "o"), "--compare", str(tmp_path)], capsys)
    assert code == 2 and len(err) == 1 and "numbers.json" in err[0]


# ----------------------------------------------------------------------------- the claims, from their numbers
def test_early_stopping_answer_names_each_number_with_its_label():
    text = ps09.early_stopping_answer(148, 150, last=0.24403, best=0.24404)
    assert re.search(r"last epoch's parameters \(epoch index 149\): 0\.24403; with the best-validation epoch's "
                     r"\(index 148\): 0\.24404", text)
    assert "changes little" in text
    better = ps09.early_stopping_answer(60, 150, last=0.30, best=0.27)
    assert "best-validation parameters are better on the test set by 10.0 %" in better
    worse = ps09.early_stopping_answer(60, 150, last=0.27, best=0.30)
    assert "last epoch's parameters are better on the test set by 11.1 %" in worse
    same = ps09.early_stopping_answer(149, 150, last=0.2, best=0.2)
    assert "lowest after the last epoch" in same and "changes nothing" in same


def test_momentum_separation_of_constructed_curves():
    curves = {0.0: [1.0, 1.0], 0.5: [1.0, 0.5], 0.9: [1.0, 0.25]}
    assert ps09.separation(curves, (0.0, 0.5, 0.9)) == pytest.approx(np.log(2))
    assert ps09.separation(curves, (0.0, 0.9)) == pytest.approx(np.log(4))


def test_momentum_answer_is_a_single_option_chosen_by_the_numbers():
    options = {"a": (0.0, 0.1, 0.2, 0.3), "b": (0.0, 0.5, 0.9, 1.0), "d": (0.2, 0.4, 0.6, 0.8)}
    for separations, expected in (({"a": 0.05, "b": 0.0, "d": 0.7}, "d"), ({"a": 0.8, "b": 0.0, "d": 0.3}, "a"),
                                  ({"a": 0.3, "b": 0.0, "d": 0.7}, "d")):
        choice, text = ps09.momentum_answer(options, ["a", "d"], separations)
        assert choice == expected and text.count("the answer is") == 1
        assert f"answer is ({expected}) {options[expected]}" in text and "(b)" in text.split("converge.")[0]
    choice, text = ps09.momentum_answer(options, ["b"], {"a": 0, "b": 0, "d": 0})
    assert choice == "b" and "Only (b)" in text
    choice, text = ps09.momentum_answer(options, [], {"a": 0.1, "b": 0.2, "d": 0.0})
    assert choice == "b" and "cannot decide" in text


def test_momentum_ruled_out_options_are_named_with_their_measured_curves():
    """The sentence that rules options out states what was measured, never a rule of thumb such as
    'mu < 0 blows up' (in the sheet's run mu = -1 settles)."""
    options = {"d": (0.2, 0.4), "f": (-1.0, 2.0)}
    settling = [10.0, 0.5]
    for curves, named in (({0.2: settling, 0.4: settling, -1.0: settling, 2.0: [10.0, float("nan")]},
                           "mu = 2, whose curve starts at 10 and overflows"),
                          ({0.2: settling, 0.4: settling, -1.0: [10.0, 9.0], 2.0: [10.0, float("nan")]},
                           "mu = -1, whose curve starts at 10 and ends at 9")):
        unsettled = ps09.unsettled_curves(options, ["d"], curves)
        _, text = ps09.momentum_answer(options, ["d"], {"d": 1.0, "f": 0.0}, unsettled=unsettled)
        assert named in text and "mu < 0" not in text and "blow up" not in text


def test_nn_linear_answer_follows_the_table():
    same = {"zero": {"early": (1.84, 0.53), "final": (1.72, 1.128)},
            "module": {"early": (1.84, 0.53), "final": (1.72, 1.128)},
            "linear": {"early": (1.76, 0.95), "final": (1.7201, 1.1281)}}
    text = ex08.nn_linear_answer(same)
    assert text.startswith("No, not after 2000 steps") and "differ: after 20 steps by up to 0.42" in text
    apart = {**same, "linear": {"early": (1.76, 0.95), "final": (1.70, 1.2)}}
    assert ex08.nn_linear_answer(apart).startswith("Yes, after 2000 steps the versions still differ by up to 0.072")
    equal = {k: {"early": (1.0, 2.0), "final": (1.0, 2.0)} for k in ("a", "b")}
    assert "Even after 20 steps they agree" in ex08.nn_linear_answer(equal)


def test_moons_architecture_answer_counts_the_seeds():
    acc = {(3, "sigmoid"): [0.97, 0.99, 0.88, 0.95, 0.93], (3, "relu"): [0.99, 0.99, 0.99, 0.99, 0.99],
           (10, "sigmoid"): [0.50, 0.74, 0.50, 0.91, 0.75], (10, "relu"): [0.99, 0.98, 1.0, 0.99, 0.99]}
    text = moons.architecture_answer(acc)
    assert "at depth 3 ReLU is better on 4 of 5 seeds, sigmoid on 0, 1 tied" in text
    assert "yes: ReLU is better or tied on every seed" in text
    assert "fails to train (test accuracy below 0.6) on 2 of 5 seeds" in text, "not 'mostly fails'"
    mixed = {**acc, (3, "sigmoid"): [0.99, 1.0, 0.88, 0.95, 0.93]}
    assert "No, not always: at depth 3 ReLU is better on 3 of 5 seeds, sigmoid on 1, 1 tied" in \
        moons.architecture_answer(mixed)


def test_moons_gradient_answer_follows_the_ratios():
    histories = {"sigmoid": [1e-3] * 40 + [0.5] * 260, "relu": [0.5] * 300}
    init = {(10, "sigmoid"): [1e-8, 3e-7, 2e-8], (10, "relu"): [2e-2, 7e-4, 3e-3]}
    text = moons.gradient_answer(init, histories, 10)
    assert text.startswith("3. Yes") and "orders of magnitude" in text
    assert "sigmoid 2.0e-08, ReLU 3.0e-03" in text and "Both ratios are below 0.1" in text
    assert "for the first 40 of 300 steps for sigmoid and never for ReLU" in text, "not 'throughout training'"
    close = {(10, "sigmoid"): [0.01], (10, "relu"): [0.05]}
    assert "5 times less gradient" in moons.gradient_answer(close, histories, 10)
    reversed_ = {(10, "sigmoid"): [0.5], (10, "relu"): [0.01]}
    assert moons.gradient_answer(reversed_, histories, 10).startswith("3. No")
    similar = {(10, "sigmoid"): [0.5], (10, "relu"): [0.6]}
    assert moons.gradient_answer(similar, {"sigmoid": [0.5], "relu": [0.5]}, 10).startswith("3. Not clearly")


def test_op_count_answer_states_the_measured_ratio():
    def counts(D, K, P, L):  # the sheet's count, written out independently of impl
        primal = K * D + (L - 1) * K * K
        return primal + D * ((L - 1) * K * K + P * K), primal + P * ((L - 1) * K * K + K * D)

    text = dl_a1.op_count_answer({L: counts(2, 30, 10, L) for L in (3, 5, 10)}, 2, 10)
    assert "forward mode needs 3.4x to 3.6x fewer multiplies" in text and "5x" not in text
    flipped = dl_a1.op_count_answer({L: counts(10, 30, 2, L) for L in (3, 5, 10)}, 10, 2)
    assert "reverse mode needs" in flipped and "forward mode needs" not in flipped


def test_housing_answer_follows_the_curves():
    text = dl_a1.housing_answer([0.50, 0.45, 0.43], [0.61, 0.64, 0.59], None)
    assert "train MSE falls from 0.500 to 0.430 (-14%)" in text and "test MSE stays near 0.610 (to 0.590, -3%)" in text
    assert "above the train MSE by 0.160" in text and "diabetes table instead" in text
    text = dl_a1.housing_answer([0.9, 0.2], [0.1, 0.15], "boston.csv")
    assert "test MSE rises from 0.100 to 0.150 (+50%)" in text and "diabetes" not in text
    assert "below the train MSE by 0.050" in text


def _study(test, train, act=(0.3, 0.4), grad=(1.0, 2.0)):
    before = SimpleNamespace(mean_abs_activation=list(act), grad_norm=list(grad))
    return SimpleNamespace(before=before, test_accuracy=list(test), train_accuracy=list(train))


def test_init_answer_does_not_call_a_rising_curve_converged():
    results = {0.01: _study([0.10] * 5, [0.10] * 5, act=(0.06, 0.0001), grad=(1e-10, 1.0)),
               "xavier": _study([0.2, 0.3, 0.38, 0.43, 0.47], [0.2, 0.3, 0.38, 0.44, 0.47])}
    text = dl_a1.init_answer(results, 11, stand_in=True)
    assert "Xavier: the activations stay in a moderate band" in text
    assert "learns but has not converged (train accuracy still rose by 0.17" in text and "converges" not in text
    assert "d = 0.01: the signal dies with depth" in text and "does not learn (chance level)" in text
    assert "5 epochs are 55 steps against 2345" in text, "the stand-in caveat with its step counts"
    flat = {"xavier": _study([0.90, 0.905, 0.905, 0.906, 0.906], [0.95, 0.951, 0.952, 0.952, 0.953])}
    text = dl_a1.init_answer(flat, 469, stand_in=False)
    assert "has levelled off" in text and "Caveat" not in text
    long = {"xavier": _study([0.9] * 10, [0.95] * 10)}
    assert "A longer run, labelled as such (same code, 10 epochs = 2350 SGD steps" in dl_a1.init_answer(
        results, 11, stand_in=True, long=long, long_steps=2350)


# ----------------------------------------------------------------------------- a real browser
def test_page_in_headless_chromium(quick_a7, tmp_path):
    from report import browser

    if browser.chromium() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    dom = browser.dom(quick_a7 / "index.html")
    assert dom.count("<table") >= 1 and "<math" in dom and "a7_cnn.png" in dom
    png = browser.screenshot(quick_a7 / "index.html", tmp_path / "page.png", height=1200)
    assert_non_empty_png(png)


# ----------------------------------------------------------------------------- all sheets (slow)
def _claims(markdown: str, numbers: dict):
    """Each claim sentence of a written report, regenerated from the numbers.json beside it."""
    n = numbers["numbers"]
    p = n["ps09"]
    assert "2.4: " + ps09.early_stopping_answer(p["2.3"]["best validation epoch"], 150, p["2.4"]["test MSE last"],
                                                p["2.4"]["test MSE best"]) in markdown
    answer = re.search(r"2\.5 \(\d+ epochs\): .*", markdown).group(0)
    assert answer.count("the answer is") == 1, answer
    e = n["ex08"]
    versions = [q[len("2-3 "):] for q in e if q.startswith("2-3 ")]
    params = {v: {"early": (e[f"2-3 {v}"]["a after 20"], e[f"2-3 {v}"]["b after 20"]),
                  "final": (e[f"2-3 {v}"]["a after 2000"], e[f"2-3 {v}"]["b after 2000"])} for v in versions}
    assert "Does nn.Linear differ, and why? " + ex08.nn_linear_answer(params) in markdown
    m = n["moons"]
    acc = {(depth, act): [m[f"2 depth {depth} {act}"][f"test accuracy[{i}]"] for i in range(len(m["1"]))]
           for depth in moons.DEPTHS for act in moons.ACTIVATIONS}
    assert moons.architecture_answer(acc) in markdown
    d = n["dl-a1"]["2(e)"]
    counts = {L: (d[f"forward L={L}"], d[f"reverse L={L}"]) for L in (3, 5, 10)}
    assert dl_a1.op_count_answer(counts, 2, 10) in markdown
    h = n["dl-a1"]["1(d)"]
    epochs = range(1, len(h) // 2 + 1)
    assert dl_a1.housing_answer([h[f"train MSE epoch {i}"] for i in epochs], [h[f"test MSE epoch {i}"] for i in epochs],
                                None) in markdown
    assert "(e) After" in markdown


@pytest.mark.slow
def test_quick_report_of_every_sheet(tmp_path):
    out = report.build_report(tmp_path / "quick", quick=True, stream=io.StringIO())
    _, markdown, numbers = check_report(out)
    _claims(markdown, numbers)


@pytest.mark.slow
def test_full_report(tmp_path):
    out = report.build_report(tmp_path / "full", stream=io.StringIO())
    _, markdown, numbers = check_report(out)
    _claims(markdown, numbers)
    assert "A longer run, labelled as such" in markdown and numbers["meta"]["quick"] is False
    assert not markdown.startswith("# Solutions report (quick")


def test_provenance_names_real_files_and_an_unused_data_dir(tmp_path):
    (tmp_path / "data").mkdir()
    out = report.build_report(tmp_path / "out", ("a7",), data_dir=tmp_path / "data", quick=True, jobs=1,
                              stream=io.StringIO())
    markdown = (out / "report.md").read_text()
    assert re.search(r"\| data: --data-dir \| `.*data` held no usable file; every section used its embedded data \|",
                     markdown)
    data = tmp_path / "data" / "X.pt"
    data.write_bytes(b"x" * 2048)
    assert core.file_source(data) == f"`{data}` (2.0 KiB)"


def test_a_printed_number_missing_from_numbers_json_is_caught():
    s = core.Section("x", "X")
    s.table(["label", "value"], [["a", s.num("q", "a", 0.1234)], ["b", "0.999"]])
    numbers = {"numbers": {"x": s.numbers}}
    with pytest.raises(AssertionError, match=r"0\.999"):
        assert_table_numbers_recorded(s.markdown(), numbers)
    assert_table_numbers_recorded(s.markdown().replace("0.999", "0.123"), numbers)


def test_parallel_run_uses_one_thread_per_process_and_gives_the_same_numbers(quick_a7, tmp_path):
    out = report.build_report(tmp_path / "parallel", ("a7",), quick=True, jobs=2, threads=1, stream=io.StringIO())
    numbers = json.loads((out / "numbers.json").read_text())
    assert numbers["meta"]["threads"] == [1], "the worker ran with one torch thread"
    assert cmp.compare(cmp.load(quick_a7), cmp.load(out), rtol=0, atol=0) == [], \
        "a worker process computes what the main process does"


def test_compare_against_the_folder_being_replaced(quick_a7, tmp_path, capsys):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(quick_a7, out)
    code, _ = cli(["--out", str(out), "--compare", str(out), "--sheets", "a7", "--quick", "--jobs", "1"], capsys)
    assert code == 0
