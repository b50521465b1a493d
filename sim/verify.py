"""Verify the generated RTL of a model against the golden model: build, simulate, compare, keep a waveform.

:func:`verify` is what ``python -m sim``, ``python -m sim.bench``, ``python -m sim.campaign`` and the tests call. It

1. generates the design, the network in the simulation harness (:class:`sim.harness.Harness`), and builds it once
   per design (:func:`sim.build.build`, cached; only the ports visible, the clock generated inside the simulation);
2. computes the expected transactions with the golden model and the cycle model (:func:`sim.checker.expect`) and
   the expected event signatures (:func:`sim.harness.signatures`);
3. runs the cocotb testbench :mod:`sim.testbench`, which loads the input maps batch by batch and reads back one
   capture word per sample; random input gaps and output backpressure come from the harness;
4. compares every sample's class, readout values and cycle count, and per LIF layer the count and the two hash sums
   of its spike events (:func:`sim.checker.check_captures`);
5. on a mismatch, builds the design again with waveform tracing (tracing compiled in slows every run) and runs the
   first failing sample alone, with the same pauses, a waveform (``failure.fst`` in the run directory) and the trace of its spike events, and names the layer, step and neuron of the first
   difference.

The plan and the network constructor are reached through :func:`network_design` only, and the cycle model through
:func:`sim.checker.expect` only.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .build import SimBuild, build
from .checker import Expectation, check_captures, expect, trace_mismatches
from .harness import LOAD_BYTES, TRACE_DEPTH, Harness, probability_code, signatures
from .runner import run_test

__all__ = ["Verification", "verify", "network_design", "hardware_plan", "harness_design", "build_harness", "DEFAULT_GAP",
           "DEFAULT_STALL", "DEFAULT_CAPACITY", "PERIOD_PS", "MIN_SHARD"]

#: Default probability of a gap in the input's ``valid``.
DEFAULT_GAP = 0.2
#: Default probabilities of backpressure on the outputs.
DEFAULT_STALL = {"o": 0.3, "events": 0.2}
#: Samples per batch of the harness (its input and capture memories).
DEFAULT_CAPACITY = 256
#: Clock period of the simulation.
PERIOD_PS = 10_000

_TOPLEVEL = "spikesmith_harness"


@dataclass
class Verification:
    """Outcome of :func:`verify`.

    Members
    -------
    report : dict
        What was compared and what differed (see :func:`sim.checker.check_captures`), the testbench's figures, and
        ``names`` of the samples.
    build : SimBuild
    run_dir : Path
    waves : Path or None
        Waveform of the failing sample (only after a mismatch).
    sim_seconds : float
        Wall time of the simulation (without the build and the golden model).
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
            "processes": int(self.report.get("processes", 1)),
        }


def network_design(model, params=None):
    """The design under test: ``hw.network.Network`` of the model's plan, with the debug spike stream.

    The one place of ``sim`` that calls the network constructor.
    """
    from hw.network import Network
    return Network(hardware_plan(model, params), debug=True)


def hardware_plan(model, params=None):
    """The hardware plan of ``model`` (``hw.plan.plan``): what the network and the cycle model are made from."""
    from hw.plan import plan
    return plan(model, params=params)


def harness_design(model, params=None, *, capacity: int = DEFAULT_CAPACITY) -> Harness:
    """:func:`network_design` inside the simulation harness."""
    return Harness(network_design(model, params), capacity=capacity)


def build_harness(model, params=None, *, simulator: str = "verilator", cache_dir=None,
                  capacity: int = DEFAULT_CAPACITY, design=None):
    """Generate and build (or find in the cache) the harness of ``model``, without waveform tracing; return
    ``(harness, SimBuild)``.

    ``design`` replaces the network (a component with the same ports, for the tests of the harness).
    """
    harness = Harness(design, capacity=capacity) if design is not None else \
        harness_design(model, params, capacity=capacity)
    return harness, _compile(harness, simulator, cache_dir, trace=False)


def _compile(harness, simulator, cache_dir, *, trace: bool) -> SimBuild:
    """The Verilator build of a harness: only the ports visible, the clock inside, tracing only where asked for
    (the run of a failing sample); an Icarus build as it is."""
    if simulator == "verilator":
        return build(harness, toplevel=_TOPLEVEL, simulator=simulator, cache_dir=cache_dir, access="ports",
                     clock_period_ps=PERIOD_PS, trace=trace)
    return build(harness, toplevel=_TOPLEVEL, simulator=simulator, cache_dir=cache_dir)


def _drives_clock(sim_build) -> bool:
    """Whether the testbench must drive the clock (a build without the clock inside, see :func:`sim.build.clocked`)."""
    return not sim_build.toplevel.endswith("_clocked")


def _max_cycles(expectation: Expectation, gap: float, stall: dict) -> int:
    """A generous cycle limit for a batch: twice the cycles the stalls make of the cycle model's counts."""
    slow = 1.0 / ((1.0 - gap) * (1.0 - max(stall.values(), default=0.0)))
    known = expectation.cycles[expectation.cycles >= 0]
    n = expectation.samples
    if len(known) == n:
        return int(known.sum() * slow * 2) + 2000 * n + 10000
    return 2_000_000 * n


def _write_job(run_dir: Path, x, harness: Harness, *, seed, gap, stall, max_cycles, base=0, trace=False,
               drive_clock=False) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    inputs = np.asarray(x, dtype=np.int8).reshape(len(x), -1)
    np.save(run_dir / "inputs.npy", inputs)
    job = {
        "inputs": str(run_dir / "inputs.npy"),
        "seed": int(seed),
        "base": int(base),
        "gap": probability_code(gap),
        "stall_o": probability_code(stall.get("o", 0.0)),
        "stall_events": probability_code(stall.get("events", 0.0)),
        "capacity": harness.capacity,
        "words_per_sample": harness.words_per_sample,
        "load_bytes": LOAD_BYTES,
        "trace_depth": TRACE_DEPTH,
        "max_cycles": int(max_cycles),
        "period_ns": PERIOD_PS / 1000,
        "trace": bool(trace),
        "drive_clock": bool(drive_clock),
    }
    path = run_dir / "job.json"
    path.write_text(json.dumps(job, indent=1))
    return path


def verify(model, x, *, run_dir: Path | str, params=None, names=None, simulator: str = "verilator",
           seed: int = 0, gap: float = DEFAULT_GAP, stall: dict | None = None, cache_dir=None,
           waves_on_failure: bool = True, tamper=None, design=None, check_cycles: bool = True,
           capacity: int = DEFAULT_CAPACITY, built=None, jobs: int | None = None) -> Verification:
    """Simulate ``model``'s generated RTL on the input maps ``x`` and compare everything with the golden model.

    Parameters
    ----------
    model : golden.manifest.Model
    x : array (N, C, H, W) of int8
    run_dir : path
        Where the job, the report, the log and a failing sample's waveform go.
    params : optional
        Hardware parameters of the plan (see :func:`network_design`).
    names : list of str, optional
        A name per sample, for the report.
    simulator : str
        ``"verilator"`` or ``"icarus"``.
    seed : int
        Seed of the gaps and stalls.
    gap, stall : float, dict
        Probability of an input gap, and of backpressure per output port (``{"o": p, "events": p}``), each in
        [0, 1) with a resolution of 1/256.
    cache_dir : path, optional
        Build cache (default :func:`sim.build.default_cache_dir`).
    waves_on_failure : bool
        After a mismatch, run the first failing sample again with tracing, keep its waveform and name its first
        differing spike event.
    tamper : callable, optional
        ``tamper(expectation)`` changes the expectation before the run: the tests use it to show that a wrong
        reference is caught.
    design : wiring.Component, optional
        A network to simulate instead of :func:`network_design`'s (same ports and model).
    check_cycles : bool
        Compare the cycle counts with the cycle model.
    capacity : int
        Samples per batch of the harness.
    built : tuple, optional
        ``(harness, SimBuild)`` from :func:`build_harness`, to run a design that is already built (a campaign runs
        several batches of inputs through one build).
    jobs : int, optional
        Simulator processes that share the samples (each takes a contiguous part; the pauses of a sample do not
        depend on the part it is in). Default: one per CPU core, at most 2, and one for fewer than
        :data:`MIN_SHARD` samples.
    """
    run_dir = Path(run_dir).resolve()
    x = np.asarray(x)
    stall = dict(DEFAULT_STALL if stall is None else stall)
    for name, p in [("gap", gap)] + [(f"stall[{k!r}]", v) for k, v in stall.items()]:
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"{name} must be in [0, 1), not {p}")
    harness, sim_build = built if built is not None else build_harness(
        model, params, simulator=simulator, cache_dir=cache_dir, capacity=capacity, design=design)
    hw_plan = getattr(harness.network, "plan", None) if check_cycles else None
    expectation = expect(model, x, plan=hw_plan)
    if tamper is not None:
        tamper(expectation)
    started = time.monotonic()
    run = _run_shards(sim_build, harness, x, expectation, run_dir, jobs=jobs, seed=seed, gap=gap, stall=stall)
    seconds = time.monotonic() - started
    expected = signatures(expectation, harness.network.events.payload.shape()["neuron"].width)
    report = check_captures(expectation, expected, run["captures"], harness.capture)
    report.update({k: run[k] for k in ("sim_cycles", "tb_seconds", "processes")})
    report["timed_out"] = bool(run["timed_out"])
    names = list(names) if names is not None else [f"sample {k}" for k in range(len(x))]
    report["names"] = names
    waves = None
    failing = report.get("failing_samples", [])
    if failing and waves_on_failure:
        traced = _compile(harness, sim_build.simulator, cache_dir, trace=True)
        waves = _trace_failure(traced, harness, model, x, expectation, report, run_dir, failing[0], seed=seed,
                               gap=gap, stall=stall)
    tmp = run_dir / f".verification.json.{os.getpid()}"
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, run_dir / "verification.json")
    return Verification(report, sim_build, run_dir, waves, seconds, hw_plan is not None, names)


#: Fewest samples per simulator process when a run is shared between processes.
MIN_SHARD = 32


def _run_shards(sim_build, harness, x, expectation, run_dir, *, jobs, seed, gap, stall) -> dict:
    """Run the samples in ``jobs`` simulator processes at once; merge their reports (captures in sample order)."""
    from concurrent.futures import ThreadPoolExecutor

    n = len(x)
    if jobs is None:
        jobs = min(2, os.cpu_count() or 1)
    jobs = max(1, min(int(jobs), n // MIN_SHARD))
    cuts = np.linspace(0, n, jobs + 1).round().astype(int)
    parts = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]

    def one(index):
        a, b = parts[index]
        where = run_dir if jobs == 1 else run_dir / f"part{index}"
        sub = expectation.subset(range(a, b))
        job = _write_job(where, x[a:b], harness, seed=seed, gap=gap, stall=stall, base=a,
                         max_cycles=_max_cycles(sub, gap, stall), drive_clock=_drives_clock(sim_build))
        return run_test(sim_build, "sim.testbench", run_dir=where, job=job, seed=seed).report

    if jobs == 1:
        reports = [one(0)]
    else:
        with ThreadPoolExecutor(jobs) as pool:
            reports = list(pool.map(one, range(jobs)))
    captures = []
    for (a, b), rep in zip(parts, reports):
        captures.extend(rep["captures"])
        if len(rep["captures"]) < b - a:
            break  # the samples after a missing one cannot be attributed
    return {"captures": captures, "sim_cycles": sum(r["sim_cycles"] for r in reports),
            "tb_seconds": max(r["tb_seconds"] for r in reports), "processes": jobs,
            "timed_out": any(r["timed_out"] for r in reports)}


def _trace_failure(sim_build, harness, model, x, expectation, report, run_dir, sample, **kw) -> Path | None:
    """Run ``sample`` alone again, with its own pauses, a waveform and the trace of its spike events; put the named
    differences first in the report's mismatch list; return the waveform's path."""
    trace_dir = run_dir / "failure"
    one = expectation.subset([sample])
    job = _write_job(trace_dir, x[sample:sample + 1], harness, max_cycles=_max_cycles(one, kw["gap"], kw["stall"]),
                     base=sample, trace=True, drive_clock=_drives_clock(sim_build), **kw)
    rerun = run_test(sim_build, "sim.testbench", run_dir=trace_dir, job=job, seed=kw["seed"], waves=True)
    named = trace_mismatches(one, rerun.report.get("trace", []), rerun.report["captures"], harness, sample)
    if named:
        report["mismatch_list"] = [m.as_dict() for m in named] + report["mismatch_list"]
        report["first_mismatch"] = str(named[0])
    if rerun.waves is None:
        return None
    target = run_dir / f"failure{sim_build.waves_suffix}"
    os.replace(rerun.waves, target)
    return target
