"""``python -m sim``: verify a model's generated RTL against the golden model on Verilator (or Icarus).

Example::

    python -m sim --model models/fsdd_scnn --samples 20 --data DIR

builds the design in its simulation harness once (cached), runs the extreme inputs and then FSDD test samples (random
maps for a model without a feature front-end, or without ``--data``) with random input gaps and output backpressure
(see :mod:`sim.verify`), compares every spike event, readout, class and cycle count, prints a table and writes a JSON
report. The exit status is 1 on any mismatch (the first failing sample is run again alone: its waveform is kept and
its first differing spike event named) and 2 on a usage or build error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from hw.cycles import format_cycles

__all__ = ["main", "format_table"]


def format_table(summary: dict) -> str:
    """The human-readable table of a verification summary."""
    def num(v, fmt="{:,}"):
        return "-" if v is None else fmt.format(v)

    rows = [
        ("model", summary.get("model", "-")),
        ("simulator", summary["simulator"]),
        ("samples", num(summary["samples"])),
        ("spike events compared", f"{num(summary['events_compared'])} of {num(summary['events_expected'])}"),
        ("mismatches", num(summary["mismatches"]) + (
            " (" + ", ".join(f"{k} {v:,}" for k, v in sorted(summary.get("mismatch_kinds", {}).items())) + ")"
            if summary["mismatches"] else "")),
        ("cycles min / median / max", f"{num(summary['cycles_min'])} / "
                                      f"{'-' if summary['cycles_median'] is None else format_cycles(summary['cycles_median'])}"
                                      f" / {num(summary['cycles_max'])}"),
        ("cycle model compared", "yes" if summary["cycle_model"] else "no"),
        ("simulated cycles", num(summary["sim_cycles"])),
        ("simulated cycles per second", num(summary["sim_cycles_per_second"], "{:,.0f}")),
        ("inferences per second", num(summary["inferences_per_second"], "{:,.2f}")),
        ("simulation wall time", f"{summary['sim_seconds']:.1f} s"
                                 + (f" ({summary['processes']} processes)" if summary.get("processes", 1) > 1 else "")),
        ("build", "cached" if summary["build_cached"] else f"{summary['build_seconds']:.1f} s"),
    ]
    if summary.get("accuracy") is not None:
        rows.append(("accuracy (RTL classes)", f"{summary['accuracy']:.2%} of {summary['labelled_samples']}"))
    if summary.get("first_mismatch"):
        rows.append(("first mismatch", summary["first_mismatch"]))
    if summary.get("unknown_signals"):
        rows.append(("signals holding X or Z", "; ".join(summary["unknown_signals"][:6])))
    if summary.get("waves"):
        rows.append(("waveform of the failing sample", summary["waves"]))
    if summary.get("timed_out"):
        rows.append(("timed out", "yes: not every result came within the cycle limit"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sim",
        description="Verify the generated RTL of a spikesmith model against the bit-true golden model: cocotb on "
                    "Verilator (from the 'verilator' Python package; nothing to install by hand).",
        epilog="Exit status: 0 all equal, 1 a mismatch (see the report and the waveform), 2 usage or build error.")
    p.add_argument("--model", required=True, type=Path, help="model directory (manifest.json and ROM files)")
    p.add_argument("--samples", type=int, default=10,
                   help="number of samples: the 5 extreme maps first, then FSDD test samples or random maps "
                        "(default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random maps, gaps and stalls (default 0)")
    p.add_argument("--data", type=Path, default=None,
                   help="FSDD recordings directory; used when the model has a feature front-end")
    p.add_argument("--no-extremes", action="store_true", help="leave out the extreme maps")
    p.add_argument("--gap", type=float, default=None, help="probability of a gap in the input's valid "
                                                           "(default 0.2)")
    p.add_argument("--stall", type=float, default=None, help="probability of backpressure on every output "
                                                             "(default 0.3 on results, 0.2 on spike events)")
    p.add_argument("--params", type=str, default=None,
                   help="hardware parameters as JSON, e.g. '{\"fc1\": {\"lanes\": 4}}' (see hw.network.plan)")
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="directory for the job, logs and a failing run's waveform (default: a new temporary one)")
    p.add_argument("--report", type=Path, default=None,
                   help="JSON report path (default: RUN_DIR/sim_report.json)")
    p.add_argument("--cache", type=Path, default=None,
                   help="build cache (default $SPIKESMITH_SIM_CACHE or ~/.cache/spikesmith/sim)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line at the end")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from golden.manifest import ManifestError, load

    from .build import BuildError
    from .stimulus import mixed
    from .runner import SimulationError
    from .toolchain import ToolchainError
    from .verify import DEFAULT_GAP, DEFAULT_STALL, verify

    if args.samples < 1:
        print(f"error: --samples must be at least 1, not {args.samples}", file=sys.stderr)
        return 2
    for name in ("gap", "stall"):
        value = getattr(args, name)
        if value is not None and not 0.0 <= value < 1.0:
            print(f"error: --{name} must be in [0, 1), not {value}", file=sys.stderr)
            return 2
    try:
        model = load(args.model)
    except (ManifestError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from hw.params import ParamsError, parse_params
    try:
        params = parse_params(args.params)
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data = args.data
    if data is not None and not data.is_dir():
        print(f"error: --data {data} is not a directory", file=sys.stderr)
        return 2
    try:
        stimulus = mixed(model, samples=args.samples, seed=args.seed, data_dir=data, extremes=not args.no_extremes,
                         progress=sys.stderr.isatty())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="spikesmith-sim-"))
    stall = dict(DEFAULT_STALL) if args.stall is None else {"o": args.stall, "events": args.stall}
    gap = DEFAULT_GAP if args.gap is None else args.gap
    print(f"verifying {model.name} on {args.simulator}: {len(stimulus)} samples ({stimulus.source}); input gaps "
          f"{gap:.0%} of cycles, result backpressure {stall['o']:.0%}, event backpressure {stall['events']:.0%}; "
          f"run directory {run_dir}", file=sys.stderr)
    started = time.monotonic()
    from flow.progress import Progress
    progress = Progress(enabled=not args.json, prefix="sim: ")
    try:
        # the first run of a design builds it with Verilator (a minute or two), later runs find it in the cache
        with progress.step("build the design (cached after the first run) and simulate"):
            result = verify(model, stimulus.x, names=stimulus.names, run_dir=run_dir, params=params,
                            simulator=args.simulator, seed=args.seed, gap=gap, stall=stall, cache_dir=args.cache)
    except (BuildError, ToolchainError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"simulation failed: {exc}", file=sys.stderr)
        return 1
    summary = {"model": model.name, **result.summary(), "wall_seconds": round(time.monotonic() - started, 2),
               "seed": args.seed, "inputs": stimulus.source, "names": stimulus.names}
    classes = result.report.get("classes", [])
    known = [(c, int(y)) for c, y in zip(classes, stimulus.labels) if y >= 0]
    if known:
        summary["labelled_samples"] = len(known)
        summary["accuracy"] = round(sum(c == y for c, y in known) / len(known), 4)
    report_path = args.report or (run_dir / "sim_report.json")
    report_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = report_path.with_name(report_path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(summary | {"mismatch_list": result.report.get("mismatch_list", [])}, indent=1))
    os.replace(tmp, report_path)
    print(format_table(summary))
    print(f"report: {report_path}")
    if args.json:
        brief = {k: summary[k] for k in ("samples", "mismatches", "cycles_median", "cycles_min", "cycles_max",
                                         "events_compared", "sim_cycles_per_second", "inferences_per_second",
                                         "timed_out")}
        print(json.dumps(brief))
    return 0 if result.passed else 1


if __name__ == "__main__":
    from golden.cli import run_main
    sys.exit(run_main(main))
