"""Audio perturbations (exact SNR, offsets, clipping, 8-bit PCM, pitch kept or changed) and the robustness bench."""

import json

import numpy as np
import pytest

from train import perturb
from train.robustness import CONDITIONS, main

from conftest import FSDD

RATE = 8000


def tone(freq, seconds=0.5, amp=0.3):
    t = np.arange(int(RATE * seconds)) / RATE
    return amp * np.sin(2 * np.pi * freq * t)


def peak_hz(x):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.argmax(spectrum) * RATE / x.size


@pytest.mark.parametrize("make", [perturb.white, perturb.pink, perturb.brown])
@pytest.mark.parametrize("snr", [20, 10, 0, -5])
def test_noise_is_mixed_at_the_requested_snr(make, snr):
    x = tone(440)
    rng = np.random.default_rng(1)
    y = perturb.add_noise(x, make(x.size, rng), snr)
    assert 10 * np.log10(perturb.power(x) / perturb.power(y - x)) == pytest.approx(snr, abs=1e-9)


def test_noise_colours_have_their_slopes():
    rng = np.random.default_rng(2)
    low, high = [], []
    for make in (perturb.white, perturb.pink, perturb.brown):
        spectrum = np.abs(np.fft.rfft(make(1 << 16, rng))) ** 2
        low.append(spectrum[10:100].mean())
        high.append(spectrum[10_000:20_000].mean())
    ratios = [lo / hi for lo, hi in zip(low, high)]
    assert ratios[0] < 2 < 20 < ratios[1] < ratios[2]


def test_babble_uses_the_talkers_at_the_snr():
    x = tone(300)
    talkers = [tone(700 + 100 * k, seconds=0.2 + 0.1 * k) for k in range(5)]
    y = perturb.babble(x, talkers, 10, np.random.default_rng(3), count=3)
    assert 10 * np.log10(perturb.power(x) / perturb.power(y - x)) == pytest.approx(10, abs=1e-9)
    with pytest.raises(ValueError, match="at least one other recording"):
        perturb.babble(x, [], 10, np.random.default_rng(3))


def test_silent_audio_has_no_snr():
    with pytest.raises(ValueError, match="audio is silent"):
        perturb.add_noise(np.zeros(100), np.ones(100), 10)


def test_recording_chain_models():
    x = tone(200, amp=0.5)
    assert perturb.dc_offset(x, 0.1).mean() == pytest.approx(x.mean() + 0.1, abs=1e-3)
    loud = perturb.gain(x, 10.0)
    assert loud.max() == perturb.PCM16_MAX and loud.min() == -1.0
    assert np.all(np.round(loud * 32768) == loud * 32768)
    assert np.array_equal(perturb.gain(x, 10.0, clip=False), 10 * x)
    q = perturb.pcm8(x)
    assert len(np.unique(q)) <= 256 and np.abs(q - x).max() <= 1 / 256 + 1e-12


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_time_stretch_keeps_the_pitch_and_speed_does_not(rate):
    x = tone(500, seconds=1.0)
    y = perturb.time_stretch(x, rate, RATE)
    assert abs(y.size - x.size / rate) <= 1
    assert peak_hz(y) == pytest.approx(500, abs=8)
    z = perturb.speed(x, rate)
    assert abs(z.size - x.size / rate) <= 2
    assert peak_hz(z) == pytest.approx(500 * rate, abs=8)


def _decay_seconds(rir, drop_db=30.0):
    """Time for the impulse response's remaining energy (Schroeder integral) to fall by ``drop_db``."""
    e = np.cumsum(rir[::-1] ** 2)[::-1]
    return np.argmax(10 * np.log10(e / e[0] + 1e-30) < -drop_db) / RATE


def test_simulated_rooms_are_seeded_start_at_the_direct_sound_and_ring_longer_when_asked():
    rooms = {t: [perturb.room_impulse_response(t, np.random.default_rng([k, 1])) for k in range(4)]
             for t in (0.2, 1.0)}
    again = perturb.room_impulse_response(1.0, np.random.default_rng([0, 1]))
    assert np.array_equal(rooms[1.0][0], again)
    for rirs in rooms.values():
        assert all(np.argmax(np.abs(r)) == 0 for r in rirs)
    assert np.median([_decay_seconds(r) for r in rooms[0.2]]) < 0.5 * np.median([_decay_seconds(r)
                                                                                   for r in rooms[1.0]])
    with pytest.raises(ValueError, match=r"^reverberation time must be 0\.05 \.\.\. 3 s, not 5\.0$"):
        perturb.room_impulse_response(5.0, np.random.default_rng(0))


def test_reverb_adds_the_tail_and_keeps_the_power():
    x = tone(300, amp=0.4)
    rir = perturb.room_impulse_response(0.6, np.random.default_rng(2))
    y = perturb.reverb(x, rir)
    assert y.size == x.size + rir.size - 1
    assert perturb.power(y) == pytest.approx(perturb.power(x))
    assert np.array_equal(perturb.reverb(x, np.array([1.0])), x)
    assert np.abs(y[x.size:]).max() > 0  # the room rings on after the talker stops


def test_conditions_are_named_once():
    names = [c.name for c in CONDITIONS]
    assert len(names) == len(set(names)) and names[0] == "clean"


@pytest.mark.skipif(not FSDD.is_dir(), reason="FSDD recordings not available")
def test_bench_clean_equals_the_golden_accuracy_and_repeats(tmp_path, capsys):
    from golden.manifest import load
    from golden.network import run
    from train.features import FeatureParams, extract
    from train.fsdd import list_recordings

    # 40 of one speaker's recordings keep the run short
    argv = ["--model", "models/fsdd_scnn", "--data", str(FSDD), "--split", "speaker:theo", "--limit", "40",
            "--json", "--quiet"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[-1])
    model = load("models/fsdd_scnn")
    params = FeatureParams.from_dict(model.features)
    recs = [r for r in list_recordings(FSDD) if r.speaker == "theo"]
    recs = [recs[i] for i in np.linspace(0, len(recs) - 1, 40).round().astype(int)]
    classes = run(model, np.stack([extract(r.path, params) for r in recs])).classes
    clean = first["conditions"][0]
    assert clean["name"] == "clean" and clean["samples"] == len(recs) == 40
    assert clean["correct"] == int(np.sum(classes == [r.digit for r in recs]))
    assert all(row["failed"] == 0 for row in first["conditions"])
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == first


def test_bench_refuses_a_model_without_audio_front_end(capsys):
    assert main(["--model", "models/tiny", "--data", "nowhere", "--quiet"]) == 2
    assert "model tiny has no feature front-end" in capsys.readouterr().err


def test_bench_without_pyroomacoustics_is_refused_before_any_work(monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyroomacoustics" else real(name, *a))
    assert main(["--model", "models/tiny", "--data", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "pyroomacoustics, which is not installed: pip install -e '.[train]'" in err
