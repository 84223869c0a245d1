"""Notebook submissions run cell by cell (grader/sandboxed/notebook.py): in their own folder, magics as IPython
means them, a failing cell costing only its names, no network, a CPU budget of their own."""

from __future__ import annotations

import socket
import time
from types import ModuleType

import nbformat
import pytest

from grader.sandboxed import notebook
from grader.sandboxed.implementation import Implementation, MissingName, read_aliases


def write(tmp_path, *sources, name="student.ipynb", tags=None):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# my solutions")]
    for index, source in enumerate(sources):
        cell = nbformat.v4.new_code_cell(source)
        if tags and index in tags:
            cell.metadata["tags"] = tags[index]
        nb.cells.append(cell)
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


def run(path, seconds=30.0):
    module = ModuleType("submission")
    return module, notebook.run(path, module, seconds=seconds)


def test_a_failing_cell_costs_only_its_names(tmp_path):
    path = write(tmp_path, "a = 1", "raise ValueError('oops')\nb = 2", "def f():\n    return a + 1",
                 "c = undefined_name")
    module, report = run(path)
    assert module.a == 1 and module.f() == 2
    assert not hasattr(module, "b") and not hasattr(module, "c")
    assert [(c.index, c.status) for c in report.cells] == [(1, "ok"), (2, "error"), (3, "ok"), (4, "error")]
    assert report.cells[1].error == "ValueError: oops" and report.cells[1].first_line == "raise ValueError('oops')"
    assert "NameError" in report.cells[3].error


def test_missing_name_says_which_cell_failed(tmp_path):
    path = write(tmp_path, "import no_such_module_here\ndef answer():\n    return 42")
    module, report = run(path)
    impl = Implementation(module, str(path))
    module.__notebook_run__ = report
    with pytest.raises(MissingName, match=r"answer is not defined .*cell 1 .*which defines it, failed"):
        impl.answer  # noqa: B018


def test_cells_run_in_the_notebooks_folder_with_its_helpers(tmp_path):
    (tmp_path / "test_utils.py").write_text("def test(condition, message):\n    return bool(condition)\n")
    (tmp_path / "data.csv").write_text("1,2\n")
    path = write(tmp_path, "from test_utils import test", "rows = open('data.csv').read().split(',')",
                 "import os\nhere = os.getcwd()")
    module, report = run(path)
    assert [c.status for c in report.cells] == ["ok", "ok", "ok"], report.cells
    assert module.test(True, "x") and module.rows == ["1", "2\n"] and module.here == str(tmp_path)


@pytest.mark.parametrize("source", [
    "import urllib.request\nurllib.request.urlopen('http://example.org', timeout=30)",
    "import socket\nsocket.create_connection(('example.org', 80), timeout=30)",
    "from sklearn.datasets import fetch_california_housing\nfetch_california_housing()",
], ids=["urllib", "socket", "sklearn fetch"])
def test_network_access_fails_at_once(tmp_path, source):
    path = write(tmp_path, source, "after = True")
    started = time.monotonic()
    module, report = run(path)
    assert time.monotonic() - started < 10, "a download must fail at once, never hang"
    assert report.cells[0].status == "error" and module.after is True
    assert "network" in report.cells[0].error or "URLError" in report.cells[0].error, report.cells[0].error
    socket.getaddrinfo("localhost", None)   # restored after the run


def test_magics_mean_what_ipython_makes_them_mean(tmp_path):
    path = write(tmp_path,
                 "%%bash\necho not run\nexit 1",
                 "files = !ls\nn = len(files)",
                 's = """\n!this line is text\n"""',
                 "%%script false\nraise SystemExit('never')",
                 "%time timed = 6 * 7",
                 "%%time\ncell_timed = 1",
                 "%matplotlib inline\nimport math\nroot = math.sqrt(16)")
    module, report = run(path)
    assert [c.status for c in report.cells] == ["ok"] * 7, [c.describe() for c in report.cells]
    assert module.n == 0 and module.s == "\n!this line is text\n"
    assert module.timed == 42 and module.cell_timed == 1 and module.root == 4.0
    assert report.not_run_magics == ["cell 1: %%bash", "cell 2: !ls", "cell 4: %%script false",
                                     "cell 7: %matplotlib inline"]


def test_exploration_cells_are_skipped_and_outputs_ignored(tmp_path):
    path = write(tmp_path, "raise RuntimeError('exploring')", "# exploration\nwhile True: pass", "x = 3",
                 tags={0: ["exploration"]})
    nb = nbformat.read(str(path), 4)
    nb.cells[3].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "999"}, execution_count=1)]
    nbformat.write(nb, str(path))
    module, report = run(path)
    assert [c.status for c in report.cells] == ["skipped", "skipped", "ok"] and module.x == 3


def test_the_cpu_budget_stops_a_runaway_cell_and_the_rest(tmp_path):
    path = write(tmp_path, "early = 1", "while True:\n    try:\n        pass\n    except BaseException:\n        pass",
                 "late = 2")
    started = time.monotonic()
    module, report = run(path, seconds=1.0)
    assert time.monotonic() - started < 15
    assert module.early == 1 and not hasattr(module, "late")
    assert [c.status for c in report.cells] == ["ok", "error", "not run"]
    assert "CPU budget of 1 CPU seconds" in report.cells[1].error


def test_a_cell_that_waits_spends_no_cpu_budget_and_the_wall_clock_bounds_only_a_hang(tmp_path):
    """The budget counts the notebook's CPU seconds: a cell that sleeps past it (as a busy machine would
    make a cell take longer) is not interrupted; one that sleeps past WALL_FACTOR times it is."""
    from grader.sandboxed.notebook import WALL_FACTOR

    path = write(tmp_path, "import time\ntime.sleep(0.6)\nslept = 1", "time.sleep(60)", "late = 2")
    started = time.monotonic()
    module, report = run(path, seconds=0.3)
    assert time.monotonic() - started < 15
    assert module.slept == 1 and report.cells[0].status == "ok", "twice the budget asleep: no CPU spent"
    assert report.cells[1].status == "error" and f"hang guard of {0.3 * WALL_FACTOR:g} s" in report.cells[1].error
    assert report.cells[2].status == "not run"


def test_a_cell_that_exits_costs_only_itself(tmp_path):
    path = write(tmp_path, "import sys\nsys.exit(3)", "after = 1")
    module, report = run(path)
    assert report.cells[0].status == "error" and "SystemExit" in report.cells[0].error and module.after == 1


def test_aliases_map_a_submissions_names_onto_the_interface(tmp_path):
    aliases = tmp_path / "aliases.toml"
    aliases.write_text('trace_grad = "trace_square_gradient"\n')
    module = ModuleType("submission")
    module.trace_grad = lambda A: 2 * A
    impl = Implementation(module, "submission", read_aliases(aliases))
    assert impl.trace_square_gradient(3) == 6 and impl.has("trace_square_gradient")
    with pytest.raises(MissingName, match="derivative is not defined"):
        impl.derivative  # noqa: B018


@pytest.mark.parametrize("text", ['a = 1\n', 'a = "not an identifier!"\n', 'a = "x"\nb = "x"\n'],
                         ids=["not a string", "not a name", "two onto one"])
def test_bad_alias_files_are_refused(tmp_path, text):
    from grader.sandboxed.implementation import ImplementationNotFound

    path = tmp_path / "aliases.toml"
    path.write_text(text)
    with pytest.raises(ImplementationNotFound, match="alias file"):
        read_aliases(path)


def test_class_aliased_under_another_name_keeps_super_working(tmp_path):
    path = write(tmp_path, "import torch\nfrom torch import nn\nclass MyNet(nn.Module):\n    def __init__(self):\n"
                           "        super(MyNet, self).__init__()\n        self.w = nn.Parameter(torch.zeros(1))")
    module, report = run(path)
    impl = Implementation(module, "nb", {"NNLinearRegression": "MyNet"})
    assert report.cells[0].status == "ok"
    assert len(list(impl.NNLinearRegression().parameters())) == 1
