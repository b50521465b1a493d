"""``python -m sim.bench``: the whole FSDD test split through the RTL in one simulation, timed.

Example::

    python -m sim.bench --model models/fsdd_scnn --data DIR

makes the 300 input maps of the official test split with the model's front-end, builds the design in its simulation
harness (cached), runs all 300 samples through one cocotb + Verilator simulation with the usual random gaps and
backpressure, compares every spike event (by per-sample signatures), readout, class and cycle count with the golden
model, and prints the wall time of each phase, inferences per second and simulated cycles per second
(``simulation wall time`` is the figure of the README: the simulator run, without the build and the golden model). A model without a feature front-end (a random test model) can be timed with ``--random N``
random maps instead. Exit status 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

#: The target of the issue: the whole test split verified within this many seconds on 2 cores.
TARGET_SECONDS = 600


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.bench",
                                description="Time the RTL verification of the whole FSDD test split (300 samples) "
                                            "in one simulation.")
    p.add_argument("--model", required=True, type=Path, help="model directory")
    p.add_argument("--data", type=Path, default=None,
                   help="FSDD recordings directory (default: the model's test vectors, else $SPIKESMITH_DATA, else "
                        "the download location)")
    p.add_argument("--limit", type=int, default=None, help="take only this many test samples (spread evenly)")
    p.add_argument("--random", type=int, default=None, metavar="N",
                   help="time N random maps instead of real inputs (for a model with neither test vectors nor a "
                        "feature front-end)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random maps, gaps and stalls (default 0)")
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--run-dir", type=Path, default=None, help="default: a new temporary directory")
    p.add_argument("--cache", type=Path, default=None, help="build cache (default ~/.cache/spikesmith/sim)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON line at the end")
    args = p.parse_args(argv)

    from golden.manifest import ManifestError, load

    from .__main__ import format_table
    from .build import BuildError
    from .stimulus import random_inputs, real_inputs
    from .runner import SimulationError
    from .toolchain import ToolchainError
    from .verify import build_harness, verify

    try:
        model = load(args.model)
    except (ManifestError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    phases = {}
    started = time.monotonic()
    if args.random is not None:
        stimulus = random_inputs(model, args.random, args.seed)
    else:
        stimulus = real_inputs(model, args.data, limit=args.limit, progress=sys.stderr.isatty())
        if stimulus is None:
            from train.datadir import search_text
            print(f"error: model {model.name} carries no test vectors and no FSDD recordings were found: give "
                  f"{search_text()}, or --random N", file=sys.stderr)
            return 2
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="spikesmith-bench-"))
    phases["stimulus_seconds"] = time.monotonic() - started
    try:
        t = time.monotonic()
        from flow.progress import Progress
        with Progress(enabled=not args.json, prefix="sim.bench: ").step("build the harness (cached after the first "
                                                                          "run)"):
            built = build_harness(model, simulator=args.simulator, cache_dir=args.cache)
        sim_build = built[1]
        phases["build_seconds"] = sim_build.seconds if not sim_build.cached else 0.0
        phases["build_cached"] = sim_build.cached
        phases["elaborate_and_build_seconds"] = time.monotonic() - t
        print(f"{len(stimulus)} samples ({stimulus.source}); build "
              f"{'cached' if sim_build.cached else f'{sim_build.seconds:.1f} s'}; "
              f"simulating ...", file=sys.stderr)
        t = time.monotonic()
        result = verify(model, stimulus.x, names=stimulus.names, run_dir=run_dir, simulator=args.simulator,
                        seed=args.seed, cache_dir=args.cache, built=built)
        phases["verify_seconds"] = time.monotonic() - t
    except (BuildError, ToolchainError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"simulation failed: {exc}", file=sys.stderr)
        return 1
    total = time.monotonic() - started
    summary = {"model": model.name, **result.summary(), **phases, "total_seconds": round(total, 2),
               "target_seconds": TARGET_SECONDS, "within_target": total < TARGET_SECONDS,
               "cpu_count": os.cpu_count()}
    classes = result.report.get("classes", [])
    labelled = [(c, int(y)) for c, y in zip(classes, stimulus.labels) if y >= 0]
    if labelled:
        summary["labelled_samples"] = len(labelled)
        summary["accuracy"] = round(sum(c == y for c, y in labelled) / len(labelled), 4)
    print(format_table(summary))
    print(f"{'total wall time':<28}  {total:.1f} s (target {TARGET_SECONDS} s: "
          f"{'met' if summary['within_target'] else 'missed'})")
    report = run_dir / "bench_report.json"
    tmp = report.with_name(report.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, report)
    print(f"report: {report}")
    if args.json:
        print(json.dumps({k: summary[k] for k in ("samples", "mismatches", "cycles_median", "sim_seconds",
                                                  "inferences_per_second", "sim_cycles_per_second",
                                                  "total_seconds", "within_target")}))
    return 0 if result.passed else 1


if __name__ == "__main__":
    from golden.cli import run_main
    sys.exit(run_main(main))
