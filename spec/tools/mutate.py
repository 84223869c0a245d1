"""Mutation testing of the reference solutions through the spec's own selector: each mutant is a
copy of the impl package with one small change (an arithmetic or comparison operator swapped, a
numeric constant changed, a unary minus dropped), graded as ``--impl=<copy>`` on the exercises of
its module. A mutant is killed when some test of those exercises fails (or its run outlives the
timeout: a mutant that hangs is caught by the grader's timeouts).

    python -m spec.tools.mutate impl/calculus.py [impl/handbuilt.py ...] [--limit N] [--sample N]
                                [--seed S] [--timeout S] [--jobs N]

Prints every surviving mutant (the line and the change) and the kill rate. Equivalent mutants (a
change that cannot alter any result) survive by nature; the rest point at claims to strengthen.

One process imports torch & co once and forks a pytest run per mutant (spec/selftest/runner.py),
``--jobs`` at a time, each on its own copy of the package (nothing of a mutant resolves to ``impl``),
with the default hypothesis profile of a real run (ci), stopping at the first failure. The unmutated
copy is run first on each module's selection: it must pass, and its time sets the default timeout.
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from spec.selftest.runner import batch_env, fork_runs

ROOT = Path(__file__).resolve().parents[2]
SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult,
         ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}
# the exercises whose tests exercise each impl module (repeated --exercise selections); every
# module under impl/ is listed (spec/tools/test_mutate.py checks it), the data-free ones included
TOPIC_OF_MODULE = {
    "__init__": ("ps09.1",),
    "_checks": ("ps09.1", "dl-a1.q2b", "dl-a1.q5a"),
    "_training": ("moons.baseline", "a7.cnn", "dl-a1.q4d"),
    "backprop": ("moons.manual",),
    "calculus": ("ps09.1",),
    "conv": ("a7.conv2d", "a7.cnn"),
    "data": ("ex08.linreg", "moons.baseline", "ps09.2"),
    "finite_differences": ("dl-a1.q1c",),
    "handbuilt": ("dl-a1.q3",),
    "housing": ("dl-a1.q1d",),
    "initialization": ("dl-a1.q4",),
    "jacobians": ("dl-a1.q2",),
    "linear": ("ex08.linreg", "ex08.mlp", "dl-a1.q5", "ps09.2"),
    "logcosh_net": ("dl-a1.q1",),
    "logreg": ("a7.logreg",),
    "moons": ("moons.baseline", "moons.deep", "moons.grad-norms"),
    "vanishing": ("ex08.vanishing", "a7.backprop-eqs", "a7.sigmoid-factor", "a7.activation-eq4", "a7.depth-study"),
}


def mutation_sites(tree: ast.AST):
    """(node, description, apply, undo) for every mutable spot, in source order, outside docstrings."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in SWAPS:
            old = node.op
            yield node, f"{type(old).__name__} -> {SWAPS[type(old)].__name__}", \
                lambda n=node, o=old: setattr(n, "op", SWAPS[type(o)]()), lambda n=node, o=old: setattr(n, "op", o)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in SWAPS:
            old = node.ops[0]
            yield node, f"{type(old).__name__} -> {SWAPS[type(old)].__name__}", \
                lambda n=node, o=old: setattr(n, "ops", [SWAPS[type(o)]()]), \
                lambda n=node, o=old: setattr(n, "ops", [o])
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float) and not isinstance(node.value, bool):
            old = node.value
            new = old + 1 if old == 0 else old * 2
            yield node, f"{old!r} -> {new!r}", lambda n=node, v=new: setattr(n, "value", v), \
                lambda n=node, v=old: setattr(n, "value", v)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            yield node, "drop unary minus", lambda n=node: setattr(n, "op", ast.UAdd()), \
                lambda n=node: setattr(n, "op", ast.USub())


# an absolute import of the package: ``from impl.x import``, ``from impl import``, ``import impl.x``
_IMPORT = re.compile(r"^(\s*(?:from|import)\s+)impl(?=[\s.])", re.MULTILINE)
PACKAGE = "impl_mutant"


def _redirect(source: str) -> str:
    return _IMPORT.sub(rf"\g<1>{PACKAGE}", source)


def write_package(folder: Path, replace: dict[str, str] | None = None, *, source: Path = ROOT / "impl") -> Path:
    """A copy of the impl package as ``folder/impl_mutant``, its absolute imports redirected to the
    copy, ``replace`` (file name -> source) written over the original's files."""
    package = folder / PACKAGE
    package.mkdir(parents=True)
    for path in sorted(source.glob("*.py")):
        text = (replace or {}).get(path.name, path.read_text(encoding="utf-8"))
        text = _redirect(text)
        if _IMPORT.search(text) or "import_module" in text:
            raise RuntimeError(f"{path.name}: an import of the original package is left in the mutant")
        (package / path.name).write_text(text, encoding="utf-8")
    return package


@dataclass(frozen=True)
class Mutant:
    module: str        # the file name, e.g. calculus.py
    line: int
    description: str
    source: str        # the mutated module

    def __str__(self):
        return f"{self.module}:{self.line}: {self.description}"


def mutants_of(module_path: Path, *, limit: int | None = None, sample: int | None = None,
               seed: int = 0) -> list[Mutant]:
    source = module_path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    scopes = (ast.Module, ast.FunctionDef, ast.ClassDef)
    docstrings = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, scopes)
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    sites = [s for s in mutation_sites(tree) if id(s[0]) not in docstrings]
    if sample and sample < len(sites):   # a seeded spread over the whole module, in source order
        sites = sorted(random.Random(f"{module_path.name}:{seed}").sample(sites, sample),
                       key=lambda site: (site[0].lineno, site[0].col_offset))
    sites = sites[:limit] if limit else sites
    mutants = []
    for node, description, apply, undo in sites:
        apply()
        try:
            mutated = ast.unparse(tree)
        finally:
            undo()
        mutants.append(Mutant(module_path.name, node.lineno, description, mutated))
    return mutants


def count_sites(module_path: Path) -> int:
    return len(mutants_of(module_path))


def selection_of(module_path: Path, topics: dict[str, tuple[str, ...]] | None = None) -> tuple[str, ...]:
    selection = (topics or TOPIC_OF_MODULE).get(module_path.stem)
    if selection is None:
        raise SystemExit(f"{module_path}: no exercise selection known for this module")
    return selection


def test_files(selection: tuple[str, ...]) -> tuple[str, ...]:
    """The spec files of a selection's exercises (each exercise's tests live in its topic's file):
    collecting only those saves each mutant's run a second of importing the rest of the spec."""
    from spec.catalogue import load

    files = sorted({f"spec/test_{e.topic}.py" for s in selection for e in load().select(s)})
    return tuple(files) if files and all((ROOT / f).is_file() for f in files) else ("spec",)


def _command(folder: Path, selection: tuple[str, ...], paths: tuple[str, ...] | None) -> list[str]:
    return [*(paths or test_files(selection)), "-q", "-x", "-p", "no:randomly", "-p", "no:xdist",
            "-p", "no:cacheprovider", "--ignore=spec/selftest", "--ignore=spec/tools", "--ignore=spec/bench",
            "--exercise-first-failure",
            f"--basetemp={folder / 'pytest'}", f"--impl={PACKAGE}", *(f"--exercise={s}" for s in selection)]


def _run(folders: list[Path], selections: list[tuple[str, ...]], timeouts: list[float | None], *, paths, jobs,
         env, nice):
    """Runs the spec on each folder's package with its selection: yields (index, exit code, timed out,
    output) as each finishes."""
    runs = [{"args": _command(folder, selection, paths), "output": str(folder / "output.txt"),
             "path": [str(folder)], "env": {"PYTHONPATH": str(folder)}, "timeout": seconds}
            for folder, selection, seconds in zip(folders, selections, timeouts, strict=True)]
    for i, code, timed_out in fork_runs(runs, env=env, jobs=jobs, timeout=None, nice=nice):
        yield i, code, timed_out, Path(runs[i]["output"]).read_text(encoding="utf-8", errors="replace")


def run_mutants(modules: list[Path], *, limit: int | None = None, sample: int | None = None, seed: int = 0,
                timeout: float | None = None, jobs: int = 1, nice: int = 0, paths: tuple[str, ...] | None = None,
                topics: dict[str, tuple[str, ...]] | None = None, source: Path = ROOT / "impl",
                choose=None, out=print) -> dict[str, tuple[int, int, list[str]]]:
    """module file name -> (killed, mutants run, survivors), printing a line per mutant as it finishes.
    ``topics`` replaces the exercise selections, ``choose`` (a predicate on a Mutant) keeps only some."""
    selections = {m.name: selection_of(m, topics) for m in modules}
    plans = {m.name: [mutant for mutant in mutants_of(m, limit=limit, sample=sample, seed=seed)
                      if choose is None or choose(mutant)] for m in modules}
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        env = batch_env("ci")   # mutation is judged by the real default run, not the corpus' ten examples
        env.update(MPLBACKEND="Agg", PYTHONHASHSEED="0", SPEC_RUNS_DIR=str(Path(tmp) / "runs"))
        (Path(tmp) / "runs").mkdir()   # the spec's own reference runs, computed once for all the mutants
        # the unmutated copy first: it must pass each selection, and its time sets the timeout
        names = [m.name for m in modules]
        bases = [Path(tmp) / f"base-{name.removesuffix('.py')}" for name in names]
        for folder in bases:
            write_package(folder, source=source)
        baseline, broken = {}, set()
        for i, code, _, output in _run(bases, [selections[n] for n in names], [None] * len(names), paths=paths,
                                       jobs=jobs, env=env, nice=nice):
            seconds = _reported_seconds(output)
            baseline[names[i]] = seconds
            if code != 0:
                broken.add(names[i])
                out(f"{names[i]}: the UNMUTATED copy fails its selection (exit {code}); its mutants are not run\n"
                    f"{output[-3000:]}")
            else:
                out(f"{names[i]}: the unmutated copy passes {' '.join(selections[names[i]])} in {seconds:.1f} s")
        mutants = [mutant for name in names if name not in broken for mutant in plans[name]]
        folders = [Path(tmp) / f"m{i}" for i in range(len(mutants))]
        for folder, mutant in zip(folders, mutants, strict=True):
            write_package(folder, {mutant.module: mutant.source}, source=source)
        results = {name: (0, 0, []) for name in names if name not in broken}
        # each module's timeout: its selection's own time, with room for a slower mutant
        timeouts = [timeout or max(60.0, 4 * baseline[m.module] + 30) for m in mutants]
        for i, code, timed_out, output in _run(folders, [selections[m.module] for m in mutants], timeouts, paths=paths,
                                          jobs=jobs, env=env, nice=nice):
            mutant = mutants[i]
            dead = code != 0 or timed_out
            killed, count, survivors = results[mutant.module]
            results[mutant.module] = (killed + dead, count + 1, survivors + ([] if dead else [str(mutant)]))
            how = " (timed out)" if timed_out else "" if code in (0, 1) else f" (exit {code})"
            out(f"  {'killed' if dead else 'SURVIVED'}{how} {mutant}{_first_failure(output)}")
            shutil.rmtree(folders[i], ignore_errors=True)
        for name in results:   # the survivors in source order
            killed, count, survivors = results[name]
            order = {str(m): k for k, m in enumerate(plans[name])}
            results[name] = (killed, count, sorted(survivors, key=order.__getitem__))
        return results


def _first_failure(output: str) -> str:
    """`` by <the test that failed>``, from pytest's short summary, or nothing."""
    found = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    return f" by {found.group(1)}" if found else ""


def _reported_seconds(output: str) -> float:
    """The duration pytest reports on its last line (``... in 12.34s``), 0 where there is none."""
    found = re.findall(r" in ([0-9.]+)s", output)
    return float(found[-1]) if found else 0.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spec.tools.mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="+", help="impl modules to mutate")
    parser.add_argument("--limit", type=int, default=None, help="at most this many mutants per module")
    parser.add_argument("--sample", type=int, default=None,
                        help="a seeded random sample of this many mutants per module (spread over the module)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --sample")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per mutant run (default: 4 times the slowest unmutated run + 30 s, at least 60)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants run side by side")
    parser.add_argument("--nice", type=int, default=0, help="the niceness of the runs")
    args = parser.parse_args(argv)
    started = time.monotonic()
    results = run_mutants([ROOT / m for m in args.modules], limit=args.limit, sample=args.sample, seed=args.seed,
                          timeout=args.timeout, jobs=args.jobs, nice=args.nice,
                          out=lambda line: print(line, flush=True))
    total_killed = total = 0
    for module in args.modules:
        name = Path(module).name
        if name not in results:
            print(f"{module}: not run (the unmutated copy fails)")
            continue
        killed, count, survivors = results[name]
        total_killed, total = total_killed + killed, total + count
        print(f"{module}: {killed} of {count} mutants killed")
        for survivor in survivors:
            print(f"  survived: {survivor}")
    print(f"kill rate: {total_killed} / {total} = {total_killed / max(total, 1):.0%} "
          f"({time.monotonic() - started:.0f} s)")
    return 0 if len(results) == len(args.modules) else 1


if __name__ == "__main__":
    sys.exit(main())
