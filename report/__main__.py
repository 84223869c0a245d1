"""``python -m report``: build the solutions report; ``--compare OLD_DIR`` then lists what changed."""

from __future__ import annotations

import argparse
import sys
import time

from report import DEFAULT_OUT, SHEETS, build_report
from report.compare import ATOL, RTOL, compare, load, summary
from report.safety import ReportError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m report", description="Build the solutions report.")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT}); must be new, empty or a previous report")
    parser.add_argument("--force", action="store_true",
                        help="replace a non-empty --out that is not a previous report (never the working "
                             "directory, its parents, home or a repository)")
    parser.add_argument("--sheets", nargs="+", default=list(SHEETS), choices=SHEETS, help="sheets to include")
    parser.add_argument("--data-dir", default=None,
                        help="folder with real data: MNIST IDX files, a Boston *.csv or openml/ cache, X.pt and y.pt")
    parser.add_argument("--device", default="cpu", help="device for the Jacobian timings (cpu, cuda)")
    parser.add_argument("--quick", action="store_true", help="fewer epochs and seeds (a smoke test; says so)")
    parser.add_argument("--jobs", type=int, default=None, help="processes (default: one per sheet, up to the cores)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--compare", metavar="OLD_DIR", default=None,
                        help="after building, list the numbers that changed against OLD_DIR's numbers.json")
    parser.add_argument("--rtol", type=float, default=RTOL, help=f"relative tolerance of --compare ({RTOL:g})")
    parser.add_argument("--atol", type=float, default=ATOL, help=f"absolute tolerance of --compare ({ATOL:g})")
    args = parser.parse_args(argv)
    if args.threads < 1 or (args.jobs is not None and args.jobs < 1):
        parser.error("--threads and --jobs must be positive")
    start = time.perf_counter()
    try:
        old = load(args.compare) if args.compare else None   # read first: --out may replace that folder
    except ReportError as exc:
        print(f"python -m report: error: --compare {exc}", file=sys.stderr)
        return 2
    try:
        path = build_report(args.out, tuple(args.sheets), data_dir=args.data_dir, device=args.device,
                            quick=args.quick, force=args.force, jobs=args.jobs, threads=args.threads)
    except ReportError as exc:
        print(f"python -m report: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"python -m report: error: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"report written to {path / 'index.html'} in {time.perf_counter() - start:.0f} s")
    if old is not None:
        new = load(path)
        lines = compare(old, new, rtol=args.rtol, atol=args.atol)
        print(summary(lines, args.compare, path, args.rtol, args.atol))
        return 1 if any(not line.startswith(("note:", "not compared")) for line in lines) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
