"""End-to-end simulation of the board logic through its serial pins (cocotb + Verilator).

:func:`simulate` builds :class:`boards.top.BoardCore` with the real network (``hw.network.Network``) into Verilog,
compiles it with the ``sim`` package's cached Verilator build, and runs the cocotb test :func:`board_session` of
this module on it. The test plays a host at the bit level: it drives the ``rx`` pin with 8N1 characters, decodes the
``tx`` pin by sampling every bit in its middle, and follows a script of steps:

- ``{"send": HEX, "replies": k}``: send the bytes, then wait until ``k`` more complete reply frames (good CRC) have
  arrived on ``tx``;
- ``{"idle": n}``: leave the line idle for ``n`` clock cycles (to let the board's inter-byte timeout expire).

With a flash (``simulate(..., flash_offset=..., flash={address: bytes})``) the board logic has a flash reader
(:mod:`boards.flash`) and the test also plays a 25-series SPI flash on its ``flash`` pins
(:class:`boards.flash_model.SPIFlashModel`, stepped on every falling clock edge), holding the given bytes and
starting in deep power-down, so that the board loads its weight image by itself after reset.

It reports every byte received on ``tx`` and the final level of the pins the job names in ``watch``;
:func:`simulate` decodes the bytes into frames. The job's ``pins`` rename the clock, ``rx``, ``tx`` and reset
(``None``: the design has no reset pin and waits ``startup`` cycles instead), so that :mod:`boards.top_sim` runs
the same host against a whole board top. The comparison with the golden
model is the caller's (see ``tests/test_boards.py``), so that this module stays a plain serial host.
"""

import json
import os
from pathlib import Path

__all__ = ["Step", "simulate", "board_session", "CLOCK_NS"]

#: Clock period of the simulated board (any value works; the UART divisor is what matters).
CLOCK_NS = 10


def Step(send=None, replies=0, idle=None):
    """One step of the script: ``Step(send=bytes, replies=k)`` or ``Step(idle=cycles)``."""
    if (send is None) == (idle is None):
        raise ValueError("a step either sends bytes or idles")
    if idle is not None:
        return {"idle": int(idle)}
    return {"send": bytes(send).hex(), "replies": int(replies)}


def simulate(model, steps, *, run_dir, divisor=8, timeout_cycles=1600, params=None, max_cycles=5_000_000,
             cache_dir=None, flash_offset=None, flash=None, flash_wake_cycles=100):
    """Run a serial script against the board logic of ``model`` and return the reply frames.

    Parameters
    ----------
    model : golden.manifest.Model
    steps : list of dict
        Made with :func:`Step`.
    run_dir : path
        Where the simulator runs (log, report).
    divisor : int
        UART clock cycles per bit (the baud rate is derived from it and a nominal clock).
    timeout_cycles : int
        The board's inter-byte timeout in cycles.
    params : dict, optional
        Overrides for ``hw.network.plan``.
    max_cycles : int
        Give up (and fail) after this many cycles in one waiting step.
    cache_dir : path, optional
        Verilator build cache (default: the ``sim`` package's).
    flash_offset : int, optional
        Build the board logic with a flash reader for this address (:class:`boards.top.BoardCore`).
    flash : dict of int to bytes, optional
        With ``flash_offset``: the flash's contents by address (default: an erased flash).
    flash_wake_cycles : int
        Cycles the simulated flash takes to leave deep power-down.

    Returns
    -------
    (list of boards.protocol.Frame, dict)
        The frames received and the raw report (``received`` bytes, ``cycles``, ``errors``).
    """
    from sim import build as simbuild
    from sim.runner import run_test

    from .protocol import FrameDecoder
    from .top import BoardCore

    clock_hz = 1e9 / CLOCK_NS
    baud = int(round(clock_hz / divisor))
    timeout_us = timeout_cycles / clock_hz * 1e6
    core = BoardCore(model, clock_hz=clock_hz, baud=baud, timeout_us=timeout_us, params=params,
                     flash_offset=flash_offset)
    assert core.divisor == divisor and core.timeout_cycles == timeout_cycles
    built = simbuild.build(core, toplevel="board_core", cache_dir=cache_dir)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    job = run_dir / "job.json"
    spec = {"divisor": divisor, "clock_ns": CLOCK_NS, "steps": list(steps), "max_cycles": max_cycles}
    if flash_offset is not None:
        spec["flash"] = {"pins": {name: f"flash__{name}" for name in ("cs", "clk", "copi", "cipo")},
                         "contents": {str(address): bytes(data).hex() for address, data in (flash or {}).items()},
                         "wake_cycles": int(flash_wake_cycles)}
    job.write_text(json.dumps(spec))
    run = run_test(built, "boards.board_sim", run_dir=run_dir, job=job)
    report = run.report
    if report.get("errors"):
        raise AssertionError(f"board simulation: {'; '.join(report['errors'])} (log: {run.log})")
    frames = FrameDecoder().feed(bytes.fromhex(report["received"]))
    return frames, report


try:
    import cocotb
    from cocotb.triggers import FallingEdge, RisingEdge, Timer
except ImportError:  # pragma: no cover - cocotb is a dependency; this keeps the module importable without it
    cocotb = None


if cocotb is not None:

    @cocotb.test()
    async def board_session(dut):
        """Play the job's serial script against the board logic (see the module docstring)."""
        from cocotb.clock import Clock

        from sim.runner import JOB_ENV, REPORT_ENV

        from .protocol import FrameDecoder

        with open(os.environ[JOB_ENV]) as f:
            job = json.load(f)
        div, period = job["divisor"], job["clock_ns"]
        bit_ns = div * period
        # the pins: BoardCore's ports by default; a board top's pad names (boards.top_sim) otherwise
        pins = {"clock": "clk", "rx": "rx", "tx": "tx", "reset": "rst"} | job.get("pins", {})
        clk, rx, tx = (getattr(dut, pins[name]) for name in ("clock", "rx", "tx"))
        errors = []
        received = bytearray()
        decoder = FrameDecoder()
        frames = []

        cocotb.start_soon(Clock(clk, period, unit="ns").start())
        rx.value = 1
        if job.get("flash"):
            cocotb.start_soon(serve_flash(dut, clk, job["flash"]))
        if pins["reset"]:
            rst = getattr(dut, pins["reset"])
            rst.value = 1
            for _ in range(4):
                await RisingEdge(clk)
            rst.value = 0
        for _ in range(1 + job.get("startup", 0)):  # a board top: the PLL's lock and the power-on reset
            await RisingEdge(clk)

        async def monitor():
            while True:
                await FallingEdge(tx)
                await Timer(bit_ns // 2, unit="ns")
                if int(tx.value) != 0:
                    errors.append(f"glitch on tx after {len(received)} bytes")
                    continue
                value = 0
                for bit in range(8):
                    await Timer(bit_ns, unit="ns")
                    value |= int(tx.value) << bit
                await Timer(bit_ns, unit="ns")
                if int(tx.value) != 1:
                    errors.append(f"stop bit of byte {len(received)} is 0")
                received.append(value)
                frames.extend(decoder.feed(bytes([value])))

        cocotb.start_soon(monitor())

        async def send(data):
            await FallingEdge(clk)  # change rx between rising edges: no race with the sampling edge
            for value in data:
                for bit in [0] + [(value >> n) & 1 for n in range(8)] + [1]:
                    rx.value = bit
                    await Timer(bit_ns, unit="ns")

        cycles = 0
        for step in job["steps"]:
            if "idle" in step:
                await Timer(step["idle"] * period, unit="ns")
                cycles += step["idle"]
                continue
            target = len(frames) + step["replies"]
            await send(bytes.fromhex(step["send"]))
            cycles += len(step["send"]) // 2 * 10 * div
            waited = 0
            while len(frames) < target:
                await Timer(50 * period, unit="ns")
                waited += 50
                if waited > job["max_cycles"]:
                    errors.append(f"no reply {len(frames) + 1} after {waited:,} cycles (step {step})")
                    break
            cycles += waited
            if errors:
                break
        # a little quiet time: nothing more must arrive
        await Timer(30 * div * period, unit="ns")
        report = {"received": bytes(received).hex(), "cycles": cycles, "errors": errors,
                  "pins": {name: int(getattr(dut, name).value) for name in job.get("watch", [])}}
        tmp = os.environ[REPORT_ENV] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f)
        os.replace(tmp, os.environ[REPORT_ENV])

    async def serve_flash(dut, clk, spec):
        """Play the SPI flash of ``spec`` (see :func:`simulate`) on its pins: the model takes the pins' levels after
        each rising clock edge (read at the falling edge) and sets ``cipo`` for the next; while the flash is not
        selected and not waking, it waits for the select instead of stepping every cycle."""
        from .flash_model import SPIFlashModel

        flash = SPIFlashModel({int(address): bytes.fromhex(data) for address, data in spec["contents"].items()},
                              wake_cycles=spec["wake_cycles"])
        pins = {name: getattr(dut, pin) for name, pin in spec["pins"].items()}
        pins["cipo"].value = 1
        while True:
            await FallingEdge(clk)
            cs = int(pins["cs"].value)
            pins["cipo"].value = flash.step(cs, int(pins["clk"].value), int(pins["copi"].value))
            if not cs and not flash.waking:
                await RisingEdge(pins["cs"])
