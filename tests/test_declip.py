"""The declipper (train/declip.py) and the front-end's ``declip`` field."""

import dataclasses

import numpy as np
import pytest

from train import declip as dc
from train import features as ft
from train.perturb import PCM16_MAX, gain as _saturate
from train.features import FeatureError, FeatureParams
from conftest import FSDD


def _voiced(n=6000, seed=0):
    """A vowel-like sound: harmonics of a wandering 120-180 Hz pitch with formant-like weights, and a little
    noise, between stretches of near silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000
    f0 = 150 + 30 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 8000
    weights = {1: 1.0, 2: 0.8, 4: 0.6, 5: 0.5, 8: 0.3, 15: 0.15}
    x = sum(w * np.sin(k * phase + k) for k, w in weights.items())
    env = np.clip(np.sin(np.pi * t / t[-1]) * 1.5, 0, 1)
    x = 0.3 * env * x / np.abs(x).max() + 1e-3 * rng.standard_normal(n)
    return np.concatenate([1e-3 * rng.standard_normal(1000), x, 1e-3 * rng.standard_normal(1000)])


def test_a_clean_recording_is_left_exactly_as_it_is():
    x = _voiced()
    assert not dc.clipped(x).any()
    assert dc.declip(x) is not None and np.array_equal(dc.declip(x), x)
    # coarse quantization repeats the peak value, but the amplitudes still thin out towards it
    q = np.round(x * 128 * 8) / 128
    assert not dc.clipped(q).any()


@pytest.mark.parametrize("gain, share, better", [(4.0, 0.08, 0.5), (6.0, 0.2, 0.75)])
def test_saturated_peaks_are_found_and_brought_closer_to_the_truth(gain, share, better):
    x = _voiced()
    y = _saturate(x, gain)
    truth = gain * x
    mask = dc.clipped(y)
    # every sample beyond full scale is found, and only samples at the rails
    assert np.all(mask[(truth >= PCM16_MAX) | (truth <= -1.0)])
    assert np.all((y[mask] == PCM16_MAX) | (y[mask] == -1.0))
    assert mask.mean() == pytest.approx(share, abs=0.02)
    z = dc.declip(y)
    # the estimates lie beyond their rails, the other samples are untouched
    assert np.all(np.abs(z[mask]) >= np.abs(y[mask]))
    assert np.array_equal(z[~mask], y[~mask])
    # closer to the unclipped waveform (the squared error at most `better` of the clipped one's)
    assert np.sum((z - truth) ** 2) < better * np.sum((y - truth) ** 2)


def test_declipping_brings_the_map_back_towards_the_clean_one():
    x = _voiced()
    p = FeatureParams(cmn=True, dc_remove=True, kind="logmel", n_mels=16, n_mfcc=16, frames=100)
    d = dataclasses.replace(p, declip=True)
    y = _saturate(x, 4.0)
    clean = ft.audio_features(x, p)
    assert np.array_equal(ft.audio_features(x, d), clean)  # nothing to declip: the same map
    off = np.abs(ft.audio_features(y, p) - clean).mean()
    on = np.abs(ft.audio_features(y, d) - clean).mean()
    assert on < 0.6 * off


def test_declip_gives_up_when_most_samples_sit_at_the_rails():
    x = np.sign(np.sin(np.arange(4000) / 5.0)) * 0.5  # a square wave: all rails
    assert np.array_equal(dc.declip(x), x)
    assert np.array_equal(dc.declip(np.zeros(100)), np.zeros(100))
    assert dc.declip(np.zeros(0)).size == 0


def test_a_short_clipped_stretch_at_the_edge_stays_finite():
    x = np.concatenate([np.full(5, 0.999969482421875), 0.5 * np.sin(np.arange(50) / 2.0), np.full(6, -1.0)])
    z = dc.declip(x)
    assert np.all(np.isfinite(z))
    assert np.all(np.abs(z) >= np.minimum(np.abs(x), 0.5) - 1e-12)


def test_the_declip_field_is_checked_and_old_manifests_read_false():
    with pytest.raises(FeatureError, match="^features: declip must be true or false, not 1$"):
        FeatureParams(declip=1)
    d = FeatureParams().to_dict()
    assert d["declip"] is False
    del d["declip"]
    assert FeatureParams.from_dict(d).declip is False


@pytest.mark.skipif(not FSDD.is_dir(), reason="FSDD recordings not available")
def test_few_fsdd_recordings_count_as_clipped_as_they_are():
    paths = sorted(FSDD.glob("*.wav"))[::10]
    flagged = sum(bool(dc.clipped(ft.read_wav(f)).any()) for f in paths)
    saturated = [_saturate(ft.read_wav(f), 10.0) for f in paths]
    found = sum(bool(dc.clipped(y).any()) for y in saturated if np.count_nonzero(np.abs(y) >= PCM16_MAX) >= 8)
    hard = sum(np.count_nonzero(np.abs(y) >= PCM16_MAX) >= 8 for y in saturated)
    assert flagged <= 0.02 * len(paths)
    assert found >= 0.9 * hard > 0


def test_a_recording_clipped_all_through_is_declipped_in_seconds():
    """30 s (the front-end's longest) of a tone clipped on a third of its samples: one stretch of 240,000 samples,
    whose banded system is solved in seconds (a full autocorrelation took about a minute)."""
    import time
    t = np.arange(240_000) / 8000
    x = np.clip(1.2 * np.sin(2 * np.pi * 150 * t), -1.0, PCM16_MAX)
    start = time.perf_counter()
    z = dc.declip(x)
    assert time.perf_counter() - start < 30.0  # a bound on a hang, not a speed target
    assert np.abs(z).max() == pytest.approx(1.2, abs=0.05)
