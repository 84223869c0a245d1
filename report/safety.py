"""Where the report may write: only a folder that is new, empty, or a previous report (it carries the
marker file the report writes), or any folder with ``force``; never the working directory, a parent of
it, the home folder, a filesystem root or a repository, whatever ``force`` says."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

MARKER = ".solutions-report"


class ReportError(ValueError):
    """A one-line reason why the report will not run or not write; the command line prints it."""


def _contains(parent: Path, child: Path) -> bool:
    return child == parent or parent in child.parents


def _repository_inside(folder: Path) -> Path | None:
    """The first folder below ``folder`` that holds ``.git``, if any (symbolic links not followed)."""
    for root, dirs, files in os.walk(folder):
        if ".git" in dirs or ".git" in files:
            return Path(root)
    return None


REPORT_FILES = (".png", ".md", ".html", ".json")


def check_out(out, *, force: bool = False) -> Path:
    """The resolved output folder, or :class:`ReportError` saying why not and the way out."""
    try:
        return _check_out(out, force)
    except ReportError:
        raise
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ReportError(f"--out {str(out)!r} is not a usable path ({reason}); choose another --out") from None


def _foreign(folder: Path) -> list[str]:
    """What a previous report folder holds that the report did not write (files added by hand, folders)."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name != MARKER and not (p.is_file() and p.suffix in REPORT_FILES))


def _check_out(out, force: bool) -> Path:
    raw = Path(out).expanduser()
    if str(out).strip() == "":
        raise ReportError("--out is empty: name a folder for the report")
    if raw.is_symlink():
        raise ReportError(f"--out {raw} is a symbolic link: give the real folder, or another --out")
    try:
        target = raw.resolve()
    except (OSError, RuntimeError) as exc:
        raise ReportError(f"--out {raw}: cannot resolve the path ({exc})") from None
    if target.parent == target:
        raise ReportError(f"refusing --out {target}: a filesystem root; choose another --out")
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    if _contains(target, cwd):
        what = "the working directory" if target == cwd else "a parent of the working directory"
        raise ReportError(f"refusing --out {target}: it is {what}, which the report would replace; "
                          f"choose a new folder, e.g. --out {cwd / 'solutions-report'}")
    if _contains(target, home):
        raise ReportError(f"refusing --out {target}: it is the home folder or a parent of it; choose another --out")
    if (target / ".git").exists():
        raise ReportError(f"refusing --out {target}: it is a repository (it holds .git); choose another --out")
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise ReportError(f"--out {target}: {parent} is a file, not a folder; choose another --out")
    if target.exists():
        if not target.is_dir():
            raise ReportError(f"--out {target} is a file, not a folder; choose another --out")
        entries = list(target.iterdir())
        foreign = _foreign(target) if (target / MARKER).is_file() else []
        if foreign and not force:
            raise ReportError(f"refusing --out {target}: a previous report, but it also holds {', '.join(foreign[:3])}"
                              f"{' ...' if len(foreign) > 3 else ''}, which the report did not write; move "
                              f"{'them' if len(foreign) > 1 else 'it'}, choose another --out, or pass --force")
        if entries and (foreign or not (target / MARKER).is_file()):
            if not force:
                raise ReportError(f"refusing --out {target}: it is not empty and not a previous report (no {MARKER} "
                                  f"marker); choose another --out, or pass --force to replace it")
            repository = _repository_inside(target)
            if repository is not None:
                raise ReportError(f"refusing --out {target} even with --force: it holds a repository "
                                  f"({repository}); choose another --out")
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK) or (target.exists() and not os.access(target.parent, os.W_OK)):
        raise ReportError(f"--out {target}: {existing if existing != target else target.parent} is not writable; "
                          f"choose another --out")
    return target


def staging(target: Path) -> Path:
    """A fresh folder beside ``target`` (same filesystem, so the final swap is a rename)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}-new-", dir=target.parent))
    except OSError as exc:
        raise ReportError(f"--out {target}: cannot create a folder beside it ({exc.strerror or exc})") from None


def install(work: Path, target: Path, *, force: bool = False, meta: dict | None = None) -> Path:
    """Mark ``work`` as a report and put it in place of ``target``, checking ``target`` once more first."""
    check_out(target, force=force)
    (work / MARKER).write_text(json.dumps({"written_by": "python -m report", **(meta or {})}, indent=1) + "\n",
                               encoding="utf-8")
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        target.rename(old / "report")
    work.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target
