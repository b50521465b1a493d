"""The generated network's RTL on Verilator (and Icarus where installed) against the golden model.

Each test builds ``hw.network.Network`` for a model (cached per design), runs the cocotb testbench of
:mod:`sim.testbench` with random input gaps and output backpressure, and requires every spike event, readout, class
and cycle count to equal the golden model and the cycle model. The reduced set runs by default: the shipped test
model on the extreme inputs and random maps, two random manifests with random hardware parameters, a handful of FSDD
samples through the shipped FSDD model, the command line, and a run against a deliberately wrong reference that must
fail. Long runs are marked ``slow``.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim import toolchain
from sim.stimulus import extreme_inputs, mixed, random_inputs, random_models, random_params
from sim.verify import verify

ROOT = Path(__file__).resolve().parent.parent
FSDD_MODEL = ROOT / "models" / "fsdd_scnn"


def _check_passed(result):
    summary = result.summary()
    assert result.passed, f"{summary['mismatches']} mismatch(es); first: {summary['first_mismatch']}"
    assert summary["results"] == summary["samples"]
    assert summary["events_compared"] == summary["events_expected"]
    assert summary["cycle_model"], "cycle counts were not compared"
    return summary


def test_tiny_model_extremes_and_random_inputs(tiny_shipped, tmp_path):
    stimulus = mixed(tiny_shipped, samples=8, seed=11)
    result = verify(tiny_shipped, stimulus.x, names=stimulus.names, run_dir=tmp_path, seed=11)
    summary = _check_passed(result)
    assert summary["events_expected"] > 0
    # The extreme maps give the widest spread of cycle counts: all zeros has the fewest spikes.
    assert summary["cycles_min"] < summary["cycles_max"]


@pytest.mark.parametrize("seed", [101, 202])
def test_random_manifest_with_random_parameters(seed, tmp_path):
    [(model, _)] = random_models(seed, 1, tmp_path / "models")
    params = random_params(model, seed)
    x = (extreme_inputs(model) + random_inputs(model, 3, seed)).x
    result = verify(model, x, params=params, run_dir=tmp_path / "run", seed=seed)
    _check_passed(result)


def test_wrong_reference_is_caught_and_traced(tiny_shipped, tmp_path):
    """A run against a changed expectation must fail and name the sample, layer, step and neuron."""
    x = mixed(tiny_shipped, samples=6, seed=2).x
    changed = {}

    def tamper(expectation):
        layer = expectation.layers[-1]  # fc1
        events = expectation.events[layer]
        row = int(np.flatnonzero(events[:, 0] == 5)[0])
        sample, step, neuron = (int(v) for v in events[row])
        same = set(events[(events[:, 0] == sample) & (events[:, 1] == step), 2].tolist())
        wrong = next(n for n in range(64) if n not in same)
        events[row, 2] = wrong
        changed.update(sample=sample, step=step, neuron=neuron, wrong=wrong)

    result = verify(tiny_shipped, x, run_dir=tmp_path, tamper=tamper, seed=2)
    assert not result.passed and result.mismatches >= 1
    first = result.report["mismatch_list"][0]
    assert first["sample"] == changed["sample"] == 5 and first["layer"] == "fc1"
    assert first["step"] == changed["step"]
    assert first["kind"] in ("spike", "missing")
    assert str(changed["wrong"]) in first["expected"] or str(changed["neuron"]) in first["got"]
    assert result.waves is not None and result.waves.stat().st_size > 1000
    assert result.waves.suffix in (".fst", ".vcd")


@pytest.mark.skipif(toolchain.find_iverilog() is None, reason="Icarus Verilog (iverilog, vvp) is not installed")
def test_same_testbench_on_icarus(tiny_shipped, tmp_path):
    x = mixed(tiny_shipped, samples=3, seed=4).x
    result = verify(tiny_shipped, x, run_dir=tmp_path, simulator="icarus", seed=4, waves_on_failure=False)
    _check_passed(result)


@pytest.fixture(scope="module")
def fsdd_model():
    if not (FSDD_MODEL / "manifest.json").exists():
        pytest.skip(f"the shipped FSDD model is not at {FSDD_MODEL}")
    from golden.manifest import load
    return load(FSDD_MODEL)


def test_fsdd_samples_through_the_shipped_model(fsdd_model, fsdd_dir, tmp_path):
    from sim.stimulus import fsdd_test_inputs
    stimulus = fsdd_test_inputs(fsdd_model, fsdd_dir, limit=4)
    result = verify(fsdd_model, stimulus.x, names=stimulus.names, run_dir=tmp_path, seed=7)
    _check_passed(result)


def test_command_line_json(tmp_path):
    out = subprocess.run([sys.executable, "-m", "sim", "--model", str(ROOT / "models" / "tiny"), "--samples", "6",
                          "--seed", "5", "--run-dir", str(tmp_path), "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["samples"] == 6 and last["mismatches"] == 0 and last["cycles_median"] > 0
    assert "spike events compared" in out.stdout
    report = json.loads((tmp_path / "sim_report.json").read_text())
    assert report["samples"] == 6 and report["names"][0] == "extreme:zeros"


def test_command_line_refuses_bad_arguments(tmp_path):
    out = subprocess.run([sys.executable, "-m", "sim", "--model", str(tmp_path / "none"), "--samples", "2"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "error:" in out.stderr
    out = subprocess.run([sys.executable, "-m", "sim", "--model", str(ROOT / "models" / "tiny"), "--gap", "1.5"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "--gap must be in [0, 1), not 1.5" in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(300, 308))
def test_more_random_manifests(seed, tmp_path):
    [(model, _)] = random_models(seed, 1, tmp_path / "models")
    x = (extreme_inputs(model) + random_inputs(model, 20, seed)).x
    result = verify(model, x, params=random_params(model, seed), run_dir=tmp_path / "run", seed=seed)
    _check_passed(result)


@pytest.mark.slow
def test_fsdd_test_split_through_the_shipped_model(fsdd_model, fsdd_dir, tmp_path):
    from sim.stimulus import fsdd_test_inputs
    stimulus = extreme_inputs(fsdd_model) + fsdd_test_inputs(fsdd_model, fsdd_dir)
    result = verify(fsdd_model, stimulus.x, names=stimulus.names, run_dir=tmp_path, seed=1)
    _check_passed(result)


@pytest.mark.slow
@pytest.mark.parametrize("seed,dense_first", [(12, False), (14, False), (6, True)])
def test_deep_random_manifests(seed, dense_first, tmp_path):
    """Stacked models (convolutions on spikes with pools, a dense first layer) through the Verilated RTL."""
    from golden.randmodel import random_deep_model
    model = random_deep_model(seed, dense_first=dense_first)
    x = (extreme_inputs(model) + random_inputs(model, 10, seed)).x
    result = verify(model, x, params=random_params(model, seed), run_dir=tmp_path / "run", seed=seed)
    _check_passed(result)


@pytest.mark.parametrize("seed,dense_first,params", [(14, False, {"conv2": {"state": "spram"}}),
                                                    (2, True, {"fc1": {"state": "spram"}})])
def test_membranes_in_spram(seed, dense_first, params, tmp_path):
    """A convolution on spikes and a dense first layer with their membranes in SPRAM, whose simulation model starts
    from garbage (hw.spram.garbage): several samples back to back through the Verilated RTL, 0 mismatches, cycles
    as the cycle model says."""
    from golden.randmodel import random_deep_model
    model = random_deep_model(seed, dense_first=dense_first)
    x = (extreme_inputs(model) + random_inputs(model, 3, seed)).x
    result = verify(model, x, params=params, run_dir=tmp_path / "run", seed=seed)
    _check_passed(result)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fsdd_deep", "fsdd_deep2"])
def test_fsdd_test_split_through_the_deep_model(name, fsdd_dir, tmp_path):
    """models/fsdd_deep and fsdd_deep2 (a convolution on spikes) on the whole FSDD test split: 0 mismatches (about
    6 minutes and 1 minute)."""
    from golden.manifest import load
    from sim.stimulus import fsdd_test_inputs
    path = ROOT / "models" / name
    if not (path / "manifest.json").exists():
        pytest.skip(f"the deep FSDD model is not at {path}")
    model = load(path)
    stimulus = fsdd_test_inputs(model, fsdd_dir)
    result = verify(model, stimulus.x, names=stimulus.names, run_dir=tmp_path, seed=1)
    assert _check_passed(result)["samples"] == 300


def test_deep2_model_on_a_slice_of_the_test_split(fsdd_dir, tmp_path):
    """models/fsdd_deep2 with its default iCEBreaker plan (weights of fc1 and fc2 in SPRAM, their accumulators in
    block RAM, a stride-2 convolution on spikes) on 30 test recordings through the Verilated RTL, random stalls."""
    from golden.manifest import load
    from sim.stimulus import fsdd_test_inputs
    path = ROOT / "models" / "fsdd_deep2"
    if not (path / "manifest.json").exists():
        pytest.skip(f"the deep FSDD model is not at {path}")
    model = load(path)
    stimulus = fsdd_test_inputs(model, fsdd_dir)
    picks = list(range(0, 300, 10))
    result = verify(model, stimulus.x[picks], names=[stimulus.names[i] for i in picks], run_dir=tmp_path, seed=2)
    assert _check_passed(result)["samples"] == 30
