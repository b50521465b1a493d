"""The Python API (``import spikesmith``) and ``python -m spikesmith.classify`` against the golden and cycle models."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spikesmith
from golden.network import run
from golden.randmodel import random_inputs
from hw.cycles import cycles
from hw.plan import plan

from conftest import FSDD

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light():
    code = "import spikesmith, sys; print(sorted(m for m in ('torch', 'amaranth', 'snntorch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_predict_equals_golden_and_cycle_model():
    model = spikesmith.load_model(ROOT / "models" / "tiny")
    x = random_inputs(model, 7, np.random.default_rng(5))
    pred = spikesmith.predict(model, x)
    ref = run(model, x)
    assert np.array_equal(pred.classes, ref.classes) and np.array_equal(pred.readout, ref.readout)
    assert np.array_equal(pred.cycles, cycles(plan(model), ref.spikes).total)
    assert pred.labels == list(model.classes)
    single = spikesmith.predict(model, x[3])
    assert single.classes.tolist() == [ref.classes[3]] and single.cycles[0] == pred.cycles[3]
    assert pred.latency_us(24)[0] == pytest.approx(pred.cycles[0] / 24)


def test_features_refused_for_a_model_without_front_end(tmp_path):
    from train.features import FeatureError
    model = spikesmith.load_model(ROOT / "models" / "tiny")
    with pytest.raises(FeatureError, match="model tiny has no feature front-end"):
        spikesmith.features(tmp_path / "x.wav", model)


@pytest.mark.skipif(not FSDD.is_dir(), reason="FSDD recordings not available")
def test_classify_cli_matches_api():
    wavs = [FSDD / "7_george_0.wav", FSDD / "3_theo_10.wav"]
    out = subprocess.run([sys.executable, "-m", "spikesmith.classify", "--json", *map(str, wavs)],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    model = spikesmith.load_model()
    pred = spikesmith.classify(model, wavs)
    assert [r["class"] for r in rows] == pred.classes.tolist()
    assert [r["readout"] for r in rows] == pred.readout.tolist()
    assert [r["cycles"] for r in rows] == pred.cycles.tolist()
    assert rows[0]["latency_us"] == pytest.approx(pred.cycles[0] / 24, abs=1e-3)


def test_classify_cli_refuses_a_missing_file(tmp_path):
    out = subprocess.run([sys.executable, "-m", "spikesmith.classify", str(tmp_path / "none.wav")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert out.stderr.count("none.wav") == 1 and "Traceback" not in out.stderr


def test_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from train.util import atomic_write_json
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "metrics.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == 0o644


def test_train_options_become_the_trainers_command_line():
    from spikesmith.training import options_to_argv
    from train.trainer import build_parser

    parser = build_parser()
    argv = options_to_argv(parser, {"epochs": 3, "qat_epochs": 1, "hidden": [16, 8], "cmn": True, "resume": False,
                                    "name": None})
    assert argv == ["--epochs", "3", "--qat-epochs", "1", "--hidden", "16", "8", "--cmn"]
    with pytest.raises(TypeError, match=r"unknown option 'epoch' \(known: .*epochs"):
        options_to_argv(parser, {"epoch": 3})


def test_train_refuses_a_bad_value_without_exiting(tmp_path):
    with pytest.raises(ValueError, match="--epochs: invalid int value: 'x'"):
        spikesmith.train(tmp_path / "m", data=tmp_path, epochs="x")
