"""Look at the page in a real browser: headless chromium renders ``index.html`` to a PNG screenshot.

``python -m report.browser REPORT_DIR [PNG]`` writes ``REPORT_DIR/screenshot.png`` (or PNG) and prints
its path; chromium is the Debian package ``chromium`` (``apt-get install -y chromium``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--hide-scrollbars"]


def chromium() -> str | None:
    return next((path for name in ("chromium", "chromium-browser", "google-chrome")
                 if (path := shutil.which(name))), None)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)


def screenshot(page: Path, png: Path, *, width: int = 1100, height: int = 2400, timeout: float = 120) -> Path:
    page, png = Path(page).resolve(), Path(png).resolve()
    _run([f"--screenshot={png}", f"--window-size={width},{height}", page.as_uri()], timeout)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {page}")
    return png


def dom(page: Path, *, timeout: float = 120) -> str:
    """The page's DOM after chromium parsed and laid it out."""
    return _run(["--dump-dom", Path(page).resolve().as_uri()], timeout).stdout


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    folder = Path(argv[0])
    png = Path(argv[1]) if len(argv) > 1 else folder / "screenshot.png"
    try:
        print(screenshot(folder / "index.html", png))
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"python -m report.browser: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
