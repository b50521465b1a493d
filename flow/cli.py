"""``python -m hw.build``: the command line of the board build (:func:`flow.build.build`).

    python -m hw.build --board icebreaker                     # the shipped model, 24 MHz
    python -m hw.build --board icebreaker --clock auto        # 24 MHz, or the fastest clock the design meets
    python -m hw.build --board upduino_v3 --model DIR --clock 30 --json
    python -m hw.build --board icebreaker --no-pnr            # fit check, Verilog, scripts, estimate, latency
    python -m hw.build --board icebreaker --verify 20         # simulate 20 samples of the RTL before synthesis
    python -m hw.build --board icebreaker --program           # build, then program through openFPGALoader
    python -m hw.build --board icebreaker --model DIR --params '{"fc1": {"weights": "spram"}}' --flash --program
                                          # weights in SPRAM, read from the SPI flash at start-up
    python -m hw.build --board ulx3s-85f                      # ECP5 (ULX3S), at the board's default clock
    python -m hw.build --board tangnano9k --program           # Gowin (Tang Nano 9K)

Every step prints its progress on stderr (``--quiet`` and ``--json`` print none); a model, an option or a design
that cannot be built ends with one ``error:`` line that names the thing, the bound and what to change.
"""

import argparse
import json
import sys

from .build import DEFAULT_SEEDS, BuildError, OverBudgetError, TimingError, build, build_auto, program
from .design import FitError

__all__ = ["main", "FIT_HINT"]

#: What to change when the fit check refuses a model.
FIT_HINT = ("to make it fit: fewer lanes or narrower spike words per layer (--params), weights in SPRAM "
            "(--params '{\"fc1\": {\"weights\": \"spram\"}}'), a smaller model (python -m train), or --force to "
            "build and measure anyway")


def _parser():
    from boards import BOARDS, MODEL_HELP
    from hw.params import add_params_argument

    parser = argparse.ArgumentParser(
        prog="python -m hw.build",
        description="Build an FPGA bitstream of a spikesmith model for a board (Yosys and nextpnr from PyPI, "
                    "with icepack for the iCE40, ecppack for the ECP5, Apicula's gowin_pack for Gowin) as a list of "
                    "steps, each with its files and a record in the build "
                    "directory, and write resource, timing and latency reports.")
    parser.add_argument("--board", required=True, choices=sorted(BOARDS), help="target board")
    parser.add_argument("--model", metavar="DIR", help=MODEL_HELP)
    parser.add_argument("--out", metavar="DIR", help="build directory (default: build/BOARD-MODEL)")
    defaults = ", ".join(f"{name} {board.clock_mhz:g}" for name, board in sorted(BOARDS.items()))
    parser.add_argument("--clock", metavar="MHZ",
                        help=f"clock in MHz, made by the board's PLL from its reference (iCE40 16 ... 275 MHz or "
                             f"the 12 MHz reference divided; ECP5 3.125 ... 400; Gowin 3.125 ... 600); default the "
                             f"board's ({defaults}); the build fails if nextpnr cannot meet it. 'auto': build at the "
                             f"default and, if that is missed, again at the fastest clock below the Fmax reached")
    bauds = ", ".join(f"{name} {board.baud:,}" for name, board in sorted(BOARDS.items()))
    parser.add_argument("--baud", type=int, help=f"UART bit rate (default: the board's; {bauds})")
    add_params_argument(parser)
    parser.add_argument("--data", metavar="DIR", help="FSDD recordings for the latency report (default: the model's "
                                                      "test vectors, else $SPIKESMITH_DATA, else the download "
                                                      "location of python -m train.fsdd download)")
    parser.add_argument("--latency-samples", type=int, metavar="N", help="use only N test samples for latency")
    parser.add_argument("--verify", type=int, metavar="N", default=0,
                        help="simulate the generated RTL on N of those samples against the golden model before "
                             "synthesis (Verilator; default: no simulation)")
    parser.add_argument("--seed", type=int, default=1, help="first nextpnr placement seed (default 1)")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, metavar="N",
                        help=f"placement seeds to try, from --seed on, until nextpnr meets the clock (default "
                             f"{DEFAULT_SEEDS})")
    parser.add_argument("--force", action="store_true",
                        help="build even if the pre-synthesis fit check refuses the model")
    parser.add_argument("--no-pnr", action="store_true",
                        help="stop after the fit check, the latency and the generated files (no synthesis, no "
                             "place and route)")
    parser.add_argument("--program", action="store_true", help="program the board with openFPGALoader afterwards")
    parser.add_argument("--flash", action="store_true",
                        help="boot from the SPI flash: a model with weights in SPRAM gets a reader that loads them "
                             "from the board's flash at 1 MiB after reset (iCEBreaker, UPduino v3), and the build "
                             "writes that image (weights_flash.bin; write it with iceprog -o 1024k "
                             "weights_flash.bin); with --program, the bitstream and the image go into the flash "
                             "(default: the bitstream into SRAM)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object on the last line (no progress)")
    return parser


def _clock(text):
    if text is None:
        return None
    if text == "auto":
        return None
    try:
        clock = float(text)
    except ValueError:
        raise ValueError(f"--clock must be a frequency in MHz or 'auto', not {text!r}") from None
    if not clock > 0:
        raise ValueError(f"--clock must be a positive frequency in MHz, not {text!r}")
    return clock


def _check_counts(args):
    for option, value, low in (("--latency-samples", args.latency_samples, 1), ("--verify", args.verify, 0),
                               ("--baud", args.baud, 1), ("--seeds", args.seeds, 1)):
        if value is not None and value < low:
            raise ValueError(f"{option} must be at least {low}, not {value}")


def _refusal(error, device):
    """The JSON line of a build that was refused or failed (``device``: the board's, for nextpnr's cell names)."""
    line = {"fits": False if isinstance(error, FitError) else None, "error": str(error)}
    if isinstance(error, FitError) and error.need is not None:
        line.update(logic_cells=error.need.logic_cells, logic_cells_estimated=True,
                    logic_cells_available=error.budget.logic_cells, ebr=error.need.ebr,
                    ebr_available=error.budget.ebr, spram=error.need.spram, spram_available=error.budget.spram)
    elif isinstance(error, OverBudgetError):
        lc = error.utilization.get(device.logic_cell, {})
        ram = error.utilization.get(device.block_ram.cell, {})
        line.update(fits=False, logic_cells=lc.get("used"), logic_cells_available=lc.get("available"),
                    ebr=ram.get("used"), ebr_available=ram.get("available"))
    elif isinstance(error, TimingError) and error.report is not None:
        from boards.report import summary

        line = summary(error.report) | line | {"fits": error.report["fits"]}
    return line


def main(argv=None):
    """``python -m hw.build``; return the exit status: 2 for input the build refuses (a model that does not fit, an
    option out of range, a missing model), 1 for a build that failed (a tool, the clock), as ``golden.cli`` defines."""
    from boards import BOARDS
    from boards.report import summary, to_table
    from hw.params import parse_params

    args = _parser().parse_args(argv)
    try:
        params = parse_params(args.params)
        clock = _clock(args.clock)
        auto = args.clock == "auto"
        _check_counts(args)
        if args.program and args.no_pnr:
            raise ValueError("--program needs a bitstream: leave out --no-pnr")
        common = dict(board=args.board, model_dir=args.model, out=args.out, baud=args.baud, params=params,
                      do_build=not args.no_pnr, data_dir=args.data, latency_limit=args.latency_samples,
                      seed=args.seed, seeds=args.seeds, progress=not (args.quiet or args.json), force=args.force,
                      verify_samples=args.verify, flash=args.flash)
        if auto and not args.no_pnr:
            result = build_auto(**common)
        else:
            result = build(clock_mhz=clock, **common)
    except (BuildError, FileNotFoundError, ValueError) as error:
        message = f"error: {error}"
        if isinstance(error, FitError):
            message += f"\n  {FIT_HINT}"
        print(message, file=sys.stderr)
        if args.json:
            print(json.dumps(_refusal(error, BOARDS[args.board].device)))
        return 1 if isinstance(error, BuildError) else 2  # golden.cli: 2 is bad input, 1 a build that failed
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(to_table(result.report, BOARDS[args.board].targets))
    print(f"build directory: {result.out}")
    if args.program:
        try:
            program(result.out, args.board, flash=args.flash)
        except BuildError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(summary(result.report)))
    return 0
