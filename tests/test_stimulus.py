"""The one rule for real inputs (``sim.stimulus.real_inputs``) and the runs ``mixed`` puts together."""

import numpy as np
import pytest

from golden.manifest import load
from sim.stimulus import EXTREMES, mixed, real_inputs

from conftest import FSDD, ROOT


def test_model_vectors_come_before_found_recordings(monkeypatch):
    monkeypatch.setenv("SPIKESMITH_DATA", "/nonexistent/recordings")  # found, but the vectors win
    model = load(ROOT / "models" / "fsdd_scnn")
    stimulus = real_inputs(model, limit=7)
    assert len(stimulus) == 7 and stimulus.source.startswith("7 test vectors of model fsdd_scnn")
    assert stimulus.labels.tolist() == model.test_vectors.y[np.linspace(0, 299, 7).round().astype(int)].tolist()


def test_no_real_inputs_for_a_model_without_vectors_or_front_end(monkeypatch, tmp_path):
    monkeypatch.delenv("SPIKESMITH_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert real_inputs(load(ROOT / "models" / "tiny")) is None
    run = mixed(load(ROOT / "models" / "tiny"), samples=8, seed=3)
    assert run.source == "5 extreme maps, then 3 random INT8 maps (seed 3)"


@pytest.mark.skipif(not FSDD.is_dir(), reason="FSDD recordings not available")
def test_explicit_data_wins_and_is_refused_when_unused():
    model = load(ROOT / "models" / "fsdd_scnn")
    run = mixed(model, samples=9, data_dir=FSDD)
    assert run.names[:len(EXTREMES)] == [f"extreme:{name}" for name in EXTREMES]
    assert run.source == f"5 extreme maps, then 4 FSDD test recordings from {FSDD}"
    assert all(name.startswith("fsdd:") for name in run.names[5:])
    # the recordings give the same maps as the vectors the model carries
    by_name = dict(zip(model.test_vectors.names, model.test_vectors.x))
    for name, x in zip(run.names[5:], run.x[5:]):
        assert np.array_equal(by_name[name[len("fsdd:"):] + ".wav"], x)
    with pytest.raises(ValueError, match=r"--data .* would not be used: 5 samples are all taken by the 5 extreme "
                                         r"maps"):
        mixed(model, samples=5, data_dir=FSDD)
