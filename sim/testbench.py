"""The cocotb testbench of a generated ``hw.network.Network``: driver, monitors, reference model and checker.

The runner (:mod:`sim.verify`) writes a job file and starts the simulator with this module as the cocotb test
module. The single test, :func:`network`, wires:

- a :class:`sim.streams.StreamDriver` on ``i`` that sends every sample's input map in raster order, samples back to
  back, with random gaps in ``valid``;
- a :class:`sim.streams.StreamSink` on ``o`` (one result per sample) and, when the design has it, on ``events``
  (every spike of every LIF layer), both with random backpressure, both checking the stream rules;
- the reference: the golden model's expected transactions and cycle counts (:class:`sim.checker.Expectation`);
- the in-order :class:`sim.checker.Checker`, fed by the sinks' transfer callbacks.

It runs until every result has come (or a cycle limit), lets a few more cycles pass so that surplus transfers show
up, and writes a JSON report; the test fails on any mismatch.

Job file (JSON, path in ``$SPIKESMITH_SIM_JOB``): ``expect`` (the ``.npz`` of an Expectation), ``inputs``
(``.npy``, int8 (N, C*H*W) in raster order), ``seed``, ``gap``, ``stall`` (``{"o": p, "events": p}``),
``max_cycles``, ``drain_cycles``, ``period_ns``, ``result_fields`` and ``event_fields`` (from
:func:`describe_layout`), and ``record`` (keep every received spike event as ``(layer, step, neuron, cycle)`` rows
in ``events_got.npy`` beside the report).
"""

from __future__ import annotations

import bisect
import json
import os
import random
import time

import numpy as np

__all__ = ["describe_layout", "unknown_signals", "network"]


def describe_layout(layout) -> dict:
    """Field positions of a ``data.StructLayout`` as plain data: ``{name: [offset, width, count, signed]}``.

    An ``ArrayLayout`` field has ``count`` elements of ``width`` bits each; any other field has ``count`` 1.
    The testbench decodes payloads with these, without Amaranth objects in the simulator process.
    """
    from amaranth.hdl import Shape
    from amaranth.lib import data

    fields = {}
    for name, field in layout:
        shape = field.shape
        if isinstance(shape, data.ArrayLayout):
            elem = Shape.cast(shape.elem_shape)
            fields[name] = [field.offset, elem.width, shape.length, bool(elem.signed)]
        else:
            s = Shape.cast(shape)
            fields[name] = [field.offset, s.width, 1, bool(s.signed)]
    return fields


def unknown_signals(dut, limit: int = 60) -> list:
    """Named signals of the DUT's hierarchy that hold X or Z bits now (four-state simulators), for a report.

    Yosys' internal ``$``-names are left out: the named signals point at the Amaranth source.
    """
    from cocotb.handle import HierarchyObject, LogicArrayObject, LogicObject

    found = []

    def walk(handle, depth):
        for child in handle:
            if len(found) >= limit:
                return
            if isinstance(child, (LogicObject, LogicArrayObject)):
                if "$" in child._name:
                    continue
                text = str(child.value).lower()
                if "x" in text or "z" in text:
                    found.append(f"{child._path} = {child.value}")
            elif isinstance(child, HierarchyObject) and depth < 12:
                walk(child, depth + 1)

    walk(dut, 0)
    return found


def _decoder(fields: dict):
    """A function that decodes a payload integer into ``{name: int or [int]}``."""
    plan = [(name, int(off), int(width), int(count), bool(signed)) for name, (off, width, count, signed)
            in fields.items()]

    def value(bits, off, width, signed):
        v = (bits >> off) & ((1 << width) - 1)
        if signed and v >> (width - 1):
            v -= 1 << width
        return v

    def decode(bits):
        out = {}
        for name, off, width, count, signed in plan:
            if count == 1:
                out[name] = value(bits, off, width, signed)
            else:
                out[name] = [value(bits, off + k * width, width, signed) for k in range(count)]
        return out

    return decode


try:
    import cocotb
except ImportError:  # the helpers above are used by the runner, which may not have cocotb loaded
    cocotb = None


if cocotb is not None:
    @cocotb.test()
    async def network(dut):
        """All samples of the job through the DUT; compare every transaction with the golden model."""
        from cocotb.clock import Clock
        from cocotb.triggers import ClockCycles, Event, First, Timer

        from .checker import Checker, Expectation
        from .runner import JOB_ENV, REPORT_ENV
        from .streams import ClockLoop, StreamDriver, StreamPort, StreamSink

        started = time.perf_counter()
        with open(os.environ[JOB_ENV]) as f:
            job = json.load(f)
        expectation = Expectation.load(job["expect"])
        inputs = np.load(job["inputs"])
        checker = Checker(expectation, limit=job.get("limit", 50))
        rng = random.Random(job["seed"])
        period = float(job.get("period_ns", 10.0))

        loop = ClockLoop(dut.clk, period_ns=period, skip_idle=job.get("skip_idle", True))
        done = Event()
        result_of = _decoder(job["result_fields"])
        result_cycles = []

        def on_result(bits, cycle):
            fields = result_of(bits)
            checker.result(fields["cls"], fields["cycles"], fields["readout"])
            result_cycles.append(cycle)
            if checker.done:
                done.set()

        stall = job.get("stall", {})
        driver = loop.add(StreamDriver(StreamPort(dut, "i"), gap=job.get("gap", 0.0),
                                       seed=rng.getrandbits(32)))
        sinks = [loop.add(StreamSink(StreamPort(dut, "o"), stall=stall.get("o", 0.0),
                                     seed=rng.getrandbits(32), on_transfer=on_result))]
        has_events = hasattr(dut, "events__valid")
        received = []
        if has_events and job.get("event_fields"):
            layer_off, layer_w = job["event_fields"]["layer"][:2]
            step_off, step_w = job["event_fields"]["step"][:2]
            neuron_off, neuron_w = job["event_fields"]["neuron"][:2]
            layer_mask, step_mask, neuron_mask = (1 << layer_w) - 1, (1 << step_w) - 1, (1 << neuron_w) - 1

            if job.get("record"):
                def on_event(bits, cycle):
                    event = ((bits >> layer_off) & layer_mask, (bits >> step_off) & step_mask,
                             (bits >> neuron_off) & neuron_mask)
                    received.append(event + (cycle,))
                    checker.event(*event)
            else:
                def on_event(bits, cycle):
                    checker.event((bits >> layer_off) & layer_mask, (bits >> step_off) & step_mask,
                                  (bits >> neuron_off) & neuron_mask)

            def describe(bits):
                return (f"{bits:#x} (layer {(bits >> layer_off) & layer_mask}, step {(bits >> step_off) & step_mask}"
                        f", neuron {(bits >> neuron_off) & neuron_mask})")

            sinks.append(loop.add(StreamSink(StreamPort(dut, "events"), stall=stall.get("events", 0.0),
                                             seed=rng.getrandbits(32), on_transfer=on_event, describe=describe)))
        else:
            checker.ignore_events()
        # On a four-state simulator, list the signals holding X or Z when the first one reaches a port.
        unknown = []
        if "verilator" not in str(getattr(cocotb, "SIM_NAME", "")).lower():
            endpoints = [driver, *sinks]

            def look_for_unknowns(cycle):
                if not unknown and any(" while valid (not 0 or 1)" in e.message or e.message.endswith(
                        "(not 0 or 1)") for ep in endpoints for e in ep.errors):
                    unknown.extend([f"cycle {cycle}"] + unknown_signals(dut))

            loop.on_cycle(look_for_unknowns)

        # The endpoints drive every input of the DUT from here on (idle levels); then the reset.
        Clock(dut.clk, period, unit="ns").start()
        dut.rst.value = 1
        await ClockCycles(dut.clk, 2)
        dut.rst.value = 0
        driver.send(inputs.reshape(-1).tolist())
        loop.start()
        first_cycle = loop.now()
        max_cycles = int(job["max_cycles"])
        await First(done.wait(), Timer(max_cycles * period, unit="ns"))
        timed_out = not done.is_set()
        await Timer(int(job.get("drain_cycles", 64)) * period, unit="ns")
        loop.stop()
        last_cycle = loop.now()

        for endpoint in [driver, *sinks]:
            for error in endpoint.errors:
                checker.protocol(str(error), sample=bisect.bisect_left(result_cycles, error.cycle))
        checker.finish()
        wall = time.perf_counter() - started
        report = checker.summary() | {
            "timed_out": timed_out,
            "max_cycles": max_cycles,
            "inputs_sent": driver.sent,
            "inputs_total": int(inputs.size),
            "sim_cycles": last_cycle - first_cycle,
            "result_at_cycle": result_cycles,
            "wakeups": loop.wakeups,
            "tb_seconds": wall,
            "has_events": has_events,
            "unknown_signals": unknown,
        }
        if job.get("record"):
            got = os.path.join(os.path.dirname(os.environ[REPORT_ENV]), "events_got.npy")
            np.save(got, np.asarray(received, dtype=np.int64).reshape(-1, 4))
            report["events_got"] = got
        tmp = os.environ[REPORT_ENV] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f)
        os.replace(tmp, os.environ[REPORT_ENV])
        assert checker.mismatch_count == 0, f"{checker.mismatch_count} mismatch(es); first: {checker.first_mismatch}"
