"""A known-good stream design and its cocotb test, to verify the bus-functional models of :mod:`sim.streams`.

:class:`StreamQueue` is a stream-native FIFO (``amaranth.lib.fifo.SyncFIFOBuffered`` behind ``i`` / ``o`` stream
ports). The cocotb test :func:`loopback` sends random payloads through it with random gaps in ``valid`` and random
backpressure on ``ready``, and reports whether every payload came out once, in order, and whether the design kept
the stream rules. The design can be built with a deliberate fault, so that the tests can show that a broken design
is caught (a testbench that passes a broken design verifies nothing).

The job file (JSON, path in ``$SPIKESMITH_SIM_JOB``) holds ``count``, ``seed``, ``gap``, ``stall``; the report
holds ``sent``, ``received``, ``mismatches`` (first ones, as text), ``protocol_errors``, ``cycles`` (the cycle of
the last transfer out).
"""

from __future__ import annotations

import json
import os
import random

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamQueue", "FAULTS", "loopback"]

#: Faults :class:`StreamQueue` can be built with.
FAULTS = ("none", "drop_valid", "corrupt")


class StreamQueue(wiring.Component):
    """A FIFO with stream ports.

    Parameters
    ----------
    shape : shape-like
        Payload shape.
    depth : int
        FIFO depth (at least 1).
    fault : str
        ``"none"``; ``"drop_valid"`` lowers ``o.valid`` every fourth cycle even while a payload waits (breaks the
        stream rules); ``"corrupt"`` flips bit 0 of every eleventh payload.

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    """

    def __init__(self, *, shape, depth: int = 4, fault: str = "none"):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"FIFO depth must be a positive integer, not {depth!r}")
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, not {fault!r}")
        self._shape = shape
        self._depth = depth
        self._fault = fault
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self._shape).width
        m.submodules.fifo = queue = fifo.SyncFIFOBuffered(width=width, depth=self._depth)
        m.d.comb += [
            queue.w_data.eq(self.i.payload),
            queue.w_en.eq(self.i.valid),
            self.i.ready.eq(queue.w_rdy),
            self.o.payload.eq(queue.r_data),
            self.o.valid.eq(queue.r_rdy),
            queue.r_en.eq(self.o.ready),
        ]
        if self._fault == "drop_valid":
            tick = Signal(2)
            m.d.sync += tick.eq(tick + 1)
            with m.If(tick == 3):
                m.d.comb += [self.o.valid.eq(0), queue.r_en.eq(0)]
        elif self._fault == "corrupt":
            count = Signal(4)
            with m.If(self.o.valid & self.o.ready):
                m.d.sync += count.eq(Mux(count == 10, 0, count + 1))
            with m.If(count == 10):
                m.d.comb += self.o.payload.eq(queue.r_data ^ 1)
        return m


try:
    import cocotb
except ImportError:  # building the design needs no cocotb
    cocotb = None


if cocotb is not None:
    @cocotb.test()
    async def loopback(dut):
        """Random payloads through the DUT under random gaps and backpressure; report what came out."""
        from cocotb.clock import Clock
        from cocotb.triggers import ClockCycles, Event, First, Timer

        from .runner import JOB_ENV, REPORT_ENV
        from .streams import ClockLoop, StreamDriver, StreamPort, StreamSink

        with open(os.environ[JOB_ENV]) as f:
            job = json.load(f)
        rng = random.Random(job["seed"])
        loop = ClockLoop(dut.clk, period_ns=10, skip_idle=job.get("skip_idle", True))
        inp, out = StreamPort(dut, "i"), StreamPort(dut, "o")
        payloads = [rng.getrandbits(inp.width) for _ in range(job["count"])]
        received = []
        last = [0]
        done = Event()

        def on_transfer(payload, cycle):
            received.append(payload)
            last[0] = cycle
            if len(received) >= len(payloads):
                done.set()

        driver = loop.add(StreamDriver(inp, gap=job["gap"], seed=rng.getrandbits(32)))
        sink = loop.add(StreamSink(out, stall=job["stall"], seed=rng.getrandbits(32),
                                   on_transfer=on_transfer))
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst.value = 1
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        driver.send(payloads)
        loop.start()
        limit = 20 * job["count"] + 100
        await First(done.wait(), Timer(limit * 10, unit="ns"))
        await Timer(80, unit="ns")  # anything extra shows up as a surplus transfer
        loop.stop()

        mismatches = [f"transfer {k}: expected {e:#x}, got {g:#x}"
                      for k, (e, g) in enumerate(zip(payloads, received)) if e != g]
        if len(received) != len(payloads):
            mismatches.append(f"expected {len(payloads)} transfers, got {len(received)}")
        report = {"sent": driver.sent, "received": len(received), "mismatches": mismatches[:20],
                  "mismatch_count": len(mismatches), "protocol_errors": [str(e) for e in sink.errors[:20]],
                  "cycles": last[0]}
        with open(os.environ[REPORT_ENV], "w") as f:
            json.dump(report, f)
        assert not mismatches and not sink.errors, (mismatches[:3], [str(e) for e in sink.errors[:3]])
