"""The whole board top of an ECP5 or Gowin board simulated through its pins (cocotb + Verilator).

:func:`simulate_top` builds :class:`boards.top.BoardTop` for a board as the build does (the platform's own
``top.debug.v``: its IO buffers, its PLL, the power-on reset, the LED inversion of the board), adds the behavioural
models of the vendor cells (:mod:`boards.vendor_models`) and runs the serial host of :mod:`boards.board_sim` on the
board's pads: it drives the reference clock pin and the UART's RX pad, decodes the TX pad, and reads the LED pads at
the end. The simulated PLL passes the reference through, so the design runs at one clock whose period the
simulation chooses; the UART divisor and the timeouts are the design's own, in cycles of that clock.
"""

import json
from pathlib import Path

__all__ = ["TopSimulation", "simulate_top", "pads"]


class TopSimulation:
    """What :func:`simulate_top` saw.

    Members
    -------
    frames : list of boards.protocol.Frame
        The reply frames received on the TX pad.
    report : dict
        The raw report of the serial host (``received`` bytes, ``cycles``, ``errors``, ``pins``).
    class_leds : int
        The class the LEDs show at the end (the pads read back through the board's LED polarity).
    top : boards.top.BoardTop
    """

    def __init__(self, frames, report, class_leds, top):
        self.frames = frames
        self.report = report
        self.class_leds = class_leds
        self.top = top


def pads(board):
    """The top-level port names of ``board``'s pads: ``{"clock", "rx", "tx", "class_leds"}`` (as Amaranth's
    platform names them, ``uart_0__rx__io``)."""
    return {"clock": f"{board.clock}_0__io", "rx": f"{board.uart}_0__rx__io", "tx": f"{board.uart}_0__tx__io",
            "class_leds": [f"{ref[0]}_{ref[1]}__io" for ref in board.leds.class_leds]}


def simulate_top(board, model, steps, *, run_dir, clock_mhz=None, divisor=8, timeout_cycles=1600, params=None,
                 max_cycles=5_000_000, cache_dir=None):
    """Run a serial script (:func:`boards.board_sim.Step`) against ``board``'s whole top with ``model``.

    Parameters
    ----------
    board : boards.board.Board
        An ECP5 or Gowin board (:data:`boards.vendor_models.MODELS`).
    model : golden.manifest.Model
    steps : list of dict
    run_dir : path
    clock_mhz : float, optional
        The clock the design is made for (default: the board's); its PLL setting is instantiated as on the board.
    divisor : int
        UART clock cycles per bit: the baud rate is the clock divided by it.
    timeout_cycles : int
        The inter-byte timeout, in cycles.
    params : dict, optional
        Plan overrides.
    max_cycles : int
    cache_dir : path, optional
        Verilator build cache.

    Returns
    -------
    TopSimulation

    Raises
    ------
    ValueError
        If the board's family has no simulation models.
    AssertionError
        If the serial host reports an error.
    """
    from sim import build as simbuild
    from sim.runner import run_test

    from . import pll
    from .board_sim import CLOCK_NS
    from .protocol import FrameDecoder
    from .top import BoardTop
    from .vendor_models import LOCK_CYCLES, models_for

    models = models_for(board.device)
    clock_mhz = board.clock_mhz if clock_mhz is None else clock_mhz
    f_out = pll.for_device(board.device).pll_config(board.clock_hz, clock_mhz * 1e6).f_out
    baud = int(round(f_out / divisor))
    top = BoardTop(board, model, clock_mhz=clock_mhz, baud=baud, timeout_us=timeout_cycles / f_out * 1e6,
                   params=params)
    if top.core.divisor != divisor:
        raise AssertionError(f"UART divisor {top.core.divisor}, expected {divisor}")
    platform = board.make_platform()
    files = platform.build(top, name="top", do_build=False, debug_verilog=True)
    verilog = files.files["top.debug.v"] + "\n" + models
    built = simbuild.build(verilog_text=verilog, toplevel="top", cache_dir=cache_dir)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    names = pads(board)
    # the PLL's lock, the power-on reset after it (boards.pll.reset), and a little margin
    startup = LOCK_CYCLES + _reset_cycles(f_out) + 8
    job = run_dir / "job.json"
    job.write_text(json.dumps({"divisor": divisor, "clock_ns": CLOCK_NS, "steps": list(steps),
                               "max_cycles": max_cycles, "startup": startup, "watch": names["class_leds"],
                               "pins": {"clock": names["clock"], "rx": names["rx"], "tx": names["tx"],
                                        "reset": None}}))
    run = run_test(built, "boards.board_sim", run_dir=run_dir, job=job)
    report = run.report
    if report.get("errors"):
        raise AssertionError(f"board top simulation: {'; '.join(report['errors'])} (log: {run.log})")
    frames = FrameDecoder().feed(bytes.fromhex(report["received"]))
    leds = 0
    for bit, (ref, name) in enumerate(zip(board.leds.class_leds, names["class_leds"])):
        invert = platform.lookup(ref[0], ref[1]).ios[0].invert
        leds |= (report["pins"][name] ^ int(invert)) << bit
    return TopSimulation(frames, report, leds, top)


def _reset_cycles(f_out):
    from .pll.reset import reset_cycles

    return reset_cycles(20.0, f_out)
