"""Broken and odd audio files: refused naming the file and the problem, or used with a warning that says how."""

import io
import warnings

import numpy as np
import pytest
import scipy.io.wavfile

from golden.cli import EXIT_BAD_INPUT, run_main
from train import features as ft
from train.features import CroppedWarning, FeatureError, FeatureParams, FeatureWarning


def _speech(seconds=0.4, rate=8000):
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1300 * t)) * np.exp(-3 * t)


def _wav_bytes(x, rate=8000):
    buf = io.BytesIO()
    scipy.io.wavfile.write(buf, rate, x)
    return buf.getvalue()


def _write(path, x, rate=8000):
    path.write_bytes(_wav_bytes(x, rate))
    return path


def _int16(x):
    return np.round(np.asarray(x) * 32767).astype(np.int16)


@pytest.fixture(autouse=True)
def no_raw_scipy_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", scipy.io.wavfile.WavFileWarning)
        yield


def _fitted():
    p = FeatureParams()
    return FeatureParams(**{**p.to_dict(), "mean": [0.0] * p.n_mfcc, "std": [1.0] * p.n_mfcc})


def test_a_header_cut_short_names_the_file(tmp_path):
    f = tmp_path / "cut.wav"
    f.write_bytes(_wav_bytes(_int16(_speech()))[:20])
    with pytest.raises(FeatureError, match=rf"^{f}: not a readable WAV file \(the header is cut short"):
        ft.read_wav(f)


@pytest.mark.parametrize("value,shown", [(np.inf, r"\+inf"), (-np.inf, "-inf"), (np.nan, "NaN")])
def test_nan_and_infinity_are_refused_as_such(tmp_path, value, shown):
    x = _speech().astype(np.float32)
    x[100] = value
    f = _write(tmp_path / "f.wav", x)
    with pytest.raises(FeatureError, match=rf"^{f}: sample 100 is {shown}; audio samples must be finite numbers"):
        ft.extract(f, _fitted())


def test_float_samples_far_beyond_full_scale_are_refused(tmp_path):
    x = _speech().astype(np.float32)
    x[7] = 1e30
    with pytest.raises(FeatureError, match="float sample of magnitude 1e\\+30; audio lies within"):
        ft.read_wav(_write(tmp_path / "f.wav", x))


def test_stereo_in_opposite_phase_uses_one_channel(tmp_path):
    left = _int16(_speech())
    f = _write(tmp_path / "s.wav", np.stack([left, -left], axis=1))
    with pytest.warns(FeatureWarning, match="averaging its 2 channels cancels most of the signal .* channel 0 "
                                            "alone is used"):
        x = ft.read_wav(f)
    assert np.allclose(x, left / 32768)


def test_ordinary_stereo_is_averaged_silently(tmp_path):
    left = _int16(_speech())
    f = _write(tmp_path / "s.wav", np.stack([left, left // 2], axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeatureWarning)
        x = ft.read_wav(f)
    assert np.allclose(x, (left.astype(float) + left // 2) / 2 / 32768)


def test_a_truncated_data_chunk_is_used_with_a_warning(tmp_path):
    data = _wav_bytes(_int16(_speech()))
    f = tmp_path / "t.wav"
    f.write_bytes(data[:len(data) // 2])
    with pytest.warns(FeatureWarning, match=rf"^{f}: the data chunk is truncated \(Reached EOF prematurely; "
                                            r"finished at \d+ bytes, expected \d+ bytes from header\)"):
        x = ft.read_wav(f)
    assert x.size == (len(data) // 2 - 44) // 2


def test_a_recording_longer_than_the_limit_is_refused(tmp_path):
    f = _write(tmp_path / "long.wav", np.zeros(int(8000 * 600), dtype=np.int16))
    with pytest.raises(FeatureError, match=f"^{f}: 600.0 s long; the front-end takes recordings of at most 30 s"):
        ft.read_wav(f)


def test_speech_longer_than_the_window_warns_that_only_the_middle_is_heard(tmp_path):
    f = _write(tmp_path / "l.wav", _int16(np.tile(_speech(0.2), 10)))
    with pytest.warns(CroppedWarning, match=r"l.wav: 2.00 s of speech after trimming silence; the model hears only "
                                            r"the middle 0.49 s \(48 frames\)"):
        ft.raw_features(f, _fitted())
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeatureWarning)
        assert ft.extract(f, _fitted(), warn_crop=False).shape == (1, 16, 48)


def test_one_lsb_of_noise_is_too_quiet_to_be_speech(tmp_path):
    noise = np.random.default_rng(0).integers(-1, 2, 4000).astype(np.int16)
    f = _write(tmp_path / "q.wav", noise)
    with pytest.warns(FeatureWarning, match=r"q.wav: too quiet to be speech: its loudest 25 ms has an RMS level of "
                                            r"-9\d.\d dBFS, below -60 dBFS"):
        ft.raw_features(f, _fitted())


@pytest.mark.parametrize("make,msg", [
    (lambda p: p.mkdir(), "not a regular file"),
    (lambda p: p.write_bytes(b""), "not a readable WAV file"),
    (lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk"), "not a readable WAV file"),
    (lambda p: p.write_bytes(_wav_bytes(np.zeros(0, dtype=np.int16))), "holds no audio samples"),
    (lambda p: p.write_bytes(_wav_bytes(np.zeros(4000, dtype=np.int16))), r"silent \(all samples zero\)"),
])
def test_other_bad_files_name_the_file_and_the_problem(tmp_path, make, msg):
    f = tmp_path / "bad.wav"
    make(f)
    with pytest.raises(FeatureError, match=f"^{f}: .*{msg}"):
        ft.extract(f, _fitted())


@pytest.mark.parametrize("change,msg", [
    ({"n_mfcc": "16"}, "features: n_mfcc must be an integer, not '16'"),
    ({"std": [float("nan")] * 16}, "features: std must be a list of finite numbers"),
    ({"std": "x"}, "features: std must be a list of finite numbers"),
    ({"win_ms": None}, "features: win_ms must be a finite number, not None"),
    ({"cmn": 1}, "features: cmn must be true or false, not 1"),
    ({"sample_rate": 10**9}, "features: sample_rate must be an integer from 1000 to 192000"),
    ({"input_scale": 0.0}, "features: input_scale must be positive"),
    ({"dc_remove": "yes"}, "features: dc_remove must be true or false, not 'yes'"),
    ({"preemph": 1.0}, r"features: preemph must lie in 0 \.\.\. 1 \(1 excluded\), not 1\.0"),
    ({"preemph": True}, "features: preemph must be a finite number, not True"),
    ({"limit": 0.5}, r"features: limit \(the share of samples the limiter clips\) must lie in 0 \.\.\. 0\.5 "
                     r"\(0\.5 excluded\), not 0\.5"),
    ({"limit": -0.1}, r"features: limit .* not -0\.1"),
    ({"limit": "0.1"}, "features: limit must be a finite number, not '0.1'"),
])
def test_feature_parameters_are_typed(change, msg):
    with pytest.raises(FeatureError, match=msg):
        FeatureParams.from_dict({**_fitted().to_dict(), **change})


def test_the_cli_refuses_with_exit_2_and_prints_warnings_as_lines(tmp_path, capsys):
    cut = tmp_path / "cut.wav"
    cut.write_bytes(_wav_bytes(_int16(_speech()))[:20])
    assert run_main(ft.main, [str(cut)]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.startswith(f"error: {cut}: not a readable WAV file")
    quiet = _write(tmp_path / "q.wav", np.random.default_rng(0).integers(-1, 2, 4000).astype(np.int16))
    assert run_main(ft.main, [str(quiet), "--json"]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {quiet}: too quiet to be speech")
