"""The cocotb testbench of :class:`sim.harness.Harness`: load a batch, run it, read the captures back.

The runner (:mod:`sim.verify`) writes a job file and starts the simulator with this module as the cocotb test
module. The design is built with its clock generated inside the simulation (:func:`sim.build.clocked`): the clock
rises at every multiple of the period, and this testbench drives and samples the ports half a period later, by time.
The single test, :func:`batches`, works per batch of at most ``capacity`` samples:

1. it writes the batch's input maps into the harness's input memory, :data:`sim.harness.LOAD_BYTES` bytes a cycle;
2. it pulses ``start`` and sleeps until ``done`` rises (or the batch's cycle limit passes): every clock cycle of the
   inference runs in the simulator, none in Python;
3. it reads one capture word per sample (result, event signatures, protocol flags) and, with ``trace`` set in the
   job, every spike event of the trace memory; it writes them, as integers in hexadecimal strings, into the JSON
   report.

The comparison with the golden model happens in the caller (:func:`sim.verify.verify`), which decodes the words
with the Amaranth layouts of the design.

Job file (JSON, path in ``$SPIKESMITH_SIM_JOB``): ``inputs`` (``.npy``, int8 (N, C*H*W) in raster order), ``seed``,
``base`` (index of the first sample in the whole run), ``gap``, ``stall_o``, ``stall_events`` (8-bit thresholds),
``capacity``, ``words_per_sample``, ``load_bytes``, ``trace_depth``, ``max_cycles`` (per batch), ``period_ns``,
``trace``, ``drive_clock`` (a build without the clock inside: drive it from here). The module imports nothing of Amaranth: the simulator process starts faster without it.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

__all__ = ["pack_words", "batches"]


def pack_words(inputs: np.ndarray, words_per_sample: int, load_bytes: int) -> list:
    """The load words of a batch: each sample's bytes padded to ``words_per_sample * load_bytes``, ``load_bytes``
    bytes a word, the first byte in the low bits."""
    n = inputs.shape[0]
    padded = np.zeros((n, words_per_sample * load_bytes), dtype=np.uint8)
    padded[:, :inputs.shape[1]] = inputs.astype(np.int8).view(np.uint8)
    chunks = padded.reshape(-1, load_bytes)
    return [int.from_bytes(row.tobytes(), "little") for row in chunks]


try:
    import cocotb
except ImportError:  # pack_words is used outside the simulator
    cocotb = None


if cocotb is not None:
    @cocotb.test()
    async def batches(dut):
        """All samples of the job through the harness, batch by batch."""
        from cocotb.triggers import First, RisingEdge, Timer
        from cocotb.utils import get_sim_time

        from .runner import JOB_ENV, REPORT_ENV

        started = time.perf_counter()
        with open(os.environ[JOB_ENV]) as f:
            job = json.load(f)
        inputs = np.load(job["inputs"])
        period = float(job.get("period_ns", 10.0))
        capacity = int(job["capacity"])
        words = int(job["words_per_sample"])
        load_bytes, trace_depth = int(job["load_bytes"]), int(job["trace_depth"])
        cycle = Timer(period, unit="ns")

        async def mid_cycle():
            """Wait until half a period after the next rising edge."""
            now = get_sim_time("ns")
            edge = (now // period + 1) * period
            await Timer(edge + period / 2 - now, unit="ns")

        for name in ("load_en", "start", "read_addr", "trace_addr", "load_addr", "load_data", "count"):
            getattr(dut, name).value = 0
        dut.seed.value = int(job["seed"]) & 0xFFFFFFFF
        dut.gap.value = int(job["gap"])
        dut.stall_o.value = int(job["stall_o"])
        dut.stall_events.value = int(job["stall_events"])
        if job.get("drive_clock"):
            from cocotb.clock import Clock
            Clock(dut.clk, period, unit="ns").start(start_high=True)  # rising edges at multiples of the period
        await mid_cycle()

        captures, traces, sim_cycles, timed_out = [], [], 0, False
        phases = {"load": 0.0, "run": 0.0, "read": 0.0}
        for first in range(0, inputs.shape[0], capacity):
            batch = inputs[first:first + capacity]
            t0 = time.perf_counter()
            dut.load_en.value = 1
            for address, word in enumerate(pack_words(batch, words, load_bytes)):
                dut.load_addr.value = address
                dut.load_data.value = word
                await cycle
            dut.load_en.value = 0
            dut.count.value = len(batch)
            dut.base.value = int(job.get("base", 0)) + first
            dut.start.value = 1
            await cycle
            dut.start.value = 0
            t1 = time.perf_counter()
            await cycle
            if not int(dut.done.value):
                await First(RisingEdge(dut.done), Timer(int(job["max_cycles"]) * period, unit="ns"))
            await mid_cycle()
            t2 = time.perf_counter()
            captured = int(dut.captured.value)
            sim_cycles += int(dut.cycles.value)
            for k in range(captured):
                dut.read_addr.value = k
                await cycle
                captures.append(hex(int(dut.read_data.value)))
            if job.get("trace"):
                traced = int(dut.traced.value)
                for k in range(min(traced, trace_depth)):
                    dut.trace_addr.value = k
                    await cycle
                    traces.append(int(dut.trace_data.value))
                if traced > trace_depth:
                    traces.append(-1)  # the trace is incomplete
            phases["load"] += t1 - t0
            phases["run"] += t2 - t1
            phases["read"] += time.perf_counter() - t2
            if captured < len(batch):
                timed_out = True
                break
        report = {
            "captures": captures,
            "samples": int(inputs.shape[0]),
            "sim_cycles": sim_cycles,
            "timed_out": timed_out,
            "tb_seconds": time.perf_counter() - started,
            "phase_seconds": phases,
        }
        if job.get("trace"):
            report["trace"] = traces
        tmp = os.environ[REPORT_ENV] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f)
        os.replace(tmp, os.environ[REPORT_ENV])
