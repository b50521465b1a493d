"""Benchmark: a full board build, its wall time, and the figures against the project's targets.

    python -m boards.bench                          # the iCEBreaker's default model at 24 MHz
    python -m boards.bench --board upduino_v3 --model models/tiny --clock 16

Runs the board build (flow.build.build: Yosys, nextpnr-ice40, icepack), then prints the build's wall time
and a table of the board's targets for its default model (boards/*.py, targets; on the iCEBreaker an Fmax of at
least 24 MHz and a median latency of at most 1,000 microseconds). A build that misses the clock is still measured (its files are
kept in OUT.failed); the table then shows the miss. This is a benchmark, not a test: it prints figures and exits 0
unless the build could not run at all (exit 1) or was refused (exit 2).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from golden.cli import run_main

__all__ = ["main"]

def main(argv=None):
    """``python -m boards.bench``; return the exit status."""
    from flow.build import DEFAULT_CLOCK_MHZ, BuildError, build, build_auto

    from . import BOARDS, MODEL_HELP
    from .report import check_targets

    parser = argparse.ArgumentParser(prog="python -m boards.bench", description=__doc__.split("\n\n")[2])
    parser.add_argument("--board", default="icebreaker", choices=sorted(BOARDS), help="target board")
    parser.add_argument("--model", metavar="DIR", help=MODEL_HELP)
    parser.add_argument("--clock", default=str(DEFAULT_CLOCK_MHZ), metavar="MHZ",
                        help="clock in MHz, or 'auto' (see python -m hw.build --help)")
    parser.add_argument("--data", metavar="DIR", help="FSDD recordings for the latency figures")
    parser.add_argument("--out", metavar="DIR", help="build directory (default: a temporary one)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object last (no progress)")
    args = parser.parse_args(argv)

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="spikesmith-bench-")) / "build"
    started = time.monotonic()
    report = None
    try:
        common = dict(board=args.board, model_dir=args.model, out=out, data_dir=args.data,
                      progress=not (args.quiet or args.json))
        if args.clock == "auto":
            report = build_auto(**common).report
        else:
            try:
                clock = float(args.clock)
            except ValueError:
                raise ValueError(f"--clock must be a frequency in MHz or 'auto', not {args.clock!r}") from None
            report = build(clock_mhz=clock, **common).report
    except BuildError as error:
        failed = out.with_name(out.name + ".failed") / "report.json"
        print(f"build: {error}", file=sys.stderr)
        if not failed.is_file():
            return 1
        report = json.loads(failed.read_text())
    except (ValueError, FileNotFoundError) as error:  # a model, a clock or a fit the build refuses
        print(f"error: {error}", file=sys.stderr)
        return 2
    wall = time.monotonic() - started
    print(f"board {report['board']}, model {report['model']}, clock {report['clock_mhz']:g} MHz")
    print(f"build wall time: {wall:.1f} s (tools: {report.get('build_seconds') or 0:.1f} s)")
    for name, value, bound, met in check_targets(report, BOARDS[args.board].targets):
        shown = "-" if value is None else (f"{value:.1%}" if "share" in name else f"{value:,.2f}")
        verdict = "n/a" if met is None else ("met" if met else "MISSED")
        print(f"  {name:<28} {shown:>10}  target {bound:<8} {verdict}")
    if args.json:
        summary = {key: report.get(key) for key in ("board", "model", "logic_cells", "logic_cells_available", "ebr",
                                                    "fmax_mhz", "clock_mhz", "latency_us_median")}
        summary["build_wall_s"] = wall
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
