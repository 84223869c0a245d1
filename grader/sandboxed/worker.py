"""The worker: the process that imports a submission and runs its code for the spec, which stays in
the judge's process (grader/judge/remote.py). Started by the judge, sandboxed (see grader/judge/sandbox.py):

    python -m grader.sandboxed.worker --target PATH --fds R,W [--alias FILE] [--notebook-budget S]

It loads the submission once, answers ``ready`` with the load's outcome, then serves requests until
the channel closes: attribute lookups, calls, a few protocol methods on objects it keeps (handles),
and ``run`` (a function of the spec, given the implementation, for sequences that must happen in one
process: an optimizer the spec builds over the submission's parameters, say). Before every request
it takes the judge's random state, default dtype, grad mode and the sheet's rules in force; after it,
it puts back its own baseline settings and answers with the result as data (grader/sandboxed/channel.py), the
random state the call left, and the new values of the arguments the call changed in place.

Nothing here is trusted: the submission can replace any of it. The judge believes only data it
validates, and decides every verdict itself.
"""

from __future__ import annotations

import argparse
import builtins
import io
import os
import pickle
import random
import sys
import traceback

#: exceptions the judge raises again as themselves (a ``pytest.raises(ValueError)`` must see one);
#: any other exception, pytest's skip and exit among them, reaches the judge as a plain failure
PASSED_ON = ("ValueError", "TypeError", "RuntimeError", "IndexError", "KeyError", "LookupError",
             "ZeroDivisionError", "OverflowError", "ArithmeticError", "NotImplementedError",
             "AttributeError", "AssertionError", "FloatingPointError")
MAX_ITEMS = 1_000_000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.sandboxed.worker")
    parser.add_argument("--target", required=True)
    parser.add_argument("--fds", required=True)
    parser.add_argument("--alias", default=None)
    parser.add_argument("--notebook-budget", type=float, default=None)
    parser.add_argument("--stage", default=None, metavar="FROM:TO",
                        help="copy the folder FROM (read-only) into TO (the worker's own) before loading")
    args = parser.parse_args(argv)
    read_fd, write_fd = (int(fd) for fd in args.fds.split(","))
    if args.stage:
        import shutil

        source, _, destination = args.stage.partition(":")
        shutil.copytree(source, destination, symlinks=True, dirs_exist_ok=True)
    os.makedirs(os.path.join(os.environ.get("HOME", "."), "mpl"), exist_ok=True)

    import torch

    torch.set_num_threads(1)
    from grader.sandboxed import channel, implementation

    baseline = implementation.GlobalState()
    try:
        aliases = implementation.read_aliases(args.alias) if args.alias else {}
        module = implementation.load(args.target, notebook_budget=args.notebook_budget)
        # the judge notes the calls it makes (grader/judge/remote.py): not again here
        loaded, error = implementation.Implementation(module, args.target, aliases, note_calls=False), None
    except implementation.ImplementationNotFound as exc:
        loaded, error = None, str(exc)
    except BaseException as exc:
        loaded, error = None, f"could not import {args.target}: {type(exc).__name__}: {exc}"
    finally:
        baseline.restore()
    run = loaded.notebook_run if loaded is not None else None
    server = Server(loaded, baseline)
    channel.send(write_fd, channel.dump({"ready": True, "error": error,
                                         "notebook": run.as_dict() if run is not None else None}))
    while True:
        try:
            request = channel.receive(read_fd, limit=2**40)
        except EOFError:
            return 0
        channel.send(write_fd, server.answer(request))


class Server:
    def __init__(self, loaded, baseline):
        self.loaded, self.baseline = loaded, baseline
        self.objects: dict[int, object] = {}
        self.next_id = 1
        self.rng = None     # the random state the last reply reported, and where the call began
        self.rng_start = None

    def keep(self, value) -> int:
        number, self.next_id = self.next_id, self.next_id + 1
        self.objects[number] = value
        return number

    def answer(self, payload: bytes) -> bytes:
        from grader.sandboxed import channel

        resolved: set[int] = set()
        reply: dict = {}
        try:
            request = _Unpickler(io.BytesIO(payload), self, resolved).load()
        except BaseException as exc:
            return channel.dump({"error": _describe(exc, "could not read the request")})
        for number in request.get("release", ()):
            self.objects.pop(number, None)
        args, kwargs = request.get("args", ()), request.get("kwargs", {})
        leaves = mutable_leaves((args, kwargs), skip=resolved)
        before = [_snapshot(leaf) for leaf in leaves]
        try:
            with self.context(request["ctx"]) as seen:
                result = self.perform(request["op"], request.get("target"), args, kwargs)
            reply["seen"] = sorted(seen)
            reply["ok"] = channel.to_wire(result, self.keep)
        except BaseException as exc:
            reply["error"] = _describe(exc)
        finally:
            reply["ctx"] = channel.to_wire(self.leave(), self.keep)
        try:
            states = [_changed(leaf, old) for leaf, old in zip(leaves, before, strict=True)]
            reply["changed"] = [[i, channel.to_wire(state, self.keep)] for i, state in enumerate(states)
                                if state is not None]
            return channel.dump(reply)
        except BaseException as exc:
            return channel.dump({"error": _describe(exc, "could not send the result back"), "ctx": reply["ctx"]})

    def perform(self, op: str, target, args, kwargs):
        from grader.sandboxed import implementation

        if op == "attr_impl":
            if self.loaded is None:
                raise implementation.MissingName("the implementation did not load")
            return getattr(self.loaded, target)
        if op == "has":
            return self.loaded is not None and self.loaded.has(target)
        if op == "run":
            return target(self.loaded, *args, **kwargs)
        obj = self.objects[target[0]]
        if op == "getattr":
            return getattr(obj, target[1])
        if op == "call":
            return obj(*args, **kwargs)
        if op == "getitem":
            return obj[args[0]]
        if op == "len":
            return len(obj)
        if op == "iter":
            items = []
            for item in obj:
                items.append(item)
                if len(items) > MAX_ITEMS:
                    raise ValueError(f"more than {MAX_ITEMS} items")
            return items
        if op in ("repr", "str"):
            return (repr if op == "repr" else str)(obj)[:4000]
        if op in ("float", "int", "bool", "index", "complex"):
            return {"float": float, "int": int, "bool": bool, "complex": complex,
                    "index": lambda o: o.__index__()}[op](obj)
        if op == "contains":
            return args[0] in obj
        raise ValueError(f"unknown request {op!r}")

    def context(self, ctx: dict):
        import contextlib

        import numpy as np
        import torch

        from grader.sandboxed import rules

        rng = ctx.get("rng")
        if rng is not None:
            self.rng = rng["torch"], tuple(rng["numpy"]), rng["random"]
        # the judge's state, or (not sent) the one the last reply reported: set again, as code may have run
        # since (the request's unpickling, a released object's __del__, the submission's own threads)
        if self.rng is not None:
            torch.set_rng_state(self.rng[0])
            np.random.set_state(self.rng[1])
            random.setstate(self.rng[2])
        self.rng_start = self.rng
        torch.set_default_dtype(getattr(torch, ctx.get("dtype", "float32")))
        torch.set_grad_enabled(bool(ctx.get("grad", True)))
        forbidden, observed = ctx.get("rules", ((), ()))
        return rules.guarded(tuple(forbidden), tuple(observed)) if forbidden or observed \
            else contextlib.nullcontext(set())

    def leave(self) -> dict:
        """The random state the call left (the judge continues from it, as in one process), then the
        worker's own settings put back."""
        import numpy as np

        now = random_state()
        start, self.rng = self.rng_start, now
        self.baseline.restore()
        if start is not None and same_random_state(now, start):
            return {}      # the call drew no random number
        name, keys, pos, has_gauss, cached = now[1]
        return {"rng": {"torch": now[0], "numpy": [name, keys, pos, has_gauss, cached],
                        "random": np.array(now[2][1], dtype=np.uint32), "gauss": now[2][2]}}


def random_state() -> tuple:
    """This process's random state: torch's, numpy's global one, Python's (the judge reads its own with this
    too, so that :func:`same_random_state` compares like with like)."""
    import numpy as np
    import torch

    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def same_random_state(a: tuple, b: tuple) -> bool:
    """Whether two (torch, numpy, random) states are the same (the judge compares its own with this too)."""
    import numpy as np
    import torch

    return bool(torch.equal(a[0], b[0])) and a[1][2:] == b[1][2:] and np.array_equal(a[1][1], b[1][1]) \
        and a[2] == b[2]


class _Unpickler(pickle.Unpickler):
    """Requests name the worker's own objects by handle; those are resolved here, not copied."""

    def __init__(self, file, server: Server, resolved: set[int]):
        super().__init__(file)
        self.server, self.resolved = server, resolved

    def persistent_load(self, pid):
        kind = pid[0]
        if kind == "impl":
            return self.server.loaded
        obj = self.server.objects.get(pid[1])
        if obj is None:
            raise pickle.UnpicklingError(f"handle {pid[1]} is no longer held by the worker")
        self.resolved.add(id(obj))
        return obj


def mutable_leaves(value, *, skip=frozenset(), depth: int = 0) -> list:
    """The tensors, arrays and modules among a call's arguments, in one order on both sides: what a
    call may change in place and the judge must see changed, as in one process."""
    import numpy as np
    import torch

    found: list = []
    if depth > 20 or id(value) in skip:
        return found
    if isinstance(value, (torch.Tensor, np.ndarray, torch.nn.Module)):
        return [value]
    if type(value) in (list, tuple):
        for item in value:
            found += mutable_leaves(item, skip=skip, depth=depth + 1)
    elif type(value) is dict:
        for item in value.values():
            found += mutable_leaves(item, skip=skip, depth=depth + 1)
    return found


def _snapshot(leaf):
    import numpy as np
    import torch

    if isinstance(leaf, np.ndarray):
        return leaf.copy()
    if isinstance(leaf, torch.Tensor):
        grad = leaf.grad.detach().clone() if leaf.grad is not None else None
        return leaf.detach().clone(), grad, leaf.requires_grad
    return {k: v.detach().clone() for k, v in leaf.state_dict().items()}, \
        {k: (p.grad.detach().clone() if p.grad is not None else None) for k, p in leaf.named_parameters()}


def _same(a, b) -> bool:
    import torch

    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))


def _changed(leaf, old):
    """The leaf's new state where the call changed it, else None."""
    import numpy as np
    import torch

    if isinstance(leaf, np.ndarray):
        same = leaf.shape == old.shape and leaf.dtype == old.dtype and np.array_equal(leaf, old, equal_nan=True)
        return None if same else {"array": leaf}
    if isinstance(leaf, torch.Tensor):
        value, grad, flag = old
        now_grad = leaf.grad.detach() if leaf.grad is not None else None
        if _same(leaf.detach(), value) and _same(now_grad, grad) and leaf.requires_grad == flag:
            return None
        return {"value": leaf.detach(), "grad": now_grad, "requires_grad": bool(leaf.requires_grad),
                "value_changed": not _same(leaf.detach(), value)}
    states, grads = old
    now = leaf.state_dict()
    now_grads = {k: (p.grad.detach() if p.grad is not None else None) for k, p in leaf.named_parameters()}
    if now.keys() == states.keys() and all(_same(now[k].detach(), states[k]) for k in now) and \
            now_grads.keys() == grads.keys() and all(_same(now_grads[k], grads[k]) for k in now_grads):
        return None
    return {"state": {k: v.detach() for k, v in now.items()}, "grads": now_grads}


#: where a frame is the grader's or a library's, never the student's
_NOT_THE_STUDENTS = tuple({os.path.dirname(os.path.abspath(__file__)), sys.prefix, sys.base_prefix,
                           sys.exec_prefix, os.path.dirname(os.__file__)})


def students_traceback(exc: BaseException) -> str:
    """The traceback of an exception raised in the submission, with only the submission's own frames
    (its files and notebook cells, each with its source line): the worker's and the libraries' frames
    are dropped, so that the student reads where in their code it failed."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__)
              if not frame.filename.startswith(_NOT_THE_STUDENTS) and not frame.filename.startswith("<frozen")]
    lines = [f'  File "{frame.filename if frame.filename.startswith("<") else os.path.basename(frame.filename)}", '
             f"line {frame.lineno}, in {frame.name}" + (f"\n    {frame.line.strip()}" if frame.line else "")
             for frame in frames[-8:]]
    head = "Traceback (your code, most recent call last):\n" if lines else ""
    return head + "\n".join(lines) + ("\n" if lines else "") + "".join(traceback.format_exception_only(exc)).strip()


def _describe(exc: BaseException, doing: str = "") -> dict:
    from grader.sandboxed import implementation, rules

    passed_on = next((k.__name__ for k in type(exc).__mro__
                      if k.__name__ in PASSED_ON and getattr(builtins, k.__name__, None) is k), None)
    spec_kind = ("MissingName" if isinstance(exc, implementation.MissingName)
                 else "RuleViolation" if isinstance(exc, rules.RuleViolation) else None)
    try:
        message = str(exc)
    except BaseException:
        message = "(the exception's message could not be read)"
    try:
        text = students_traceback(exc)
    except BaseException:
        text = ""
    kind = type(exc)
    return {"type": f"{kind.__module__}.{kind.__qualname__}"[:200], "builtin": passed_on, "spec": spec_kind,
            "message": (f"{doing}: " if doing else "") + message[:4000], "traceback": text[-6000:]}


if __name__ == "__main__":
    sys.exit(main())
