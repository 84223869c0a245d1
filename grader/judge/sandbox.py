"""How the worker that runs a submission (grader/sandboxed/worker.py) is confined. Chosen by the judge, stated
in the grade.

* **bubblewrap** (the Debian package ``bubblewrap``), where user namespaces allow it: a root of its own
  holding only the system's /usr, a few files of /etc, the interpreter with its packages and the
  worker's own code (grader/sandboxed/) and what the course hands out (spec/data.py, spec/given.py),
  read-only (no other file
  of the spec, no checkout, no .git, no reference solutions unless the reference is what is graded); its
  folder, /tmp and /dev/shm are size-limited tmpfs; no network; its own pid, IPC and UTS namespaces, a
  new session, and it dies with the judge: nothing the submission starts, ``setsid`` children included,
  outlives it.
* **another user**: in bubblewrap the worker is ``nobody`` in a user namespace of its own; without
  bubblewrap, a judge running as root starts it as ``nobody`` where the interpreter is readable to
  others, so that it can write nothing of the checkout or the judge's.
* **rlimits** always: CPU seconds, address space, file size, open files, no core dumps; one torch
  thread; its own session and process group, killed by the judge; the parent-death signal set, so a
  killed judge takes it along.

Without bubblewrap and not root, the worker can write what the judge's user can, reach the network,
and a ``setsid`` grandchild can outlive it: the grade says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SANDBOXED = ROOT / "grader" / "sandboxed"   # the only project code bound into the sandbox
#: what of the project the sandbox holds: the worker's code, and what the course hands out, which the
#: reference and a submission may import: its data module (spec/data.py: the sheets' arrays and
#: generated sets) and its given definitions (spec/given.py: result containers, ps09's sampler); no solution
COURSE_MODULES = ("spec.data", "spec.given")
WORKER_FILES = (ROOT / "grader" / "__init__.py", SANDBOXED, ROOT / "spec" / "__init__.py",
                *(ROOT / "spec" / f"{name.split('.')[1]}.py" for name in COURSE_MODULES))
NOBODY = 65534


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 1800          # RLIMIT_CPU: CPU time of one worker (a restart gets its own)
    memory_bytes: int = 4 * 2**30    # RLIMIT_AS: address space
    file_bytes: int = 64 * 2**20     # RLIMIT_FSIZE: any file the worker writes
    open_files: int = 256            # RLIMIT_NOFILE
    processes: int = 256             # RLIMIT_NPROC (threads included), where the worker has a user of its own


def bwrap_works() -> bool:
    bwrap = shutil.which("bwrap")
    return bool(bwrap) and subprocess.run(
        [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "true"], capture_output=True
    ).returncode == 0


def _open_to_others(path: Path) -> bool:
    """Whether a user other than the owner can run ``path`` (every folder above it searchable)."""
    import stat

    try:
        path = Path(os.path.realpath(path))
        return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])
    except OSError:
        return False


def _as_nobody_without_bwrap() -> bool:
    """Without bubblewrap, whether the worker can run as the user nobody: the judge is root and the
    interpreter is open to others."""
    import sys

    return os.geteuid() == 0 and _open_to_others(Path(sys.executable))


def worker_cannot_write_the_judges_files() -> bool:
    """Whether a worker runs where the judge's own files are out of its reach: in bubblewrap, or as
    the user nobody (see :func:`plan`)."""
    return bwrap_works() or _as_nobody_without_bwrap()


SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/passwd", "/etc/group", "/etc/localtime", "/etc/fonts", "/etc/ssl/certs")
STAGE = "/spec-stage"                 # where, in the sandbox, the host's copy of the worker folder is seen
SCRATCH_BYTES = 1 << 30               # the worker's folder: a tmpfs of this size
TMP_BYTES = 256 << 20                 # /tmp and /dev/shm in the sandbox


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _python_paths() -> list[str]:
    """The interpreter's own folders, which the worker imports from: its prefixes (the standard library,
    the site-packages of the venv) and the site-packages folders it names. Never a folder the grader
    was merely started from or pointed at (``sys.path`` entries from PYTHONPATH, the working directory,
    an editable install's source): not the checkout, none of its ancestors, nothing holding the
    working directory (a class folder), and inside the checkout only a venv of its own (tox's .tox/)."""
    import site
    import sys

    prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}
    candidates = set(prefixes) | {os.path.dirname(os.path.realpath(sys.executable))}
    candidates.update(os.path.realpath(p) for p in site.getsitepackages()
                      if os.path.isdir(p))
    candidates.update(os.path.realpath(p) for p in sys.path
                      if p and os.path.isdir(p) and any(_under(os.path.realpath(p), q) for q in prefixes))
    root, cwd = str(ROOT), os.path.realpath(os.getcwd())
    kept = sorted(p for p in candidates
                  if not _under(root, p)                         # the checkout or one of its ancestors
                  and not _under(cwd, p)                         # the working directory or one above it
                  and (not _under(p, root) or any(_under(p, q) and q != root for q in prefixes)))
    return [p for p in kept if not any(p != q and _under(p, q) for q in kept)]


def plan(scratch: Path, *, hide_reference: bool, readable: tuple = ()) -> tuple[list[str], bool, str]:
    """(command prefix, whether to drop to the user nobody before exec, what isolation is in force).

    In bubblewrap the worker sees a root of its own: the system's /usr, a few files of /etc, the
    interpreter and its packages, the worker's code (grader/sandboxed/; not the spec, not the checkout:
    no impl/ unless the reference is what is graded, no .git), ``readable`` folders (a submission
    outside the scratch folder), all read-only; its scratch folder, /tmp and /dev/shm are size-limited
    tmpfs. The host's scratch folder is seen read-only at STAGE: the worker copies it into its own
    (grader/sandboxed/worker.py --stage)."""

    if bwrap_works():
        user = "as the user nobody in a user namespace of its own"
        binds = ["--ro-bind", "/usr", "/usr"]
        for link in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
            if os.path.islink(link):
                binds += ["--symlink", os.readlink(link), link]
            elif os.path.isdir(link):
                binds += ["--ro-bind", link, link]
        for path in SYSTEM_FILES:
            binds += ["--ro-bind-try", path, path]
        for path in _python_paths():
            binds += ["--ro-bind", path, path]
        # the worker's own code and the course's data, nothing else of the project: not the rest of spec/
        # (its tests, selftest solutions and tools), not the judge's half of the grader
        for path in WORKER_FILES:
            binds += ["--ro-bind", str(path), str(path)]
        if not hide_reference:
            binds += ["--ro-bind", str(ROOT / "impl"), str(ROOT / "impl")]
        for path in readable:
            binds += ["--ro-bind-try", str(path), str(path)]
        prefix = [shutil.which("bwrap"), "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
                  "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
                  "--new-session", "--proc", "/proc", "--dev", "/dev",   # tmpfs first: binds may lie under /tmp
                  "--size", str(TMP_BYTES), "--tmpfs", "/dev/shm", "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
                  *binds, "--ro-bind", str(scratch), STAGE, "--size", str(SCRATCH_BYTES), "--tmpfs", str(scratch),
                  "--chdir", str(scratch), "--"]
        what = (f"a separate worker process {user}, in bubblewrap: a root of its own holding only the system, "
                "the interpreter, the worker's own code and the course's data, read-only (the spec, the checkout, "
                "its .git and the reference solutions are not there"
                f"{'' if hide_reference else ', but for the reference itself'}), its folder, /tmp and /dev/shm "
                "size-limited, no network, own pid namespace that dies with the judge")
        return prefix, False, what + "; rlimits on CPU, memory and files"
    as_nobody = _as_nobody_without_bwrap()
    user = "as the user nobody" if as_nobody else "as the judge's own user"
    what = (f"a separate worker process {user}, in its own process group, with rlimits on CPU, memory and files "
            "(bubblewrap is not available here: ")
    shielded = ("the checkout is not writable to it" if as_nobody
                else "files the judge's user can write are not shielded")
    return [], as_nobody, what + shielded + "; network, reading the reference and setsid grandchildren are not " \
        "contained)"


#: what of the judge's environment a worker gets (by name); everything else, a secret included, stays out
PASSED_ENVIRONMENT = ("LANG", "LC_ALL", "LC_CTYPE", "PYTHONHASHSEED", "TZ")


def worker_environment(caches: Path) -> dict[str, str]:
    """The worker's whole environment, an allowlist: a fixed PATH, the locale and hash seed, HOME,
    TMPDIR and the caches in its own folder, one thread, the import path of its own code."""
    import sys

    env = {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}
    env.update(PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
               PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg",
               MPLCONFIGDIR=str(caches / "mpl"), HOME=str(caches), TMPDIR=str(caches), XDG_CACHE_HOME=str(caches))
    return env


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) used by the process ``pid`` and every live process below it, with
    the children they have waited for: the worker's processes where no cgroup counts them (from /proc;
    a process that leaves the tree, an orphan reparented outside it, is no longer counted). 0 where
    /proc cannot be read."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, seen, todo = 0, set(), [pid]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(f"/proc/{current}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue   # ended meanwhile: its time is in its parent's waited-for children, once reaped
        fields = stat[stat.rfind(")") + 2:].split()
        try:
            total += sum(int(value) for value in fields[11:15])   # utime, stime, cutime, cstime
        except ValueError:
            continue
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as handle:
                    todo.extend(int(child) for child in handle.read().split())
            except (OSError, ValueError):
                continue
    return total / ticks


CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")


class Cgroup:
    """The worker and everything it starts, forks and ``setsid`` children included, in one control group
    of its own: a memory limit on all of them together, a process count, one core's worth of CPU at a
    time, and their CPU seconds counted together (the judge's watchdog ends the group past its limit:
    :meth:`cpu_seconds`). cgroup v2 where this machine delegates it, else v1 (one folder per controller);
    :meth:`make` returns None where neither can be written (the grade then says what is left open)."""

    def __init__(self, folders: dict[str, Path], version: int):
        self.folders, self.version = folders, version

    @staticmethod
    def _own(controller: str) -> str:
        """This process's own group in ``controller``'s hierarchy ('' for v2's unified one)."""
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(",") or (controller == "" and names == ""):
                return path.lstrip("/")
        return ""

    @staticmethod
    def _remove_stale(parent: Path) -> None:
        """Remove the empty groups of judges that died without removing them (named spec-*-PID-...)."""
        for folder in parent.glob("spec-*-*"):
            try:
                pid = int(folder.name.split("-")[2])
                os.kill(pid, 0)
            except (ValueError, IndexError):
                continue
            except ProcessLookupError:
                try:
                    folder.rmdir()
                except OSError:
                    pass
            except PermissionError:
                continue

    @classmethod
    def make(cls, name: str, limits: Limits) -> Cgroup | None:
        """A new group named ``name`` (spec-KIND-PID-...: the judge's pid) with ``limits``, or None."""
        made: list[Path] = []
        try:
            if (CGROUP_ROOT / "cgroup.controllers").is_file():             # v2, the unified hierarchy alone
                parent = CGROUP_ROOT / cls._own("")
                if not {"memory", "pids", "cpu"} <= set((parent / "cgroup.subtree_control").read_text().split()):
                    return None
                cls._remove_stale(parent)
                folder = parent / name
                folder.mkdir()
                made.append(folder)
                group = cls({"all": folder}, 2)
                (folder / "memory.max").write_text(str(limits.memory_bytes))
                (folder / "memory.swap.max").write_text("0") if (folder / "memory.swap.max").exists() else None
                (folder / "pids.max").write_text(str(limits.processes))
                (folder / "cpu.max").write_text("100000 100000")
                return group
            folders = {}
            for controller in V1_CONTROLLERS:
                base = CGROUP_ROOT / controller
                own = base / cls._own(controller)
                cls._remove_stale(own if own.is_dir() else base)
                folder = (own if own.is_dir() else base) / name
                folder.mkdir()
                made.append(folder)
                folders[controller] = folder
            (folders["memory"] / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
            (folders["pids"] / "pids.max").write_text(str(limits.processes))
            (folders["cpu"] / "cpu.cfs_period_us").write_text("100000")
            (folders["cpu"] / "cpu.cfs_quota_us").write_text("100000")
            return cls(folders, 1)
        except OSError:
            for folder in reversed(made):
                try:
                    folder.rmdir()
                except OSError:
                    pass
            return None

    def enter(self) -> None:
        """Put the calling process in the group (run between fork and exec: its children follow)."""
        pid = str(os.getpid())
        for folder in dict.fromkeys(self.folders.values()):
            with open(folder / "cgroup.procs", "w") as handle:
                handle.write(pid)

    def _pids(self) -> list[int]:
        pids = set()
        for folder in self.folders.values():
            try:
                pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                continue
        return sorted(pids)

    def cpu_seconds(self) -> float:
        """CPU seconds used by every process the group has held."""
        try:
            if self.version == 2:
                stats = dict(line.split() for line in (self.folders["all"] / "cpu.stat").read_text().splitlines())
                return int(stats["usage_usec"]) / 1e6
            return int((self.folders["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        except (OSError, KeyError, ValueError):
            return 0.0

    def memory_peak(self) -> int:
        """The most memory the group held at once, in bytes (0 where the kernel does not say)."""
        name = ("memory.peak", "all") if self.version == 2 else ("memory.max_usage_in_bytes", "memory")
        try:
            return int((self.folders[name[1]] / name[0]).read_text())
        except (OSError, KeyError, ValueError):
            return 0

    def kill(self) -> None:
        """SIGKILL every process of the group, until none is left (a fork between two reads included)."""
        for _ in range(100):
            pids = self._pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except (ProcessLookupError, PermissionError):
                    pass
            import time

            time.sleep(0.01)

    def remove(self) -> None:
        self.kill()
        import time

        for folder in dict.fromkeys(self.folders.values()):
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def describe_cgroup(cgroup: Cgroup | None, limits: Limits) -> str:
    """The grade's line on the limits of the worker as a whole."""
    if cgroup is None:
        return ("no cgroup could be made here: memory and CPU are limited per process (rlimits), so processes "
                "the submission starts can together use more, up to the grade's time budget")
    return (f"a cgroup (v{cgroup.version}) of its own limits the worker and all it starts together: "
            f"{limits.memory_bytes / 2**30:g} GiB of memory, {limits.processes} processes, one core at a time, "
            f"{limits.cpu_seconds} CPU seconds")


def preexec(limits: Limits, as_nobody: bool, cgroup: Cgroup | None = None):
    """The function run in the worker's process between fork and exec."""

    def confine() -> None:
        import ctypes
        import resource

        if cgroup is not None:
            cgroup.enter()

        for kind, value in ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_CPU, limits.cpu_seconds),
                            (resource.RLIMIT_AS, limits.memory_bytes), (resource.RLIMIT_FSIZE, limits.file_bytes),
                            (resource.RLIMIT_NOFILE, limits.open_files)):
            resource.setrlimit(kind, (value, value))
        if as_nobody:
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        # after the change of user, which clears it: SIGKILL when the judge's thread that started it ends
        ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)   # PR_SET_PDEATHSIG, SIGKILL

    return confine


def give_to_worker(path: Path, as_nobody: bool) -> None:
    """Make the worker's scratch folder (and what it holds) its own."""
    if not as_nobody:
        return
    for item in [path, *path.rglob("*")]:
        try:
            os.chown(item, NOBODY, NOBODY, follow_symlinks=False)
        except OSError:
            continue
