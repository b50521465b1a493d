"""``python -m boards.virtual``: a simulated board behind a pseudo-terminal, for any serial program.

Example::

    python -m boards.virtual --board icebreaker --model models/fsdd_scnn
    # prints e.g. /dev/pts/7; then, in another shell:
    python -m boards.host --port /dev/pts/7 recording.wav
    python -m boards.host --port /dev/pts/7 --verify --data DIR
    # weights in SPRAM: the host loads the weight image when the board asks for it
    python -m boards.virtual --board icebreaker --params '{"fc1": {"weights": "spram"}}'
    python -m boards.host --port /dev/pts/7 --params '{"fc1": {"weights": "spram"}}' --verify --data DIR

builds the board logic of ``boards.top`` (:class:`boards.top.BoardCore`: UART receiver and transmitter, protocol
engine, network; everything of :class:`boards.top.BoardTop` but the PLL) for Verilator at the board's default
clock, and runs it under cocotb behind a pseudo-terminal (``os.openpty``). Bytes written to the terminal go into the
``rx`` pin bit by bit, 8N1; bits on the ``tx`` pin come out of the terminal as bytes. The simulated UART runs
:data:`DIVISOR` clock cycles a bit (the bytes are those of the board; only the bit time is shorter), so that an
inference takes a fraction of a second. The identify reply gives the simulated clock and that bit rate.

The simulator runs until ``Ctrl-C`` (or ``SIGTERM``) or until the command that started it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["DIVISOR", "build_virtual", "serve", "main"]

#: UART clock cycles per bit of the simulated board.
DIVISOR = 8
#: Clock period of the simulation (the clock the board's logic is built for is only data: the identify reply).
PERIOD_PS = 10_000
#: Environment variables that pass the port file and the stop file to the simulator process.
PORT_ENV = "SPIKESMITH_VIRTUAL_PORT_FILE"
STOP_ENV = "SPIKESMITH_VIRTUAL_STOP_FILE"


def build_virtual(model, *, clock_hz: float, params=None, cache_dir=None, device=None):
    """The board logic of ``model`` with a :data:`DIVISOR`-cycle UART, built for Verilator (cached); the network is
    planned for ``device`` (a ``hw.device.Device``; default the iCE40UP5K), as on the board."""
    from hw.network import Network
    from hw.plan import plan
    from sim.build import build

    from .top import BoardCore

    network = Network(plan(model, device=device, params=params), debug=False)
    core = BoardCore(model, clock_hz=clock_hz, baud=int(round(clock_hz / DIVISOR)), params=params, network=network)
    return core, build(core, toplevel="virtual_board", cache_dir=cache_dir, access="ports",
                       clock_period_ps=PERIOD_PS)


def serve(model, *, clock_hz: float, run_dir, params=None, cache_dir=None, on_port=None, stop=None, device=None):
    """Run the virtual board until ``stop`` (a :class:`threading.Event`) is set; call ``on_port(name)`` once the
    pseudo-terminal is open. Returns the simulator's report (bytes in and out, cycles)."""
    from sim.runner import run_test

    core, built = build_virtual(model, clock_hz=clock_hz, params=params, cache_dir=cache_dir, device=device)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    port_file, stop_file = run_dir / "port", run_dir / "stop"
    for path in (port_file, stop_file):
        path.unlink(missing_ok=True)
    job = run_dir / "job.json"
    job.write_text(json.dumps({"divisor": core.divisor, "period_ns": PERIOD_PS / 1000}))
    result = {}

    def simulate():
        result["run"] = run_test(built, "boards.virtual", run_dir=run_dir, job=job,
                                 extra_env={PORT_ENV: str(port_file), STOP_ENV: str(stop_file)})

    thread = threading.Thread(target=simulate, daemon=True)
    thread.start()
    while not port_file.exists() and thread.is_alive():
        time.sleep(0.05)
    if port_file.exists() and on_port is not None:
        on_port(port_file.read_text().strip())
    while thread.is_alive():
        if stop is not None and stop.is_set():
            stop_file.write_text("")
        thread.join(0.1)
    if "run" not in result:
        if stop is not None and stop.is_set():
            return {}
        raise RuntimeError(f"the virtual board's simulator ended without a report (see {run_dir / 'sim.log'})")
    return result["run"].report


def main(argv=None) -> int:
    from hw.build import DEFAULT_CLOCK_MHZ, default_model_dir
    from hw.params import ParamsError, add_params_argument, parse_params

    from . import BOARDS, MODEL_HELP

    p = argparse.ArgumentParser(
        prog="python -m boards.virtual",
        description="Simulate a board (its UART, protocol engine and network on Verilator) behind a pseudo-terminal "
                    "and print the terminal's name, for boards.host or any serial program.")
    p.add_argument("--board", required=True, choices=sorted(BOARDS), help="the board to simulate")
    p.add_argument("--model", type=Path, default=None, help=MODEL_HELP)
    p.add_argument("--clock", type=float, default=DEFAULT_CLOCK_MHZ,
                   help=f"the clock the design is built for, in MHz (default {DEFAULT_CLOCK_MHZ:g})")
    p.add_argument("--run-dir", type=Path, default=None, help="simulator directory (default: a temporary one)")
    p.add_argument("--cache", type=Path, default=None, help="build cache (default ~/.cache/spikesmith/sim)")
    add_params_argument(p, help_suffix=" (with weights in SPRAM the board needs its weight image: boards.host "
                                       "loads it, given the same --params)")
    args = p.parse_args(argv)
    try:
        params = parse_params(args.params)
    except ParamsError as exc:
        p.error(str(exc))

    from golden.manifest import ManifestError, load
    from sim.build import BuildError

    try:
        model = load(args.model or default_model_dir(args.board))
    except (ManifestError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="spikesmith-virtual-"))
    print(f"building the {args.board} board logic of {model.name} for Verilator ...", file=sys.stderr)

    def announce(name):
        print(name, flush=True)
        print(f"virtual {args.board} on {name} ({DIVISOR} clock cycles a bit); Ctrl-C to stop", file=sys.stderr)

    try:
        report = serve(model, clock_hz=args.clock * 1e6, run_dir=run_dir, params=params, cache_dir=args.cache,
                       on_port=announce, stop=stop, device=BOARDS[args.board].device)
    except (BuildError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if report:
        print(f"stopped: {report['bytes_in']:,} bytes in, {report['bytes_out']:,} bytes out, "
              f"{report['cycles']:,} cycles simulated", file=sys.stderr)
    return 0


try:
    import cocotb
except ImportError:  # pragma: no cover - cocotb is a dependency
    cocotb = None


if cocotb is not None:
    @cocotb.test()
    async def pty_session(dut):
        """Bridge a pseudo-terminal and the board's serial pins until the stop file appears."""
        import tty

        from cocotb.triggers import FallingEdge, Timer
        from cocotb.utils import get_sim_time

        from sim.runner import JOB_ENV, REPORT_ENV

        with open(os.environ[JOB_ENV]) as f:
            job = json.load(f)
        period = float(job["period_ns"])
        bit_ns = int(job["divisor"]) * period

        # A fresh Timer per wait: the receive and transmit coroutines wait at the same time while the board
        # answers a frame it refused at its header, and one Timer object awaited by both would wake them together.
        def bit():
            return Timer(bit_ns, unit="ns")

        def half_bit():
            return Timer(bit_ns / 2, unit="ns")
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        name = os.ttyname(slave)
        tmp = os.environ[PORT_ENV] + ".tmp"
        Path(tmp).write_text(name + "\n")
        os.replace(tmp, os.environ[PORT_ENV])
        stop_file = os.environ[STOP_ENV]
        parent = os.getppid()
        stopping = []
        for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C reaches the whole process group: end cleanly
            signal.signal(sig, lambda *_: stopping.append(True))
        counts = {"in": 0, "out": 0}

        dut.rst.value = 0
        dut.rx.value = 1
        await Timer(4.5 * period, unit="ns")  # from here on, rx changes half a period away from the clock's edges

        async def transmit_pin():
            while True:
                await FallingEdge(dut.tx)
                await half_bit()
                if int(dut.tx.value) != 0:
                    continue  # a glitch, not a start bit
                value = 0
                for k in range(8):
                    await bit()
                    value |= int(dut.tx.value) << k
                await bit()
                os.write(master, bytes([value]))
                counts["out"] += 1

        cocotb.start_soon(transmit_pin())
        idle = 0
        while True:
            try:
                data = os.read(master, 4096)
            except (BlockingIOError, OSError):
                data = b""
            if data:
                idle = 0
                for value in data:
                    for level in [0] + [(value >> k) & 1 for k in range(8)] + [1]:
                        dut.rx.value = level
                        await bit()
                counts["in"] += len(data)
                continue
            idle += 1
            await Timer(64 * int(job["divisor"]) * period, unit="ns")  # let replies go out
            if idle > 64:
                time.sleep(0.002)  # nothing to do: do not spin
                if stopping or os.path.exists(stop_file) or os.getppid() != parent:
                    break
        report = {"bytes_in": counts["in"], "bytes_out": counts["out"],
                  "cycles": int(get_sim_time("ns") // period)}
        os.close(slave)
        os.close(master)
        tmp = os.environ[REPORT_ENV] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f)
        os.replace(tmp, os.environ[REPORT_ENV])


if __name__ == "__main__":
    from golden.cli import run_main
    sys.exit(run_main(main))
