"""Verify the generated RTL of a model against the golden model: build, simulate, compare, keep a waveform.

:func:`verify` is what ``python -m sim``, ``python -m sim.bench`` and the tests call. It

1. generates the design (``hw.network.Network(model, params=..., debug=True)``) and builds it once per design
   (:func:`sim.build.build`, cached);
2. computes the expected transactions with the golden model and the cycle model ``golden.cycles``
   (:func:`sim.checker.expect`);
3. runs the cocotb testbench :mod:`sim.testbench` on all samples in one simulation, with random gaps on the input
   and random backpressure on the outputs;
4. on a mismatch, runs the samples up to the first failing one again with waveform tracing and keeps the FST
   (``failure.fst`` in the run directory) and every spike event received in that run
   (``failure/events_got.npy``: rows of layer, step, neuron, cycle).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .build import SimBuild, build
from .checker import Expectation, expect
from .runner import run_test
from .testbench import describe_layout

__all__ = ["Verification", "verify", "network_design", "DEFAULT_GAP", "DEFAULT_STALL"]

#: Default probability of a gap in the input's ``valid``.
DEFAULT_GAP = 0.2
#: Default probabilities of backpressure on the outputs.
DEFAULT_STALL = {"o": 0.3, "events": 0.2}

_TOPLEVEL = "spikesmith_net"


@dataclass
class Verification:
    """Outcome of :func:`verify`.

    Members
    -------
    report : dict
        The testbench's report (see :mod:`sim.testbench`) plus ``names`` of the samples.
    build : SimBuild
    run_dir : Path
    waves : Path or None
        Waveform of the failing run (only after a mismatch).
    sim_seconds : float
        Wall time of the simulation (without the build).
    cycle_model : bool
        Whether cycle counts were compared.
    names : list of str
        A name per sample.
    """

    report: dict
    build: SimBuild
    run_dir: Path
    waves: Path | None
    sim_seconds: float
    cycle_model: bool
    names: list = field(default_factory=list)

    @property
    def mismatches(self) -> int:
        return int(self.report["mismatches"])

    @property
    def passed(self) -> bool:
        return self.mismatches == 0 and not self.report.get("timed_out")

    @property
    def cycles(self) -> list:
        return list(self.report.get("cycles", []))

    @property
    def cycles_per_second(self) -> float:
        return self.report["sim_cycles"] / self.sim_seconds if self.sim_seconds > 0 else 0.0

    def summary(self) -> dict:
        """The figures of the run as plain data (what the CLI prints and writes)."""
        cycles = np.asarray(self.cycles, dtype=np.int64)
        return {
            "samples": self.report["samples"],
            "results": self.report["results"],
            "events_compared": self.report["events_compared"],
            "events_expected": self.report["events_expected"],
            "mismatches": self.mismatches,
            "mismatch_kinds": self.report.get("mismatch_kinds", {}),
            "first_mismatch": self.report.get("first_mismatch"),
            "timed_out": bool(self.report.get("timed_out")),
            "unknown_signals": list(self.report.get("unknown_signals", []))[:20],
            "cycles_min": int(cycles.min()) if cycles.size else None,
            "cycles_median": float(np.median(cycles)) if cycles.size else None,
            "cycles_max": int(cycles.max()) if cycles.size else None,
            "cycle_model": self.cycle_model,
            "sim_cycles": self.report["sim_cycles"],
            "sim_seconds": round(self.sim_seconds, 3),
            "sim_cycles_per_second": round(self.cycles_per_second, 1),
            "inferences_per_second": round(self.report["results"] / self.sim_seconds, 3) if self.sim_seconds else 0,
            "build_seconds": round(self.build.seconds, 3),
            "build_cached": self.build.cached,
            "simulator": self.build.simulator,
            "waves": str(self.waves) if self.waves else None,
            "run_dir": str(self.run_dir),
        }


def network_design(model, params=None):
    """The design under test: ``hw.network.Network`` with the debug spike stream."""
    from hw.network import Network
    return Network(model, params=params, debug=True)


def _max_cycles(expectation: Expectation, n: int, gap: float, stall: dict) -> int:
    slow = 1.0 / ((1.0 - gap) * (1.0 - max(stall.values(), default=0.0)))
    known = expectation.cycles[expectation.cycles >= 0]
    if len(known) == n:
        return int(known.sum() * slow * 2) + 2000 * n + 10000
    return 2_000_000 * n


def _write_job(run_dir: Path, x, expectation, model, *, seed, gap, stall, max_cycles, skip_idle,
               record=False) -> Path:
    from hw.layouts import debug_event, result_layout
    run_dir.mkdir(parents=True, exist_ok=True)
    expectation.save(run_dir / "expect.npz")
    inputs = np.asarray(x, dtype=np.int8).reshape(len(x), -1)
    np.save(run_dir / "inputs.npy", inputs)
    job = {
        "expect": str(run_dir / "expect.npz"),
        "inputs": str(run_dir / "inputs.npy"),
        "seed": int(seed),
        "gap": float(gap),
        "stall": {k: float(v) for k, v in stall.items()},
        "max_cycles": int(max_cycles),
        "drain_cycles": 64,
        "period_ns": 10.0,
        "skip_idle": bool(skip_idle),
        "record": bool(record),
        "result_fields": describe_layout(result_layout(model)),
        "event_fields": describe_layout(debug_event(model)),
    }
    path = run_dir / "job.json"
    path.write_text(json.dumps(job, indent=1))
    return path


def _subset(expectation: Expectation, n: int) -> Expectation:
    return Expectation(layers=expectation.layers, layer_names=expectation.layer_names,
                       events={k: v[v[:, 0] < n] for k, v in expectation.events.items()},
                       readout=expectation.readout[:n], classes=expectation.classes[:n],
                       cycles=expectation.cycles[:n])


def verify(model, x, *, run_dir: Path | str, params=None, names=None, simulator: str = "verilator",
           seed: int = 0, gap: float = DEFAULT_GAP, stall: dict | None = None, cache_dir=None,
           waves_on_failure: bool = True, tamper=None, skip_idle: bool = True, design=None,
           check_cycles: bool = True) -> Verification:
    """Simulate ``model``'s generated RTL on the input maps ``x`` and compare everything with the golden model.

    Parameters
    ----------
    model : golden.manifest.Model
    x : array (N, C, H, W) of int8
    run_dir : path
        Where the job, the report, the log and a failing run's waveform go.
    params : optional
        Hardware parameters for ``hw.network.Network`` / ``hw.network.plan``.
    names : list of str, optional
        A name per sample, for the report.
    simulator : str
        ``"verilator"`` or ``"icarus"``.
    seed : int
        Seed of the gaps and stalls.
    gap, stall : float, dict
        Probability of an input gap, and of backpressure per output port (``{"o": p, "events": p}``).
    cache_dir : path, optional
        Build cache (default :func:`sim.build.default_cache_dir`).
    waves_on_failure : bool
        After a mismatch, run again up to the failing sample with tracing and keep the waveform.
    tamper : callable, optional
        ``tamper(expectation)`` changes the expectation before the run: the tests use it to show that a wrong
        reference is caught.
    skip_idle : bool
        Let the testbench sleep through idle cycles (see :class:`sim.streams.ClockLoop`).
    design : wiring.Component, optional
        The design to simulate instead of :func:`network_design` (same ports).
    check_cycles : bool
        Compare the cycle counts with the cycle model (``golden.cycles``, from the design's ``plan``).
    """
    run_dir = Path(run_dir).resolve()
    x = np.asarray(x)
    stall = dict(DEFAULT_STALL if stall is None else stall)
    component = design if design is not None else network_design(model, params)
    sim_build = build(component, toplevel=_TOPLEVEL, simulator=simulator, cache_dir=cache_dir)
    hw_plan = getattr(component, "plan", None)
    expectation = expect(model, x, plan=hw_plan if check_cycles else None)
    if tamper is not None:
        tamper(expectation)
    max_cycles = _max_cycles(expectation, len(x), gap, stall)
    job = _write_job(run_dir, x, expectation, model, seed=seed, gap=gap, stall=stall, max_cycles=max_cycles,
                     skip_idle=skip_idle)
    started = time.monotonic()
    run = run_test(sim_build, "sim.testbench", run_dir=run_dir, job=job, seed=seed)
    seconds = time.monotonic() - started
    report = dict(run.report)
    names = list(names) if names is not None else [f"sample {k}" for k in range(len(x))]
    report["names"] = names
    waves = None
    if report["mismatches"] and waves_on_failure:
        waves = _trace_failure(sim_build, model, x, expectation, report, run_dir, seed=seed, gap=gap, stall=stall,
                               skip_idle=skip_idle)
    tmp = run_dir / f".verification.json.{os.getpid()}"
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, run_dir / "verification.json")
    return Verification(report, sim_build, run_dir, waves, seconds, hw_plan is not None and check_cycles, names)


def _trace_failure(sim_build, model, x, expectation, report, run_dir, **kw) -> Path | None:
    """Run the samples up to the first failing one again with tracing; return the waveform's path."""
    samples = [m["sample"] for m in report.get("mismatch_list", []) if m["sample"] >= 0]
    upto = min(samples) + 1 if samples else len(x)
    upto = min(upto, len(x))
    trace_dir = run_dir / "failure"
    sub = _subset(expectation, upto)
    job = _write_job(trace_dir, x[:upto], sub, model, max_cycles=_max_cycles(sub, upto, kw["gap"], kw["stall"]),
                     record=True, **kw)
    rerun = run_test(sim_build, "sim.testbench", run_dir=trace_dir, job=job, seed=kw["seed"], waves=True)
    if rerun.waves is None:
        return None
    target = run_dir / f"failure{sim_build.waves_suffix}"
    os.replace(rerun.waves, target)
    return target
