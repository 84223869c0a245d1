"""What a submission controls is shown as data in every format (grader/judge/escape.py): checked over
arbitrary text, with a parser of each format as the judge."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grader.judge.escape import FORMULA_STARTS, GRADER_FILES, csv_cell, folder_name, md_code, printable, xml_text

# every code point, surrogates and controls included, with the characters attacks use drawn often
HOSTILE_TEXT = st.text(st.one_of(st.characters(codec=None, categories=None),
                                 st.sampled_from("`|<>!-*_[]()#=+@\t\r\n\x1b\x00\x08\u202e\ud800&;\"'")),
                       max_size=60)
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


@given(HOSTILE_TEXT)
def test_printable_leaves_no_control_character_and_keeps_plain_text(text):
    shown = printable(text)
    assert not CONTROL.search(shown) and not re.search("[\t\n\r]", shown)
    if not CONTROL.search(text) and not re.search("[\t\n\r]", text):
        assert shown == text


@given(HOSTILE_TEXT)
def test_a_markdown_code_span_holds_any_text_literally(text):
    """markdown-it (CommonMark) reads the span as one inline code token and nothing else: no HTML, no
    table, no emphasis, no link can come out of it."""
    from markdown_it import MarkdownIt

    span = md_code(text)
    tokens = MarkdownIt("commonmark").enable("table").parse(f"- item {span} end\n")
    inline = [t for t in tokens if t.type == "inline"]
    assert len(inline) == 1 and [c.type for c in inline[0].children] == ["text", "code_inline", "text"], span
    expected = printable(" ".join(text.split()))
    assert inline[0].children[1].content == (expected or " ").strip() or expected == "", span


@given(HOSTILE_TEXT)
def test_xml_text_always_parses_shows_no_control_or_bidi_character_and_keeps_plain_text(text):
    """junit.xml's names and messages (a CI shows them in its test report): the text parses back as
    itself, with no control, bidirectional or other invisible character but its newlines."""
    shown = xml_text(text)
    element = ET.Element("failure", message=shown)
    element.text = shown
    parsed = ET.fromstring(ET.tostring(element, encoding="unicode"))
    assert parsed.get("message") == shown and (parsed.text or "") == shown
    assert not CONTROL.search(shown) and not re.search("[\t\r\u200b\ufeff]", shown), shown
    assert shown.count("\n") == text.count("\n")
    if printable(text, keep_newlines=True) == text and \
            not re.search("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", text):
        assert shown == text


@given(HOSTILE_TEXT)
def test_a_csv_cell_is_never_a_formula(text):
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_cell(text)])
    (cell,) = next(csv.reader(io.StringIO(buffer.getvalue())))
    assert not cell.startswith(FORMULA_STARTS) and not CONTROL.search(cell)


@pytest.mark.parametrize("names", [
    ["gradebook.csv", "gradebook", "GRADEBOOK.csv"],
    ["alice", "Alice", "ALICE", "alice-2"],
    ["../../etc", ".hidden", "a/b", "=HYPERLINK(\"http://x\",\"y\")", "mallory\r\x1b[31mFAKE", "", "é"],
    ["x" * 300, "x" * 301, "grade.json", "junit.xml"],
])
def test_folder_names_are_safe_unique_and_never_the_graders_own(names):
    taken: set[str] = set()
    folders = [folder_name(name, taken) for name in names]
    assert len({f.lower() for f in folders}) == len(names), folders
    for folder in folders:
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", folder), folder
        assert folder.lower() not in GRADER_FILES and len(folder) <= 90


@given(st.lists(HOSTILE_TEXT, max_size=12))
def test_folder_names_stay_unique_for_any_class(names):
    taken: set[str] = set()
    folders = [folder_name(name, taken) for name in names]
    assert len({f.lower() for f in folders}) == len(folders)


@given(HOSTILE_TEXT)
def test_gradescope_results_show_submission_text_as_data(text):
    """results.json: a failure message and a notebook cell of the submission's, whatever they hold,
    come out without control, invisible or XML-forbidden characters (a red-team finding)."""
    from grader.judge import gradescope

    row = {"id": "ps09.1-1", "status": "failed", "earned": 0, "passed": 0, "tests": 1,
           "failures": [{"test": "spec/test_calculus.py::test_x", "outcome": "failed", "message": text}],
           "robustness": {"passed": 0, "failed": []}}
    data = {"sheets": {"ps09": {"exercises": [row]}}, "error": text,
            "notebook": {"cells": [{"index": 1, "first_line": text, "status": "error", "error": text}]},
            "robustness": {"passed": 0, "failed": 0}}
    results = gradescope.results(data, ("ps09.1-1",))
    for shown in [results["output"], *(t["output"] for t in results["tests"])]:
        assert not CONTROL.search(shown.replace("\n", "")) and not re.search("[\t\r\u200b\ufeff]", shown), shown
        assert xml_text(shown) == shown


@given(HOSTILE_TEXT)
def test_a_markdown_code_block_holds_any_text_literally(text):
    """The first failure of an exercise is shown as a fenced block: markdown-it reads one fence token
    holding the text (its control characters escaped), and no HTML or other block."""
    from markdown_it import MarkdownIt

    from grader.judge.escape import md_block

    tokens = MarkdownIt("commonmark").enable("table").parse(f"before\n\n{md_block(text)}\n\nafter\n")
    fences = [t for t in tokens if t.type == "fence"]
    assert len(fences) == 1 and fences[0].content.rstrip("\n") == printable(text, keep_newlines=True)
    assert not [t for t in tokens if t.type in ("html_block", "html_inline")]
    assert [t.content for t in tokens if t.type == "inline"] == ["before", "after"]
