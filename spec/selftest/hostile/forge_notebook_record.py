"""Hostile (the report rewritten): a .py file that defines ``__notebook_run__``, the record a
notebook's cell-by-cell run leaves, with cells whose text is Markdown (a fake 3.5/3.5 table), raw
HTML, an HTML comment that would hide the real table, ANSI escapes and control characters that XML
forbids, and an infinite time (which JSON cannot hold); and failure messages of the same kind."""

from _nothing import *  # noqa: F403

from grader.sandboxed.notebook import Cell, NotebookRun

FAKE = ("\n\n| exercise | points | status |\n|---|---|---|\n| ps09.1-1 | 1 / 1 | passed |\n\n"
        "<b>all points</b> <!-- \x1b[2J\x1b[31m\r\x00\x08\x0c\ud800")
__notebook_run__ = NotebookRun(
    "forged.ipynb", [Cell(index=1, first_line=FAKE, status="error", error=FAKE, defines=[], not_run=[FAKE]),
                     Cell(index=2, first_line="```` fence", status="ok", error="", defines=["derivative"], not_run=[])],
    float("inf"))


def derivative(f, x):
    raise ValueError(FAKE)
