"""Tests of the MFCC front-end (train/features.py): determinism, parameters, quantization and error paths."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import scipy.io.wavfile

from golden.cli import EXIT_BAD_INPUT, run_main
from train import features as ft
from train.features import FeatureError, FeatureParams
from conftest import FSDD

DATA = FSDD


def _tone(rate=8000, seconds=0.5, pad=0.0, seed=0):
    """A decaying two-tone burst with a little noise, optionally between stretches of silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 1210 * t)) * np.exp(-3 * t)
    x = x + 0.01 * rng.standard_normal(x.size)
    z = np.zeros(int(rate * pad))
    return np.concatenate([z, x, z])


def _write(path, x, rate=8000):
    scipy.io.wavfile.write(path, rate, np.round(np.asarray(x) * 32767).astype(np.int16))
    return path


def _fitted(p=None):
    p = p or FeatureParams()
    return FeatureParams(**{**p.to_dict(), "mean": [0.0] * p.n_mfcc, "std": [1.0] * p.n_mfcc})


def test_extract_is_deterministic_and_shaped(tmp_path):
    f = _write(tmp_path / "a.wav", _tone())
    p = _fitted()
    a, b = ft.extract(f, p), ft.extract(f, p)
    assert a.dtype == np.int8 and a.shape == (1, 16, 48)
    assert np.array_equal(a, b)
    assert a.min() >= -127 and a.max() <= 127
    assert np.any(a != 0)


@pytest.mark.skipif(not DATA.is_dir(), reason=f"FSDD recordings not found at {DATA}")
def test_real_file_is_deterministic():
    p = _fitted()
    f = DATA / "7_jackson_3.wav"
    assert np.array_equal(ft.extract(f, p), ft.extract(f, p))


def test_params_round_trip_through_manifest_dict():
    p = _fitted(FeatureParams(frames=40, trim_db=30.0))
    d = json.loads(json.dumps(p.to_dict()))
    q = FeatureParams.from_dict(d)
    assert q == p
    assert q.map_shape == (1, 16, 40)


def test_params_refuse_bad_values():
    with pytest.raises(FeatureError, match="unknown field"):
        FeatureParams.from_dict({**FeatureParams().to_dict(), "dither": 1})
    with pytest.raises(FeatureError, match="no 'features' object"):
        FeatureParams.from_dict(None)
    with pytest.raises(FeatureError, match="kind 'cqt' is not supported"):
        FeatureParams(kind="cqt")
    with pytest.raises(FeatureError, match="mean has 3 values, n_mfcc is 16"):
        FeatureParams(mean=[0.0] * 3, std=[1.0] * 16)
    with pytest.raises(FeatureError, match="n_mfcc 40 must be 1 ... n_mels"):
        FeatureParams(n_mfcc=40)
    with pytest.raises(FeatureError, match="not fitted"):
        ft.finalize(np.zeros((10, 16)), FeatureParams())


def test_quantize_rounds_and_clips():
    p = FeatureParams()
    x = np.array([0.0, 1 / 64, 3 / 64, -1 / 32, 10.0, -10.0, 127.4 / 32])
    assert ft.quantize(x, p).tolist() == [0, 0, 2, -1, 127, -127, 127]


@pytest.mark.filterwarnings("ignore::train.features.CroppedWarning")
def test_silence_is_trimmed(tmp_path):
    p = FeatureParams()
    plain = ft.raw_features(_write(tmp_path / "a.wav", _tone()), p)
    padded = ft.raw_features(_write(tmp_path / "b.wav", _tone(pad=0.3)), p)
    assert abs(plain.shape[0] - padded.shape[0]) <= 1


@pytest.mark.filterwarnings("ignore::train.features.CroppedWarning")
def test_centre_crop_and_pad(tmp_path):
    p = _fitted()
    long = ft.raw_features(_write(tmp_path / "l.wav", np.tile(_tone(seconds=0.2), 6)), p)
    assert long.shape == (48, 16)
    short = ft.finalize(np.ones((10, 16)), p)[0]
    assert short.shape == (16, 48)
    assert np.all(short[:, :19] == 0) and np.all(short[:, 19:29] == 1) and np.all(short[:, 29:] == 0)


def test_other_sample_rate_is_resampled(tmp_path):
    x8 = _tone()
    x16 = np.interp(np.arange(2 * x8.size) / 2, np.arange(x8.size), x8)
    f = _write(tmp_path / "w16.wav", x16, rate=16000)
    y = ft.read_wav(f, 8000)
    assert y.size == x8.size
    assert ft.extract(f, _fitted()).shape == (1, 16, 48)


def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not a RIFF file at all")
    with pytest.raises(FeatureError, match="bad.wav: not a readable WAV file"):
        ft.extract(bad, _fitted())
    with pytest.raises(FeatureError, match="missing.wav: no such file"):
        ft.extract(tmp_path / "missing.wav", _fitted())


def test_empty_short_and_silent_audio(tmp_path):
    with pytest.raises(FeatureError, match="holds no audio samples"):
        ft.extract(_write(tmp_path / "e.wav", np.zeros(0)), _fitted())
    with pytest.raises(FeatureError, match="150 samples is shorter than one 25 ms analysis window \\(200 samples"):
        ft.extract(_write(tmp_path / "s.wav", _tone()[:150]), _fitted())
    with pytest.raises(FeatureError, match="silent"):
        ft.extract(_write(tmp_path / "z.wav", np.zeros(4000)), _fitted())


def test_cli_prints_and_saves_map(tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree("models/fsdd_scnn", model)
    doc = json.loads((model / "manifest.json").read_text())
    doc["features"] = _fitted().to_dict()
    (model / "manifest.json").write_text(json.dumps(doc))
    wav = _write(tmp_path / "a.wav", _tone())
    out = tmp_path / "a.npy"
    assert ft.main([str(wav), "--model", str(model), "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = np.load(out)
    assert saved.dtype == np.int8 and saved.shape == (1, 1, 16, 48)
    assert np.array_equal(np.array(printed), saved[0])
    assert ft.main([str(wav), "--model", str(model), "--out", str(out)]) == 0  # --out alone: a line, not the map
    assert capsys.readouterr().out == (f"{out}: input map of shape (1, 16, 48) (int8, min {saved.min()}, max "
                                       f"{saved.max()}); python -m golden --model {model} --input {out} runs it\n")
    assert run_main(ft.main, [str(tmp_path / "nope.wav"), "--model", str(model)]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.wav'}: no such file\n"


def test_cepstral_mean_normalization(tmp_path):
    f = _write(tmp_path / "a.wav", _tone())
    plain = ft.raw_features(f, FeatureParams())
    cmn = ft.raw_features(f, FeatureParams(cmn=True))
    assert np.allclose(cmn.mean(axis=0), 0, atol=1e-9)
    assert np.allclose(cmn, plain - plain.mean(axis=0))
    old = {k: v for k, v in FeatureParams().to_dict().items() if k != "cmn"}
    assert FeatureParams.from_dict(old).cmn is False


def test_dc_removal_makes_an_offset_invisible(tmp_path):
    x = _tone(pad=0.2)
    p = FeatureParams(dc_remove=True, frames=200)
    clean = ft.audio_features(x, p)
    shifted = ft.audio_features(x + 0.1, p)
    assert shifted.shape == clean.shape
    assert np.allclose(shifted, clean, atol=1e-6)
    # without it the offset keeps the silence from being trimmed: the map changes
    plain = FeatureParams(frames=200)
    assert ft.audio_features(x + 0.1, plain).shape[0] > ft.audio_features(x, plain).shape[0]
    with pytest.raises(FeatureError, match=r"^a\.wav: the audio is silent \(all samples equal: a constant DC offset"):
        ft.audio_features(np.full(4000, 0.2), p, name="a.wav")


def test_pre_emphasis_is_the_first_difference_filter():
    x = _tone()
    y = ft.condition(x, FeatureParams(preemph=0.97))
    assert y[0] == x[0] and np.allclose(y[1:], x[1:] - 0.97 * x[:-1])
    assert ft.condition(x, FeatureParams()) is x
    # applied after the DC removal: an offset still vanishes
    z = ft.condition(x + 0.25, FeatureParams(preemph=0.5, dc_remove=True))
    assert np.allclose(z, ft.condition(x, FeatureParams(preemph=0.5, dc_remove=True)))


def _speechlike(n=8000, seed=0):
    """Half a second of silence around a second of a decaying vowel-like sound with noise: a high crest factor."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000
    voiced = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((140, 280, 700, 1150, 2400), 1))
    x = 0.3 * np.exp(-2.5 * t) * voiced + 0.01 * rng.standard_normal(n)
    return np.concatenate([np.zeros(2000), x, np.zeros(2000)])


@pytest.mark.parametrize("gain", [3.0, 8.0])
def test_the_limiter_makes_milder_saturation_give_the_clean_map(gain):
    x = _speechlike()
    saturated = np.clip(gain * x, -1.0, 1.0)
    share = float(np.mean(np.abs(saturated) >= 1.0))
    assert 0.0 < share < 0.15
    p = FeatureParams(cmn=True, kind="logmel", n_mels=16, n_mfcc=16, frames=120, limit=0.15)
    clean = ft.audio_features(x, p)
    assert clean.shape == ft.audio_features(saturated, p).shape
    assert np.allclose(ft.audio_features(saturated, p), clean, atol=1e-9)
    # without the limiter the saturation changes the map
    plain = dataclasses.replace(p, limit=0.0)
    assert not np.allclose(ft.audio_features(saturated, plain), ft.audio_features(x, plain), atol=1e-2)
    # the limiter clips exactly that share of all the samples, the silence included
    y = ft.condition(x, p)
    assert np.mean(np.abs(y) >= np.abs(y).max()) == pytest.approx(0.15, abs=1e-3)


def test_the_limiter_leaves_a_mostly_silent_recording_alone():
    x = np.zeros(8000)
    x[100:400] = 0.5 * np.sin(np.arange(300) / 3)
    assert np.array_equal(ft.condition(x, FeatureParams(limit=0.2)), x)


def test_cmn_makes_the_map_independent_of_the_level():
    x = _tone(pad=0.2)
    p = FeatureParams(cmn=True, dc_remove=True)
    assert np.allclose(ft.audio_features(0.1 * x, p), ft.audio_features(x, p), atol=1e-6)


def test_manifests_without_the_new_fields_make_their_old_maps(tmp_path):
    f = _write(tmp_path / "a.wav", _tone(pad=0.3))
    old = {k: v for k, v in _fitted().to_dict().items() if k not in ("cmn", "dc_remove", "preemph", "limit")}
    p = FeatureParams.from_dict(old)
    assert (p.cmn, p.dc_remove, p.preemph, p.limit) == (False, False, 0.0, 0.0)
    # the first front-end, written out: no conditioning of the samples at all
    x = ft.read_wav(f)
    assert ft.condition(x, p) is x
    assert np.array_equal(ft.extract(f, p), ft.extract(f, _fitted()))


@pytest.mark.skipif(not (Path(__file__).resolve().parents[1] / "models" / "fsdd_scnn").is_dir(),
                    reason="no shipped model")
def test_the_shipped_models_maps_are_unchanged():
    """The shipped model's test vectors were made by the first front-end: its manifest still makes them."""
    import golden.manifest as gm
    model = gm.load(Path(__file__).resolve().parents[1] / "models" / "fsdd_scnn")
    if model.test_vectors is None or not DATA.is_dir():
        pytest.skip("no test vectors or no FSDD")
    vectors = model.test_vectors
    p = FeatureParams.from_dict(model.features)
    assert (p.cmn, p.dc_remove, p.preemph) == (False, False, 0.0)
    for k in range(0, len(vectors), 37):
        assert np.array_equal(ft.extract(DATA / vectors.names[k], p, warn_crop=False), vectors.x[k])


# -- per-utterance variance normalization (CMVN) and the VTLP warp ---------------------------------------------

def _cmvn(**kw):
    return FeatureParams(win_ms=32.0, hop_ms=16.0, dc_remove=True, cmn=True, cvn=True, **kw)


def test_cmvn_gives_every_coefficient_zero_mean_and_unit_spread():
    c = ft.audio_features(_tone(pad=0.2), _cmvn())
    assert np.allclose(c.mean(axis=0), 0, atol=1e-9)
    assert np.allclose(c.std(axis=0), 1, atol=1e-9)
    plain = ft.audio_features(_tone(pad=0.2), FeatureParams(win_ms=32.0, hop_ms=16.0, dc_remove=True, cmn=True))
    assert np.allclose(c, plain / plain.std(axis=0))


@pytest.mark.parametrize("gain", [0.05, 0.3, 1.7])
def test_cmvn_features_do_not_depend_on_the_gain(gain):
    x = _tone(pad=0.2)
    p = _cmvn()
    assert np.allclose(ft.audio_features(gain * x, p), ft.audio_features(x, p), atol=1e-6)
    q = _fitted(p)
    assert np.array_equal(ft.extract_audio(gain * x, q), ft.extract_audio(x, q))


@pytest.mark.skipif(not DATA.is_dir(), reason=f"FSDD recordings not found at {DATA}")
def test_cmvn_features_of_a_recording_do_not_depend_on_the_gain():
    # a boost short of clipping (peak 0.51); an attenuation would bring stretches of digital silence in this
    # recording to the log's floor (1e-10), where no front-end of log energies is level-independent
    x = ft.read_wav(DATA / "3_george_7.wav")
    p = _cmvn()
    assert np.allclose(ft.audio_features(1.9 * x, p), ft.audio_features(x, p), atol=1e-9)
    q = _fitted(p)
    assert np.array_equal(ft.extract_audio(1.9 * x, q), ft.extract_audio(x, q))


def test_cvn_floor_keeps_a_still_coefficient_finite():
    # one frame: every deviation is zero, the floor keeps the (zero) coefficients finite
    one = ft.audio_features(_tone(seconds=0.04), _cmvn(frames=1))
    assert one.shape == (1, 16) and np.all(one == 0)
    x = _tone(pad=0.2)
    raw = ft.audio_features(x, FeatureParams(win_ms=32.0, hop_ms=16.0, dc_remove=True, cmn=True))
    big = float(raw.std(axis=0).max()) * 2
    floored = ft.audio_features(x, _cmvn(cvn_floor=big))
    assert np.allclose(floored, raw / big)


def test_cvn_is_checked_and_round_trips_through_the_manifest():
    with pytest.raises(FeatureError, match=r"^features: cvn \(per-utterance variance normalization\) needs cmn "
                                           r"\(the mean first\)$"):
        FeatureParams(cvn=True)
    with pytest.raises(FeatureError, match=r"^features: cvn_floor must be positive, not 0\.0$"):
        _cmvn(cvn_floor=0.0)
    with pytest.raises(FeatureError, match=r"^features: cvn must be true or false, not 1$"):
        FeatureParams.from_dict({**_cmvn().to_dict(), "cvn": 1})
    p = _fitted(_cmvn(cvn_floor=0.25))
    d = json.loads(json.dumps(p.to_dict()))
    assert (d["cvn"], d["cvn_floor"]) == (True, 0.25)
    assert FeatureParams.from_dict(d) == p
    old = {k: v for k, v in p.to_dict().items() if k not in ("cvn", "cvn_floor")}
    assert (FeatureParams.from_dict(old).cvn, FeatureParams.from_dict(old).cvn_floor) == (False, 0.1)


def test_the_cli_and_the_host_make_the_cmvn_map_of_the_manifest(tmp_path, capsys):
    """`python -m train.features` and `boards.host` read the same manifest object and make the same CMVN map."""
    import golden.manifest as gm
    from boards.host import _features_of
    from golden.randmodel import random_model
    wav = _write(tmp_path / "a.wav", _tone(pad=0.2))
    p = _fitted(_cmvn(cvn_floor=0.2))
    model = random_model(1)
    model = gm.Model(**{**model.__dict__, "features": p.to_dict()})
    gm.save(model, tmp_path / "m")
    loaded = FeatureParams.from_dict(gm.load(tmp_path / "m").features)
    assert loaded.cvn and loaded.cvn_floor == 0.2
    want = ft.extract(wav, p)
    assert ft.main([str(wav), "--model", str(tmp_path / "m"), "--json"]) == 0
    assert np.array_equal(np.array(json.loads(capsys.readouterr().out)), want)
    maps, refused = _features_of([wav], loaded)
    assert not refused and np.array_equal(maps[wav], want)
    # without cvn the map differs: the field is used, not ignored
    assert not np.array_equal(ft.extract(wav, _fitted(FeatureParams(win_ms=32.0, hop_ms=16.0, dc_remove=True,
                                                                    cmn=True))), want)


def test_vtlp_warp_of_one_is_the_identity():
    f = np.linspace(0, 4000, 129)
    assert np.array_equal(ft.vtlp_warp(f, 1.0, 0.0, 4000.0), f)
    p = FeatureParams()
    assert np.array_equal(ft.mel_filterbank(p, 1.0), ft.mel_filterbank(p))
    x = _tone(pad=0.2)
    assert np.array_equal(ft.audio_features(x, p, warp=1.0), ft.audio_features(x, p))


@pytest.mark.parametrize("alpha", [0.9, 0.95, 1.05, 1.1])
def test_vtlp_warp_keeps_the_band_edges_and_is_increasing(alpha):
    f = np.linspace(0, 4000, 1001)
    w = ft.vtlp_warp(f, alpha, 0.0, 4000.0)
    assert w[0] == 0.0 and w[-1] == pytest.approx(4000.0)
    assert np.all(np.diff(w) > 0)
    assert w[100] == pytest.approx(alpha * f[100])  # the low part is scaled by alpha
    # outside fmin ... fmax nothing moves
    g = ft.vtlp_warp(np.array([50.0, 3900.0]), alpha, 100.0, 3800.0)
    assert np.array_equal(g, [50.0, 3900.0])
    with pytest.raises(ValueError, match=r"^VTLP warp factor must be positive, not 0\.0$"):
        ft.vtlp_warp(f, 0.0, 0.0, 4000.0)


def _centroid(x, p, warp):
    """Energy-weighted mean mel channel of audio ``x``."""
    spectrum = np.abs(np.fft.rfft(x[:p.n_fft] * np.hamming(p.n_fft))) ** 2
    energy = ft.mel_filterbank(p, warp) @ spectrum
    return float((np.arange(p.n_mels) * energy).sum() / energy.sum())


def test_a_warped_filterbank_moves_energy_the_right_way():
    """alpha > 1 moves a formant up (into higher mel filters), as a shorter vocal tract does; alpha < 1 down."""
    p = FeatureParams()
    t = np.arange(p.n_fft) / p.sample_rate
    for hz in (500.0, 1200.0, 2500.0):
        x = np.sin(2 * np.pi * hz * t)
        base = _centroid(x, p, 1.0)
        assert _centroid(x, p, 1.1) > base + 0.3
        assert _centroid(x, p, 0.9) < base - 0.3
        # the same as the filterbank of the tone at alpha * hz, on the scaled part of the band
        moved = np.sin(2 * np.pi * 1.1 * hz * t)
        assert _centroid(x, p, 1.1) == pytest.approx(_centroid(moved, p, 1.0), abs=0.3)


def test_logmel_is_the_mfcc_before_its_dct():
    x = _tone(pad=0.2)
    lm = FeatureParams(kind="logmel", n_mels=16, n_mfcc=16)
    full = FeatureParams(n_mels=16, n_mfcc=16)
    energies = ft.audio_features(x, lm)
    assert energies.shape[1] == 16 and lm.map_shape == (1, 16, 48)
    assert np.allclose(scipy.fft.dct(energies, type=2, norm="ortho", axis=1), ft.audio_features(x, full))
    # the band that holds the 440 Hz tone is louder than the bands around 3 kHz
    band = np.argmax(ft.mel_filterbank(lm)[:, round(440 / 31.25)])
    assert energies[:, band].mean() > energies[:, -2].mean() + 5
    # CMVN per band: every row has zero mean and unit spread over the utterance
    c = ft.audio_features(x, FeatureParams(kind="logmel", n_mels=16, n_mfcc=16, cmn=True, cvn=True))
    assert np.allclose(c.mean(axis=0), 0, atol=1e-9) and np.allclose(c.std(axis=0), 1, atol=1e-9)


def test_logmel_is_checked_and_round_trips():
    with pytest.raises(FeatureError, match=r"^features: kind 'logmel' keeps every mel band as a row of the map: "
                                           r"n_mfcc \(16\) must equal n_mels \(32\)$"):
        FeatureParams(kind="logmel")
    with pytest.raises(FeatureError, match=r"^features: kind 'lpc' is not supported \(known: 'mfcc', 'logmel'\)$"):
        FeatureParams(kind="lpc")
    p = _fitted(FeatureParams(kind="logmel", n_mels=16, n_mfcc=16, cmn=True))
    assert FeatureParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_stretch_frames_interpolates_linearly_and_keeps_the_ends():
    ramp = np.arange(10.0)[:, None] * np.array([[1.0, -2.0]])
    out = ft.stretch_frames(ramp, 37)
    assert out.shape == (37, 2)
    assert np.allclose(out[:, 0], np.linspace(0, 9, 37)) and np.allclose(out[:, 1], -2 * np.linspace(0, 9, 37))
    assert ft.stretch_frames(ramp, 10) is ramp
    assert np.allclose(ft.stretch_frames(ramp, 4)[:, 0], [0, 3, 6, 9])   # squeezed, not cropped
    assert np.array_equal(ft.stretch_frames(np.array([[2.0, 5.0]]), 3), [[2, 5]] * 3)
    assert np.array_equal(ft.stretch_frames(ramp, 1), ramp[:1])


def test_stretch_fills_the_window_whatever_the_length(tmp_path):
    """With ``stretch`` a long utterance is squeezed without a warning and a short one fills the window: the map
    of speech spoken at two rates is nearly the same."""
    import warnings
    p = _fitted(FeatureParams(stretch=True, cmn=True, dc_remove=True, win_ms=32.0, hop_ms=16.0))
    long = _write(tmp_path / "long.wav", np.tile(_tone(seconds=0.2), 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ft.FeatureWarning)
        assert ft.raw_features(long, p).shape == (48, 16)
    short = ft.extract(_write(tmp_path / "s.wav", _tone(seconds=0.3)), p)[0]
    assert np.count_nonzero(np.all(short == 0, axis=0)) == 0          # no padded frame
    plain = ft.extract(_write(tmp_path / "p.wav", _tone(seconds=0.3)), _fitted(FeatureParams(cmn=True)))[0]
    assert np.count_nonzero(np.all(plain == 0, axis=0)) > 10          # the same tone padded without stretch
    assert FeatureParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(FeatureError, match="features: stretch must be true or false, not 1"):
        FeatureParams(stretch=1)
