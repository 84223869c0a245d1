"""The regression check between two reports: ``numbers.json`` of an old and a new run, every number
keyed ``sheet/question/label``; what changed beyond a tolerance, what appeared, what went away.

``python -m report.compare OLD_DIR NEW_DIR`` compares two written reports;
``python -m report --compare OLD_DIR`` builds a new report and compares it with OLD_DIR's."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from report.safety import ReportError

RTOL, ATOL = 1e-3, 1e-6


def flatten(numbers: dict) -> dict:
    return {f"{sheet}/{question}/{label}": value for sheet, questions in numbers.items()
            for question, labels in questions.items() for label, value in labels.items()}


def load(folder) -> dict:
    path = Path(folder) / "numbers.json"
    if not path.is_file():
        raise ReportError(f"{folder}: no numbers.json there (is it a report folder?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not readable as JSON ({exc})") from None


def _differs(old, new, rtol: float, atol: float) -> bool:
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        if math.isnan(old) and math.isnan(new):
            return False
        return not math.isclose(old, new, rel_tol=rtol, abs_tol=atol)
    return old != new


def compare(old: dict, new: dict, *, rtol: float = RTOL, atol: float = ATOL, timings: bool = False) -> list[str]:
    """One line per difference; empty when the numbers agree. Timings (``volatile``) are skipped unless asked."""
    skip = set() if timings else set(old.get("volatile", [])) | set(new.get("volatile", []))
    a, b = flatten(old.get("numbers", {})), flatten(new.get("numbers", {}))
    sheets_both = {k.split("/")[0] for k in a} & {k.split("/")[0] for k in b}
    lines = []
    for key in sorted(a.keys() | b.keys()):
        if key in skip or key.split("/")[0] not in sheets_both:
            continue
        if key not in b:
            lines.append(f"removed  {key} (was {a[key]})")
        elif key not in a:
            lines.append(f"added    {key} = {b[key]}")
        elif _differs(a[key], b[key], rtol, atol):
            change = ""
            if isinstance(a[key], (int, float)) and isinstance(b[key], (int, float)) and a[key]:
                change = f" ({(b[key] - a[key]) / abs(a[key]):+.2%})"
            lines.append(f"changed  {key}: {a[key]} -> {b[key]}{change}")
    only = sorted({k.split('/')[0] for k in a} ^ {k.split('/')[0] for k in b})
    if only:
        lines.append(f"not compared (in one report only): {', '.join(only)}")
    if old.get("meta", {}).get("quick") != new.get("meta", {}).get("quick"):
        lines.insert(0, "note: one report is --quick and the other is not; their numbers differ by design")
    return lines


def summary(lines: list[str], old_dir, new_dir, rtol: float, atol: float) -> str:
    changed = [line for line in lines if not line.startswith(("note:", "not compared"))]
    head = (f"{len(changed)} number(s) differ beyond rtol {rtol:g}, atol {atol:g} between {old_dir} and {new_dir}"
            if changed else f"no number differs beyond rtol {rtol:g}, atol {atol:g} between {old_dir} and {new_dir}")
    return "\n".join([head, *lines])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m report.compare",
                                     description="Compare the numbers.json of two report folders.")
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rtol", type=float, default=RTOL)
    parser.add_argument("--atol", type=float, default=ATOL)
    parser.add_argument("--timings", action="store_true", help="compare the timings too")
    args = parser.parse_args(argv)
    try:
        lines = compare(load(args.old), load(args.new), rtol=args.rtol, atol=args.atol, timings=args.timings)
    except ReportError as exc:
        print(f"python -m report.compare: error: {exc}", file=sys.stderr)
        return 2
    print(summary(lines, args.old, args.new, args.rtol, args.atol))
    return 1 if any(not line.startswith(("note:", "not compared")) for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
