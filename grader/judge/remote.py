"""The judge's side of isolated mode (``pytest --isolate``, and always under ``python -m spec.grade``):
the submission runs in a worker process (grader/sandboxed/worker.py, confined as grader/judge/sandbox.py says) and the
spec, in this process, reaches it only through the channel (grader/sandboxed/channel.py):

* ``impl.name`` asks the worker for the name: data comes back as a copy, anything else (a function,
  a class, a model, a history object) as a :class:`Handle`;
* calling a handle sends the arguments by copy (the spec's tensors, arrays, functions, modules and
  optimizers; handles go back as references to the worker's objects) with the default dtype, grad mode
  and sheet rules in force, and the random state where the judge moved it since the worker's last
  reply; the result comes back as data or a handle; the random state the call left (where it drew),
  and every argument the call changed in place, come back too, so a test reads the same as in one
  process;
* ``impl.run(function, *args)`` runs a spec function in the worker as ``function(impl, *args)``, for
  sequences that need the submission's objects and the spec's in one place (an optimizer over a
  submission's parameters); it returns data like any call;
* an exception in the worker is raised here again: a ``ValueError``, ``TypeError`` and the other
  builtin errors a test may expect as themselves, anything else (pytest's skip included) as a
  :class:`SubmissionError`, a plain failure;
* a worker that dies or stops answering (the test's timeout) fails the test that was waiting and is
  started afresh for the next one, up to :data:`MAX_STARTS` times;
* the submission's CPU time is what its limits count: a watcher ends the worker (its whole cgroup, or
  its process tree) once its processes have used more CPU seconds during one test than the test's
  limit (``--worker-cpu-limit``), failing that test with "used N CPU seconds during this test, over the
  limit of M", or more while loading than a load may (a notebook's budget and the interpreter's start).
  The judge's own time (its expected values, its reference runs) and a busy machine never count; the
  wall clock only bounds a hang (the test's timeout, pytest-timeout in the judge).

Nothing the worker sends is trusted: replies are parsed as JSON and tensor bytes (grader/judge/wire.py) and
validated.
"""

from __future__ import annotations

import atexit
import builtins
import collections
import functools
import io
import math
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cloudpickle

from grader.judge import sandbox
from grader.sandboxed import notebook
from grader.sandboxed.worker import PASSED_ON, mutable_leaves
from grader.sandboxed.worker import random_state as _rng_now
from grader.sandboxed.worker import same_random_state as _same_rng
from spec.plugins import leaks


class _Deferred:
    """A module imported at its first use, which then takes this stand-in's place among the globals:
    launching a worker needs none of torch, numpy and the channel's halves, so a grade's judge imports
    this module and starts its worker before it imports those (grader/judge/early.py)."""

    def __init__(self, module: str, name: str):
        self._module, self._name = module, name

    def __getattr__(self, attribute: str):
        import importlib

        module = importlib.import_module(self._module)
        globals()[self._name] = module
        return getattr(module, attribute)


np = _Deferred("numpy", "np")
torch = _Deferred("torch", "torch")
wire = _Deferred("grader.judge.wire", "wire")
channel = _Deferred("grader.sandboxed.channel", "channel")
implementation = _Deferred("grader.sandboxed.implementation", "implementation")
rules = _Deferred("grader.sandboxed.rules", "rules")

MAX_STARTS = 16                # worker starts in one session (the first included)
OUTPUT_CAP = 256 * 2**10       # bytes of the worker's stdout and stderr kept; the rest is drained
#: in-place changes the submission made to the values of the spec's tensor and array arguments during
#: the running test (cleared before each test): reported as a robustness failure, never copied back, so
#: that no expected value the spec computes from its own inputs can be steered by the submission
CHANGED_INPUTS: list[str] = []
READY_TIMEOUT = 600.0          # seconds a worker may take to import the submission (a notebook has its own budget)
#: CPU seconds a worker may use to start beside a notebook's own budget: the interpreter, torch, the import
LOAD_CPU_S = 60.0
CPU_POLL_S = 0.25              # how often the watcher reads the worker's CPU time
#: the words every failure for a test's CPU limit carries (the records take such a test as timed out)
CPU_LIMIT_MARK = "CPU seconds during this test, over the limit of"


class SubmissionError(Exception):
    """An exception raised by the submission's code in the worker, other than the builtin errors
    tests expect by type. Shown as ``SubmissionError: NameError: ...`` (not under this module's path:
    the student reads it)."""


SubmissionError.__module__ = "builtins"


class WorkerCrashed(Exception):
    """The worker ended, or was ended, while a test waited on it."""


class CpuLimitExceeded(WorkerCrashed):
    """The submission's processes used more CPU seconds during a test than its limit: ended by the watcher."""


class Worker:
    """One worker process, started on demand and again after a crash."""

    def __init__(self, target: str, *, alias: str | None, notebook_budget: float | None, hide_reference: bool,
                 scratch: Path | None, limits: sandbox.Limits, call_timeout: float | None = None,
                 test_cpu_seconds: float | None = None):
        self.target, self.alias, self.notebook_budget = target, alias, notebook_budget
        self.hide_reference, self.limits, self.call_timeout = hide_reference, limits, call_timeout
        self.own_scratch = scratch is None
        self.scratch = Path(tempfile.mkdtemp(prefix="spec-worker-")) if scratch is None else Path(scratch)
        readable = [Path(p).parent if Path(p).is_file() else Path(p) for p in (target, alias) if p and os.sep in p]
        self.prefix, self.as_nobody, self.isolation = sandbox.plan(
            self.scratch, hide_reference=hide_reference, readable=tuple(p for p in readable if p.exists()))
        self.process: subprocess.Popen | None = None
        self.starts, self.generation = 0, 0
        self.load_error: str | None = None
        self.notebook: dict | None = None
        self.output = bytearray()
        self.output_total = 0
        self.released: list[int] = []
        # the random state the worker holds as the judge knows it (None: unknown, sent with the next call);
        # a call sends the judge's state only where it differs, a reply the worker's only where it moved
        self.rng_held: tuple | None = None
        self.last_exit = ""
        self.cgroup: sandbox.Cgroup | None = None
        self.over_limit = ""          # why the watchdog ended the worker's group, if it did
        # the CPU time of the submission's processes, per test (see begin_test) and while loading
        self.test_cpu_seconds = test_cpu_seconds
        budget = notebook.DEFAULT_BUDGET if notebook_budget is None else notebook_budget
        self.load_cpu_seconds = budget + LOAD_CPU_S
        self._cpu_lock = threading.Lock()
        self.ready = False            # the current generation has loaded the submission
        self.in_test = False
        self.test_used = 0.0          # CPU seconds of this test in generations of the worker that have ended
        self.test_base: float | None = None   # the current generation's CPU seconds when it began to count
        self.last_cpu = 0.0           # the current generation's CPU seconds at the watcher's last look
        self.cpu_exceeded = ""        # why the watcher ended the worker during the running test
        self.load_cpu_used = 0.0      # CPU seconds from each launch to ready, summed (the grade's profile)
        probe = sandbox.Cgroup.make(f"spec-probe-{os.getpid()}-{id(self)}", self.limits)
        if probe is not None:
            probe.remove()
        self.has_cgroup = probe is not None
        self.isolation += "; " + sandbox.describe_cgroup(probe, self.limits)
        atexit.register(self.close)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the worker's process, which loads the submission (a notebook's cells run there) while
        this process goes on (the judge collects the spec meanwhile); :meth:`wait_ready` waits for it."""
        if self.starts >= MAX_STARTS:
            raise WorkerCrashed(f"the submission's process was started {self.starts} times and ended each time; "
                                "no further start in this run")
        self.starts += 1
        self.generation += 1
        self.rng_held = None
        self.over_limit = ""
        with self._cpu_lock:
            self.ready, self.test_base, self.last_cpu = False, None, 0.0
        self.cgroup = sandbox.Cgroup.make(f"spec-worker-{os.getpid()}-{id(self)}-{self.generation}", self.limits)
        sandbox.give_to_worker(self.scratch, self.as_nobody)
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        command = [*self.prefix, sys.executable, "-B", "-m", "grader.sandboxed.worker", "--target", self.target,
                   "--fds", f"{to_worker_r},{from_worker_w}"]
        if self.prefix:
            command += ["--stage", f"{sandbox.STAGE}:{self.scratch}"]
        if self.alias:
            command += ["--alias", self.alias]
        if self.notebook_budget is not None:
            command += ["--notebook-budget", str(self.notebook_budget)]
        caches = self.scratch / ".caches"
        caches.mkdir(exist_ok=True)
        sandbox.give_to_worker(caches, self.as_nobody)
        env = sandbox.worker_environment(caches)
        try:
            self.process = subprocess.Popen(
                command, cwd=self.scratch, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, pass_fds=(to_worker_r, from_worker_w), start_new_session=True,
                preexec_fn=sandbox.preexec(self.limits, self.as_nobody, self.cgroup))
        finally:
            os.close(to_worker_r)
            os.close(from_worker_w)
        self.send_fd, self.receive_fd = to_worker_w, from_worker_r
        leaks.OWNED.add(self.process.pid)
        threading.Thread(target=self._watch_cpu, args=(self.cgroup, self.process), daemon=True,
                         name="spec-worker-cpu").start()
        threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True,
                         name="spec-worker-output").start()

    def wait_ready(self) -> None:
        try:   # the load's limit is CPU time (the watcher); the wall clock only bounds a hang
            ready = self._receive(max(READY_TIMEOUT, notebook.WALL_FACTOR * self.load_cpu_seconds))
        except (EOFError, OSError, channel.ChannelError) as exc:
            self.stop(grace=1.0)
            why = exc if isinstance(exc, channel.ChannelError) else f"it ended while loading the submission " \
                                                                    f"({self.last_exit})"
            raise WorkerCrashed(f"{why}{self._tail()}") from None
        except BaseException:
            self.stop()
            raise
        if not isinstance(ready, dict) or ready.get("ready") is not True:
            self.stop()
            raise WorkerCrashed("the submission's process did not start as expected")
        with self._cpu_lock:   # from here on the worker's CPU time is the running test's
            self.ready = True
            self.load_cpu_used += self._cpu_seconds(self.cgroup, self.process)
            if self.in_test:
                self.test_base = self._cpu_seconds(self.cgroup, self.process)
        error = ready.get("error")
        self.load_error = error[:4000] if isinstance(error, str) else None
        if self.starts == 1:
            self.notebook = _notebook_record(ready.get("notebook"))

    def _drain(self, stream) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            self.output_total += len(chunk)
            room = OUTPUT_CAP - len(self.output)
            if room > 0:
                self.output += chunk[:room]

    def stop(self, grace: float = 0.0) -> None:
        """Kill the worker's whole process group and reap it (after ``grace`` seconds for it to end by
        itself, so that its own exit status is the one reported)."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            process.wait(timeout=grace) if grace else None
        except subprocess.TimeoutExpired:
            pass
        for fd in (self.send_fd, self.receive_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.kill()
        except OSError:
            pass
        process.wait()
        with self._cpu_lock:   # what this generation used in the running test stays counted
            if self.in_test and self.test_base is not None:
                self.test_used += max(0.0, self.last_cpu - self.test_base)
            self.ready, self.test_base = False, None
        code = process.returncode
        self.last_exit = f"signal {-code}" if code < 0 else f"exit status {code}"
        if self.over_limit:
            self.last_exit += f": {self.over_limit}"
        cgroup, self.cgroup = self.cgroup, None
        if cgroup is not None:
            cgroup.remove()   # whatever the worker started, setsid children included, ends with it

    @staticmethod
    def _cpu_seconds(cgroup, process) -> float:
        """CPU seconds used by the worker and all it started: its cgroup's count, else its process tree's."""
        return cgroup.cpu_seconds() if cgroup is not None else sandbox.tree_cpu_seconds(process.pid)

    # ---------------------------------------------------------------- CPU time, per test
    def begin_test(self) -> None:
        """From now on the worker's CPU time counts against the test that starts (a worker that is still
        loading, or restarted during the test, counts from its ``ready``: a load has its own limit)."""
        with self._cpu_lock:
            self.in_test, self.test_used, self.cpu_exceeded = True, 0.0, ""
            live = self.process is not None and self.ready
            self.test_base = self._cpu_seconds(self.cgroup, self.process) if live else None

    def end_test(self) -> None:
        with self._cpu_lock:
            self.in_test, self.test_base, self.cpu_exceeded = False, None, ""

    def test_cpu_used(self) -> float:
        """CPU seconds the submission's processes have used during the running test so far."""
        with self._cpu_lock:
            if self.test_base is not None and self.process is not None:
                self.last_cpu = max(self.last_cpu, self._cpu_seconds(self.cgroup, self.process))
            current = 0.0 if self.test_base is None else max(0.0, self.last_cpu - self.test_base)
            return self.test_used + current

    def _watch_cpu(self, cgroup, process, every: float = CPU_POLL_S) -> None:
        """End the worker's whole group (or process tree) once its processes have used more CPU seconds
        than allowed: during the running test (its limit), while loading, or in all (the cgroup's total)."""
        while process.poll() is None and self.process is process:
            used = self._cpu_seconds(cgroup, process)
            why = ""
            with self._cpu_lock:
                if self.process is not process:
                    return
                self.last_cpu = used
                if cgroup is not None and used > self.limits.cpu_seconds:
                    why = (f"the submission's processes together used {used:.0f} CPU seconds, "
                           f"past the limit of {self.limits.cpu_seconds}")
                elif not self.ready and used > self.load_cpu_seconds:
                    why = (f"the submission's processes used {used:.0f} CPU seconds while loading it, past the "
                           f"limit of {self.load_cpu_seconds:g}")
                elif self.in_test and self.test_base is not None and self.test_cpu_seconds is not None:
                    spent = self.test_used + used - self.test_base
                    if spent > self.test_cpu_seconds:
                        why = self.cpu_exceeded = (
                            f"the submission's processes used {spent:.1f} {CPU_LIMIT_MARK} "
                            f"{self.test_cpu_seconds:g} (their own CPU time: the judge's time and a busy machine "
                            f"do not count); they were ended")
            if why:
                self.over_limit = why
                if cgroup is not None:
                    cgroup.kill()
                else:
                    try:
                        os.killpg(process.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                return
            time.sleep(every)

    def close(self) -> None:
        self.stop()
        if self.own_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    # ---------------------------------------------------------------- requests
    def request(self, op: str, target=None, args=(), kwargs=None, judge=None, owner: int | None = None):
        """``owner``: the generation of the worker that holds ``target``'s object (a handle's): a worker
        started since holds other objects under the same numbers, so the call fails instead."""
        kwargs = kwargs or {}
        if self.cpu_exceeded:          # ended by the watcher during this test: it fails
            self.stop()
            raise CpuLimitExceeded(self.cpu_exceeded)
        if self.process is not None and self.over_limit:   # ended by the watcher before this test
            self.stop()
        if self.process is None:
            self.start()
        generation = self.generation
        if owner is not None and owner != generation:
            raise WorkerCrashed("this object lived in a submission process that has since ended")
        leaves = mutable_leaves((args, kwargs))
        buffer = io.BytesIO()
        pickler = _Pickler(buffer, self, generation, judge)
        released, self.released = self.released, []
        now = _rng_now()
        ctx = _context(None if self.rng_held is not None and _same_rng(now, self.rng_held) else now)
        self.rng_held = None   # unknown until the reply is read
        pickler.dump({"op": op, "target": target, "args": args, "kwargs": kwargs, "ctx": ctx,
                      "release": released})
        try:
            channel.send(self.send_fd, buffer.getvalue())
            reply = self._receive(self.call_timeout)
        except BaseException as exc:
            # a timeout, an interrupt or a dead worker: the channel is out of step, start afresh
            self.stop(grace=1.0 if isinstance(exc, (EOFError, OSError)) else 0.0)
            if self.cpu_exceeded:
                raise CpuLimitExceeded(self.cpu_exceeded) from None
            if isinstance(exc, (EOFError, OSError, channel.ChannelError)):
                why = exc if isinstance(exc, channel.ChannelError) else f"it ended ({self.last_exit})"
                raise WorkerCrashed(f"the submission's process failed during this call: {why}{self._tail()}") from None
            raise
        if not isinstance(reply, dict):
            self.stop()
            raise channel.ChannelError("the worker's reply is not a mapping")
        make = lambda info: Handle(judge, info, generation)
        try:
            if "ctx" in reply:
                # the worker's, moved or not: the same as the judge's now (the state the call began from
                # where it drew no random number)
                self.rng_held = _apply_context(reply["ctx"]) or now
            seen = reply.get("seen", [])
            if type(seen) is list and all(type(name) is str for name in seen):
                rules.note_seen(seen)   # what the sheet's "use ..." rules observed in the worker
            for item in reply.get("changed", ()):
                index, state = item
                _apply_change(leaves[index], wire.from_wire(state, make), f"argument {index} ({op})")
            if "ok" in reply:
                return wire.from_wire(reply["ok"], make)
            error = reply.get("error")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise channel.ChannelError(f"malformed reply: {type(exc).__name__}: {exc}") from None
        raise _exception(error)

    def _receive(self, timeout: float | None):
        if timeout is not None:
            ready, _, _ = select.select([self.receive_fd], [], [], timeout)
            if not ready:
                raise WorkerCrashed(f"the submission's process did not answer within {timeout:g} s")
        payload = channel.receive(self.receive_fd)
        wire.new_reply()
        return wire.load(payload)

    def _tail(self) -> str:
        if not self.output:
            return ""
        text = bytes(self.output[-1500:]).decode("utf-8", errors="replace").strip()
        return f"; its last output: {text}" if text else ""


class _Pickler(cloudpickle.CloudPickler):
    """Handles and the implementation go to the worker as references to its own objects."""

    def __init__(self, file, worker: Worker, generation: int, judge):
        super().__init__(file, protocol=5)
        self.worker, self.generation, self.judge = worker, generation, judge

    @property
    def dispatch_table(self):   # read once, as the pickler is made
        return _request_reducers()

    def persistent_id(self, obj):
        if isinstance(obj, Handle):
            if object.__getattribute__(obj, "_generation") != self.generation:
                raise WorkerCrashed("this object lived in a submission process that has since ended")
            return ("h", object.__getattribute__(obj, "_id"))
        if isinstance(obj, RemoteImplementation):
            return ("impl",)
        return None


@functools.cache
def _request_reducers():
    """cloudpickle's reducers, and a tensor's storage (what torch reduces a tensor's data to) as its bytes
    where the channel carries its dtype (grader/sandboxed/channel.py storage_bytes), else torch's own."""
    return collections.ChainMap({torch.storage.TypedStorage: lambda storage: channel.storage_bytes(storage)
                                 or storage.__reduce__()}, cloudpickle.CloudPickler.dispatch_table)


def _context(rng: tuple | None) -> dict:
    """What a call runs under; ``rng`` the random state to continue from, None where the worker holds
    it already (the state its last reply left, which the judge has not moved since)."""
    ctx = {"dtype": str(torch.get_default_dtype()).removeprefix("torch."), "grad": torch.is_grad_enabled(),
           "rules": rules.active()}
    if rng is not None:
        torch_state, numpy_state, (version, keys, gauss) = rng
        ctx["rng"] = {"torch": torch_state, "numpy": numpy_state, "random": (version, keys, gauss)}
    return ctx


def _apply_context(ctx) -> tuple | None:
    """Continue from the random state the call left, after checking it is one; returns that state as
    :func:`grader.sandboxed.worker.random_state` reads it. None for a reply without one: the call drew no
    random number, the judge's state is the worker's."""
    tree = wire.from_wire(ctx, lambda info: None)
    if type(tree) is not dict:
        raise channel.ChannelError("the worker's context is malformed")
    if "rng" not in tree:
        return None
    tree = tree["rng"]
    state = tree["torch"]
    current = torch.get_rng_state()
    if type(state) is not torch.Tensor or state.dtype != torch.uint8 or state.shape != current.shape:
        raise channel.ChannelError("the worker's torch random state is malformed")
    name, keys, pos, has_gauss, cached = tree["numpy"]
    if name != "MT19937" or type(keys) is not np.ndarray or keys.dtype != np.uint32 or keys.shape != (624,) \
            or type(pos) is not int or not 0 <= pos <= 624 or has_gauss not in (0, 1) or type(cached) is not float:
        raise channel.ChannelError("the worker's numpy random state is malformed")
    words, gauss = tree["random"], tree.get("gauss")   # gauss: random.gauss's cached second value, or None
    if type(words) is not np.ndarray or words.dtype != np.uint32 or words.shape != (625,) or words[624] > 624 \
            or not (gauss is None or (type(gauss) is float and math.isfinite(gauss))):
        raise channel.ChannelError("the worker's random state is malformed")
    numpy_state, random_words = (name, keys, pos, has_gauss, cached), (3, tuple(words.tolist()), gauss)
    torch.set_rng_state(state)
    np.random.set_state(numpy_state)
    random.setstate(random_words)
    return state, numpy_state, random_words


def _apply_change(leaf, state, what: str) -> None:
    """What the call did to one of the judge's arguments in the worker. A module the spec handed over
    (a model to train) takes its new state; a tensor its new grad and requires_grad; a change to the
    values of a tensor or array is recorded in CHANGED_INPUTS, not copied."""
    if type(state) is not dict:
        raise channel.ChannelError("a changed argument's state is not a mapping")
    if isinstance(leaf, np.ndarray):
        CHANGED_INPUTS.append(f"{what}: the submission changed the values of the spec's array in place")
        return
    if isinstance(leaf, torch.Tensor):
        grad, flag = state["grad"], state["requires_grad"]
        if state.get("value_changed", True):
            CHANGED_INPUTS.append(f"{what}: the submission changed the values of the spec's tensor in place")
        if leaf.is_leaf and type(flag) is bool and (leaf.is_floating_point() or leaf.is_complex()):
            leaf.requires_grad_(flag)
        if leaf.is_leaf:
            leaf.grad = grad.to(leaf.dtype) if type(grad) is torch.Tensor and grad.shape == leaf.shape else None
        return
    values, grads = state["state"], state["grads"]
    if type(values) is not dict or type(grads) is not dict:
        raise channel.ChannelError("a changed module's state is malformed")
    try:
        leaf.load_state_dict({k: v for k, v in values.items() if type(v) is torch.Tensor}, strict=False)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise channel.ChannelError(f"a changed module's state does not fit it: {exc}"[:300]) from None
    for name, parameter in leaf.named_parameters():
        grad = grads.get(name)
        parameter.grad = grad.to(parameter.dtype) if type(grad) is torch.Tensor and \
            grad.shape == parameter.shape else None


def _exception(error) -> BaseException:
    if type(error) is not dict:
        return channel.ChannelError("the worker's reply holds neither a result nor an error")
    text = lambda key: error.get(key) if type(error.get(key)) is str else ""
    message, kind, trace = text("message"), text("type"), text("traceback")
    if error.get("spec") == "MissingName":
        return implementation.MissingName(message)
    if error.get("spec") == "RuleViolation":
        exc: BaseException = rules.RuleViolation(message)
    elif error.get("builtin") in PASSED_ON:
        exc = getattr(builtins, error["builtin"])(message)
    else:
        exc = SubmissionError(f"{kind.removeprefix('builtins.')}: {message}")
    if trace:
        exc.add_note("raised by your code (its own lines only):\n" + trace)
    return exc


def _notebook_record(data) -> notebook.NotebookRun | None:
    """The worker's account of a notebook's cells, rebuilt from checked fields."""
    if type(data) is not dict or type(data.get("cells")) is not list:
        return None
    cells = []
    for cell in data["cells"]:
        if type(cell) is not dict:
            continue
        fields = {"index": int, "first_line": str, "status": str, "error": str, "defines": list, "not_run": list}
        if all(type(cell.get(k)) is t for k, t in fields.items()):
            cells.append(notebook.Cell(**{k: cell[k] for k in fields}))
    return notebook.NotebookRun(Path(str(data.get("path", ""))), cells,
                                notebook.finite_seconds(data.get("seconds")) or 0.0)


#: the handles of the submission's functions the running test has looked up (cleared before each test): a
#: test that calls ``impl.f`` in a loop asks the worker for ``f`` once
FUNCTIONS: dict[tuple[int, str], Handle] = {}


class Handle:
    """An object that stays in the worker. Attribute access, calls, indexing, ``len``, iteration and
    the numeric conversions are answered by the worker, each with a copy."""

    __slots__ = ("__weakref__", "_callable", "_generation", "_id", "_judge", "_label", "_type")

    def __init__(self, judge: RemoteImplementation, info: dict, generation: int):
        for key, value in (("_judge", judge), ("_id", info["id"]), ("_type", info["type"]),
                           ("_callable", info["callable"]), ("_generation", generation), ("_label", None)):
            object.__setattr__(self, key, value)

    def _ask(self, op, *args, name=None):
        judge = object.__getattribute__(self, "_judge")
        target = (object.__getattribute__(self, "_id"),) if name is None else \
            (object.__getattribute__(self, "_id"), name)
        return judge.worker.request(op, target, args, {}, judge=judge,
                                    owner=object.__getattribute__(self, "_generation"))

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __setattr__(self, name, value):
        raise AttributeError(f"{name}: objects of the submission are read through the channel, not written; "
                             "use impl.run(...) for code that changes them")

    def __call__(self, *args, **kwargs):
        label = object.__getattribute__(self, "_label")
        if label is not None:   # a function of the interface: its call is shown when the test fails
            implementation.note_call(label, args, kwargs)
        judge = object.__getattribute__(self, "_judge")
        return judge.worker.request("call", (object.__getattribute__(self, "_id"),), args, kwargs, judge=judge,
                                    owner=object.__getattribute__(self, "_generation"))

    def __getitem__(self, key):
        return self._ask("getitem", key)

    def __len__(self):
        return self._ask("len")

    def __iter__(self):
        return iter(self._ask("iter"))

    def __contains__(self, item):
        return self._ask("contains", item)

    def __float__(self):
        return self._ask("float")

    def __int__(self):
        return self._ask("int")

    def __index__(self):
        return self._ask("index")

    def __bool__(self):
        return self._ask("bool")

    def __repr__(self):
        return f"<{object.__getattribute__(self, '_type')} in the submission's process>"

    def __del__(self):
        try:
            judge = object.__getattribute__(self, "_judge")
            if object.__getattribute__(self, "_generation") == judge.worker.generation:
                judge.worker.released.append(object.__getattribute__(self, "_id"))
        except Exception:
            pass


class RemoteImplementation:
    """The same interface as :class:`grader.sandboxed.implementation.Implementation`, reached through a worker."""

    def __init__(self, worker: Worker, label: str):
        self.worker, self._label = worker, label

    @property
    def label(self) -> str:
        return self._label

    @property
    def isolation(self) -> str:
        return self.worker.isolation

    @property
    def notebook_run(self):
        return self.worker.notebook

    def has(self, name: str) -> bool:
        return bool(self.worker.request("has", name, judge=self))

    def run(self, function, /, *args, **kwargs):
        return self.worker.request("run", function, args, kwargs, judge=self)

    def __getattr__(self, name: str):
        if name.startswith("__") or name in implementation.PROBES:
            raise AttributeError(name)
        if not name.startswith("_"):
            implementation.ACCESSED.add(name)
        known = FUNCTIONS.get((id(self), name))
        worker = self.worker
        if known is not None and object.__getattribute__(known, "_generation") == worker.generation and \
                worker.process is not None and not worker.over_limit and not worker.cpu_exceeded:
            return known    # else the lookup below starts a new worker and its own handle
        value = worker.request("attr_impl", name, judge=self)
        if isinstance(value, Handle) and object.__getattribute__(value, "_callable") and \
                object.__getattribute__(value, "_type") == "builtins.function":
            object.__setattr__(value, "_label", name)
            FUNCTIONS[(id(self), name)] = value
        return value

    def __repr__(self) -> str:
        return f"<implementation under test: {self._label}, in a worker process>"


def start(target: str, *, alias: str | None = None, notebook_budget: float | None = None,
          hide_reference: bool = False, scratch: Path | None = None, call_timeout: float | None = None,
          limits: sandbox.Limits | None = None, test_cpu_seconds: float | None = None
          ) -> tuple[RemoteImplementation | None, str | None, Worker]:
    """Start a worker on ``target``: (the implementation, or None and why it did not load, the worker).
    ``test_cpu_seconds``: the CPU seconds the submission's processes may use during one test."""
    return finish_start(launch(target, alias=alias, notebook_budget=notebook_budget, hide_reference=hide_reference,
                               scratch=scratch, call_timeout=call_timeout, limits=limits,
                               test_cpu_seconds=test_cpu_seconds))


def launch(target: str, *, alias: str | None = None, notebook_budget: float | None = None,
           hide_reference: bool = False, scratch: Path | None = None, call_timeout: float | None = None,
           limits: sandbox.Limits | None = None, test_cpu_seconds: float | None = None) -> Worker:
    """A worker on ``target``, its process started (or the reason it could not be, kept for
    :func:`finish_start`): the submission loads while the caller goes on."""
    worker = Worker(target, alias=alias, notebook_budget=notebook_budget, hide_reference=hide_reference,
                    scratch=scratch, limits=limits or sandbox.Limits(), call_timeout=call_timeout,
                    test_cpu_seconds=test_cpu_seconds)
    worker.launched_at, worker.launched_wall = time.perf_counter(), time.time()
    try:
        worker.launch()
    except (WorkerCrashed, channel.ChannelError, EOFError, OSError) as exc:
        worker.launch_error = exc
    return worker


def finish_start(worker: Worker) -> tuple[RemoteImplementation | None, str | None, Worker]:
    """Wait for a launched worker to be ready: (the implementation, or None and why it did not load, the
    worker)."""
    try:
        if getattr(worker, "launch_error", None) is not None:
            raise worker.launch_error
        worker.wait_ready()
    except (WorkerCrashed, channel.ChannelError, EOFError, OSError) as exc:
        return None, f"the submission's process did not start: {exc}{worker._tail()}", worker
    worker.ready_seconds = time.perf_counter() - worker.launched_at
    if worker.load_error:
        return None, worker.load_error, worker
    return RemoteImplementation(worker, worker.target), None, worker
