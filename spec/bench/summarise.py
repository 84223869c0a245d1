"""Summarise a pytest-benchmark JSON of spec/bench/test_jacobian_bench.py as ratios.

    python -m spec.bench.summarise .benchmarks/bench.json [--check]

For every (device, L, batch): each method's median relative to the plain forward pass, and our
forward mode relative to vmap(jacfwd) and vmap(jacrev). ``--check`` exits 1 when forward mode at
batch 1024 on the CPU misses the targets (<= 0.75x jacfwd, <= 0.35x jacrev, <= 3x a forward pass).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

TARGETS = {"jacfwd": 0.75, "jacrev": 0.35, "forward pass": 3.0}


def load(path: str) -> dict[tuple, dict[str, float]]:
    data = json.loads(open(path, encoding="utf-8").read())
    table: dict[tuple, dict[str, float]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        if "method" not in info:   # not a Jacobian timing (the class throughput: see throughput())
            continue
        table[(info["device"], info["depth"], info["batch"])][info["method"]] = bench["stats"]["median"]
    return table


def summarise(table) -> tuple[list[str], list[str]]:
    lines, misses = [], []
    methods = sorted({m for row in table.values() for m in row})
    header = f"{'device':<6} {'L':>3} {'batch':>6} " + " ".join(f"{m:>15}" for m in methods)
    lines += ["median time / one forward pass", header]
    for (device, depth, batch), row in sorted(table.items()):
        base = row.get("forward pass")
        cells = " ".join(f"{row[m] / base:>15.2f}" if base and m in row else f"{'-':>15}" for m in methods)
        lines.append(f"{device:<6} {depth:>3} {batch:>6} {cells}")
    lines += ["", "forward mode / peer (targets at batch 1024, cpu: "
              + ", ".join(f"{k} <= {v}" for k, v in TARGETS.items()) + ")"]
    for (device, depth, batch), row in sorted(table.items()):
        if "forward mode" not in row:
            continue
        ratios = {peer: row["forward mode"] / row[peer] for peer in TARGETS if peer in row}
        lines.append(f"{device:<6} L={depth:<3} batch {batch:<5} "
                     + "  ".join(f"vs {peer}: {ratio:.2f}" for peer, ratio in ratios.items()))
        if device == "cpu" and batch == 1024:
            misses += [f"{device} L={depth} batch {batch}: forward mode / {peer} = {ratio:.2f} > "
                       f"{TARGETS[peer]}" for peer, ratio in ratios.items() if ratio > TARGETS[peer]]
    return lines, misses


def throughput(path: str) -> list[str]:
    """The class-grading benchmark (spec/bench/test_class_bench.py): seconds per student."""
    data = json.loads(open(path, encoding="utf-8").read())
    lines = []
    for bench in data["benchmarks"]:
        i = bench["extra_info"]
        if "class_ratio" in i:
            lines.append(f"{i['sheet']}: a class of its {i['students']} selftest notebooks, {i['jobs']} jobs: ours "
                         f"{i['ours_class']:.0f} s, bare execution {i['bare_class']:.0f} s, ratio "
                         f"{i['class_ratio']:.2f}; "
                         f"one notebook: ours {i['ours_single']:.0f} s, bare {i['bare_single']:.0f} s, ratio "
                         f"{i['single_ratio']:.2f} (load {i['load_average']:.1f})")
            if "single_cpu" in i:
                cpu = i["single_cpu"]
                lines.append(f"  one notebook's CPU seconds: bare {i['bare_single_cpu']:.1f}; the worker's start "
                             f"and load {cpu.get('worker CPU, start and load', 0):.1f}, the worker in the tests "
                             f"{cpu.get('worker CPU, tests', 0):.1f}, the judge {cpu.get('judge CPU, in all', 0):.1f} "
                             f"({cpu.get('judge CPU, tests', 0):.1f} in the tests); the worker's alone over bare: "
                             f"{i['worker_cpu_per_bare_cpu']:.2f}")
        elif "students" in i:
            lines.append(f"class of {i['students']} {i['sheet']} notebooks, {i['jobs']} jobs: "
                         f"{bench['stats']['median']:.0f} s, {i['seconds_per_student']:.1f} s per student; 100 "
                         f"students: about {i['seconds_for_100']:.0f} s")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json_path")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    lines, misses = summarise(load(args.json_path))
    print("\n".join(lines + throughput(args.json_path)))
    if misses:
        print("\ntargets missed:\n  " + "\n  ".join(misses))
    return 1 if args.check and misses else 0


if __name__ == "__main__":
    sys.exit(main())
