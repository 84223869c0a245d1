"""Everything a submission controls (its file and folder names, cell text, messages, the records its
worker sends) is data: these functions make it safe where the judge shows it. Each output format gets
its own function; none of them trusts the text to be printable, short or well-formed.

* :func:`printable`: control characters (C0, DEL, C1), the bidirectional overrides and lone surrogates
  become visible escapes (``\\x1b``, ``\\u202e``), so that a name cannot rewrite a terminal line,
  reorder a report or make it unwritable as UTF-8;
* :func:`md_code`: a Markdown code span that holds any text literally (no Markdown, no raw HTML, no
  comment can start inside it);
* :func:`xml_text`: what :func:`printable` escapes, newlines kept, and every character XML 1.0 forbids
  (junit.xml must parse, and a CI's test report must not show a name reordered);
* :func:`csv_cell`: a spreadsheet cell that is never a formula (OWASP's advice on CSV injection);
* :func:`folder_name`: a student's report folder name, made of safe characters, unique in its class
  and never the name of a file the grader writes itself.
"""

from __future__ import annotations

import functools
import re
import unicodedata

#: bidirectional controls: text after them is shown reordered (a "trojan source" in a report)
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@functools.cache
def _unprintable() -> re.Pattern:
    r"""Control characters, lone surrogates (not text) and the format characters (Unicode category Cf:
    zero-width spaces and joiners, the bidirectional controls, the byte-order mark, ...), which are
    invisible, so ``bob\u200b`` would look like ``bob`` in a report. Built at first use: scanning the
    code points takes a tenth of a second, which a judge that escapes nothing need not spend."""
    invisible = "".join(chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf")
    return re.compile(f"[\x00-\x1f\x7f-\x9f{re.escape(invisible + BIDI)}\ud800-\udfff]")


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: what the grader itself writes in a class's output folder: no student folder may take these names
GRADER_FILES = frozenset({"gradebook.csv"})
NAME_LIMIT = 80


def _escape_char(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text, *, keep_newlines: bool = False) -> str:
    """``text`` with every control and invisible format character shown as an escape (newlines kept
    where asked)."""
    text = str(text)
    if keep_newlines:
        return "\n".join(_unprintable().sub(_escape_char, line) for line in text.split("\n"))
    return _unprintable().sub(_escape_char, text)


def md_block(text, limit: int | None = None) -> str:
    """A fenced Markdown code block showing ``text`` literally, its lines kept (each line's control
    characters escaped), at most ``limit`` characters. Its fence is longer than any run of backticks
    or tildes inside, so no line of the text can close it."""
    text = printable(str(text), keep_newlines=True)
    if limit is not None and len(text) > limit:
        text = text[:limit - 3] + "..."
    runs = [len(run) for run in re.findall("`+", text)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return f"{fence}text\n{text}\n{fence}"


def md_code(text, limit: int | None = None) -> str:
    """An inline Markdown code span showing ``text`` literally, on one line, at most ``limit`` characters
    of it. A code span's content is never Markdown or HTML; its fence is one backtick longer than the
    longest run of backticks inside, as CommonMark requires."""
    text = printable(" ".join(str(text).split()))
    if limit is not None and len(text) > limit:
        text = text[:limit - 3] + "..."
    if not text:
        return "` `"
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def xml_text(text) -> str:
    """``text`` as junit.xml shows it: every control and invisible format character (the bidirectional
    overrides among them), as :func:`printable` shows them, and the characters XML 1.0 forbids, as
    escapes; its newlines kept (a failure's lines). ElementTree escapes the rest (``<``, ``&``, quotes)."""
    return _NOT_XML.sub(_escape_char, printable(text, keep_newlines=True))


def csv_cell(text) -> str:
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a leading apostrophe;
    control characters are escaped."""
    text = str(text)
    if text.startswith(FORMULA_STARTS):
        text = "'" + text
    return printable(text)


def folder_name(student: str, taken: set[str]) -> str:
    """A folder name for ``student``'s reports: letters, digits, ``.``, ``_`` and ``-`` only (other
    characters become ``_``), not starting with a dot, at most NAME_LIMIT characters, none of the
    grader's own file names, and unique (case-insensitively) among ``taken``, which it joins."""
    ascii_name = unicodedata.normalize("NFKD", str(student)).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9._-]", "_", ascii_name).lstrip(".") or "student"
    name = name[:NAME_LIMIT]
    if name.lower() in GRADER_FILES or name.lower().endswith((".csv", ".json", ".md", ".xml")):
        name = f"{name}_"
    candidate, n = name, 1
    while candidate.lower() in {t.lower() for t in taken | GRADER_FILES}:
        n += 1
        candidate = f"{name}-{n}"
    taken.add(candidate)
    return candidate
