"""Mutation testing of the reference solutions through the spec's own selector: each mutant is a
copy of the impl package with one small change (an arithmetic or comparison operator swapped, a
numeric constant changed, a unary minus dropped), graded as ``--impl=<copy>`` on the exercises of
its module. A mutant is killed when some test of those exercises fails.

    python -m spec.tools.mutate impl/calculus.py [impl/handbuilt.py ...] [--limit N] [--sample N] [--timeout S]

Prints every surviving mutant (the line and the change) and the kill rate. Equivalent mutants (a
change that cannot alter any result) survive by nature; the rest point at claims to strengthen.
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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


def _redirect(source: str) -> str:
    return source.replace("from impl.", "from impl_mutant.").replace("import impl.", "import impl_mutant.")


def run_mutants(module_path: Path, *, limit: int | None, timeout: float, sample: int | None = None,
                seed: int = 0) -> tuple[int, int, list[str]]:
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
    selection = TOPIC_OF_MODULE.get(module_path.stem)
    if selection is None:
        raise SystemExit(f"{module_path}: no exercise selection known for this module")
    killed, survivors = 0, []
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        # a copy under another name, its own absolute imports redirected, so that nothing of the
        # mutant resolves to the original impl package
        package = Path(tmp) / "impl_mutant"
        shutil.copytree(ROOT / "impl", package, ignore=shutil.ignore_patterns("__pycache__"))
        for path in package.glob("*.py"):
            path.write_text(_redirect(path.read_text(encoding="utf-8")), encoding="utf-8")
        for node, description, apply, undo in sites:
            apply()
            try:
                mutated = ast.unparse(tree)
            finally:
                undo()
            (package / module_path.name).write_text(_redirect(mutated), encoding="utf-8")
            env = {**os.environ, "PYTHONPATH": tmp, "OMP_NUM_THREADS": "1", "HYPOTHESIS_PROFILE": "ci"}
            try:
                process = subprocess.run(
                    [sys.executable, "-m", "pytest", "spec", "-q", "-x", "-p", "no:randomly", "-p", "no:xdist",
                     "-p", "no:cacheprovider", "--ignore=spec/selftest", "--ignore=spec/tools", "--ignore=spec/bench",
                     "--impl=impl_mutant", *(f"--exercise={s}" for s in selection)],
                    cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
                dead = process.returncode != 0
            except subprocess.TimeoutExpired:
                dead = True   # a mutant that hangs is detected by the grader's timeouts
            killed += dead
            if not dead:
                survivors.append(f"{module_path.name}:{node.lineno}: {description}")
            print(f"  {'killed' if dead else 'SURVIVED'} {module_path.name}:{node.lineno}: {description}", flush=True)
        shutil.rmtree(package)
    return killed, len(sites), survivors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spec.tools.mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="+", help="impl modules to mutate")
    parser.add_argument("--limit", type=int, default=None, help="at most this many mutants per module")
    parser.add_argument("--sample", type=int, default=None,
                        help="a seeded random sample of this many mutants per module (spread over the module)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --sample")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per mutant run")
    args = parser.parse_args(argv)
    total_killed = total = 0
    for module in args.modules:
        killed, count, survivors = run_mutants(ROOT / module, limit=args.limit, timeout=args.timeout,
                                                sample=args.sample, seed=args.seed)
        total_killed, total = total_killed + killed, total + count
        print(f"{module}: {killed} of {count} mutants killed")
        for survivor in survivors:
            print(f"  survived: {survivor}")
    print(f"kill rate: {total_killed} / {total} = {total_killed / max(total, 1):.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
