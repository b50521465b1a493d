"""MFCC (or log-mel) feature front-end: from a WAV file to the INT8 input map the hardware receives.

The front-end is deterministic NumPy/SciPy code with every parameter held in one dataclass,
:class:`FeatureParams`, which the trainer stores in the manifest's ``features`` object, so the same
input map can be made later for new audio (``python -m train.features FILE.wav --model DIR``).

Pipeline (all in float64):

1. read the WAV (``scipy.io.wavfile``), integer PCM scaled to ``[-1, 1)``, channels averaged (the loudest
   channel alone where averaging cancels the signal, as with R = -L); a sample rate other than ``sample_rate`` is
   **resampled** with ``scipy.signal.resample_poly`` (polyphase, exact rational ratio), never refused;
   with ``declip`` the samples saturated at the recording's rails are detected and estimated
   (:mod:`train.declip`: autoregressive interpolation beyond the rail); with ``dc_remove`` the recording's mean (a
   DC offset) is subtracted; with ``limit`` = q > 0 every sample is clipped to the magnitude that the loudest
   share q of the recording's samples exceed (a limiter: saturation milder than that, as of a microphone driven
   too hard, then gives the same map as the clean recording);
   with ``preemph`` = a > 0 the pre-emphasis filter ``y[n] = x[n] - a x[n-1]`` is applied (``y[0] = x[0]``);
2. frames of ``win_ms`` (Hamming window, symmetric) every ``hop_ms``, power spectrum with ``n_fft`` points;
3. ``n_mels`` triangular mel filters (HTK mel scale) from ``fmin`` to ``fmax``, natural log
   (floored at ``1e-10``), DCT-II (orthonormal), first ``n_mfcc`` coefficients (``kind`` ``"logmel"``: no DCT,
   the ``n_mels`` log energies are the map's rows, from the lowest band up; the trainer's VTLP augmentation
   warps the filterbank's frequency axis, :func:`vtlp_warp`; a model's own maps never are);
4. silence trimming: leading and trailing frames whose energy is more than ``trim_db`` below the
   loudest frame are dropped;
5. centre crop to at most ``frames`` frames (with ``stretch``: linear interpolation along time to exactly
   ``frames`` frames instead, so that every utterance fills the window whatever its length); with ``cmn``,
   subtraction of the utterance's own mean, which makes the map independent of the recording level: a gain only
   moves coefficient 0, by a constant; with ``cvn`` as well, division of every coefficient by the utterance's own
   standard deviation over its frames, floored at ``cvn_floor``: per-utterance mean and variance normalization,
   CMVN;
6. normalization of each coefficient with the training set's ``mean`` / ``std``;
7. centre zero-padding to exactly ``frames`` frames (zero is the normalized mean);
8. INT8: ``clip(round(input_scale * x), -127, 127)``; the map has shape ``(1, n_mfcc, frames)``
   (channel, coefficient or mel band, time).

Refused with :class:`FeatureError`, naming the file and the problem: a missing or unreadable file, a header cut
short, no samples, NaN or infinite samples, float samples beyond +-16, a file over 64 MiB or a recording over
:data:`MAX_SECONDS` (30 s), audio shorter than one analysis window, silent audio (all samples zero).

Used, with a :class:`FeatureWarning` (``python -m train.features`` and ``boards.host`` print it as a ``warning:``
line): a truncated data chunk (the samples present are used); channels in opposite phase; speech longer than the
model's window after trimming (:class:`CroppedWarning`: only the middle ``frames`` frames, about 0.49 s, are heard);
a recording too quiet to be speech, whose loudest 25 ms frame has an RMS level below :data:`QUIET_DBFS` (-60 dBFS;
the quietest of FSDD's 3,000 recordings reaches -48 dBFS, the median -20 dBFS).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import struct
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.io.wavfile
import scipy.signal

from golden.checks import check_int
from golden.cli import run_main

__all__ = ["KINDS", "FeatureError", "FeatureWarning", "CroppedWarning", "FeatureParams", "read_wav", "mfcc",
           "raw_features", "audio_features", "stretch_frames", "condition", "fit_normalization", "finalize",
           "quantize", "extract", "extract_audio", "warnings_to_stderr", "main", "mel_filterbank", "vtlp_warp",
           "MAX_SECONDS", "QUIET_DBFS", "VTLP_BEND"]


#: Front-end kinds: cepstra (the DCT of the log mel energies) or the log mel energies themselves.
KINDS = ("mfcc", "logmel")


class FeatureError(ValueError):
    """A WAV file cannot be turned into features (unreadable, empty, too short, silent)."""


_INT_FIELDS = {"sample_rate": (1000, 192_000), "n_fft": (2, 1 << 16), "n_mels": (1, 1024), "n_mfcc": (1, 1024),
               "frames": (1, 1 << 16)}
_FLOAT_FIELDS = ("win_ms", "hop_ms", "fmin", "fmax", "trim_db", "input_scale", "preemph", "cvn_floor", "limit")
_BOOL_FIELDS = ("cmn", "dc_remove", "cvn", "stretch", "declip")


@dataclass(frozen=True)
class FeatureParams:
    """Parameters of the MFCC front-end; stored as the manifest's ``features`` object.

    Parameters
    ----------
    sample_rate : int
        Rate the features are computed at, in Hz; other rates are resampled to it.
    win_ms, hop_ms : float
        Analysis window length and hop, in milliseconds.
    n_fft : int
        FFT length (at least the window length in samples).
    n_mels : int
        Number of triangular mel filters.
    n_mfcc : int
        Number of cepstral coefficients kept (coefficient 0 included); the map's height.
    fmin, fmax : float
        Frequency range of the mel filters, in Hz (``fmax`` at most half the sample rate).
    trim_db : float
        Leading/trailing frames more than this many dB below the loudest frame are dropped.
    frames : int
        Number of frames of the map (its width): longer utterances are centre-cropped, shorter ones
        zero-padded on both sides after normalization.
    mean, std : tuple of float
        Per-coefficient normalization (training set statistics); ``None`` until fitted.
    input_scale : float
        INT8 quantization: ``x_int = clip(round(input_scale * x), -127, 127)``.
    cmn : bool
        Cepstral mean normalization: subtract each utterance's own mean of every coefficient (over its trimmed,
        cropped frames) before the global normalization; it removes a fixed channel/voice colouring and helps on
        unseen speakers; it also makes the map independent of the recording level.
    dc_remove : bool
        Subtract the recording's mean (its DC offset) before framing; a DC offset otherwise fills the lowest mel
        filter and keeps the silence from being trimmed.
    preemph : float
        Pre-emphasis coefficient ``a`` in ``0 <= a < 1`` (0: none): ``y[n] = x[n] - a x[n-1]``, after the DC removal.
    limit : float
        Share ``q`` of the samples the front-end's limiter clips, ``0 <= q < 0.5`` (0: none): after the DC removal,
        every sample is clipped to ``+-L``, where ``L`` is the ``1 - q`` quantile of the magnitudes (linear
        interpolation, :func:`numpy.quantile`). A recording saturated by a gain ``g`` on fewer than a share ``q`` of
        its samples has ``L`` scaled by ``g`` and is clipped exactly as the clean one times ``g``; with ``cmn`` the
        map is then the clean recording's (up to the 16-bit rounding and the DC removal of the clipped samples).
    cvn : bool
        Cepstral variance normalization (needs ``cmn``): after the mean, divide each coefficient by the utterance's
        own standard deviation over its trimmed, cropped frames, so that every coefficient of every utterance has
        unit spread; it evens out how strongly a voice or a channel modulates each coefficient.
    kind : str
        ``"mfcc"``: the first ``n_mfcc`` cepstral coefficients (DCT of the log mel energies); ``"logmel"``: the log
        mel energies themselves, one row per band (``n_mfcc`` must equal ``n_mels``), a spectrogram on which a
        convolution sees neighbouring bands, so that a formant moved by another vocal tract moves along the map's
        height instead of changing every coefficient.
    cvn_floor : float
        Smallest standard deviation ``cvn`` divides by (positive): an utterance of one frame, or a coefficient that
        hardly moves, is not blown up. FSDD's per-utterance deviations lie above 0.3 at the robust front-end.
    stretch : bool
        Fit the trimmed speech to the window: its frames are linearly interpolated along time to exactly ``frames``
        frames (frame ``i`` of the map at position ``i (n - 1) / (frames - 1)`` of the ``n`` trimmed frames), so a
        long utterance is squeezed instead of cropped and a short or quickly spoken one fills the window instead of
        sitting in its middle: the map no longer says how fast the speaker talks.
    declip : bool
        Before the DC removal, detect the samples saturated at the recording's largest or smallest value (a pile-up
        at the rail) and estimate them by autoregressive interpolation, each at least as far from zero as its rail
        (:mod:`train.declip`, whose constants are part of this field's meaning); a recording with no pile-up at
        a rail is left exactly as it is.

    The defaults of ``cmn``, ``dc_remove``, ``declip``, ``limit``, ``preemph``, ``cvn`` and ``stretch`` are the
    behaviour of the first front-end, so a manifest written before these fields existed makes exactly the map it
    made then.
    """

    sample_rate: int = 8000
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 256
    n_mels: int = 32
    n_mfcc: int = 16
    fmin: float = 0.0
    fmax: float = 4000.0
    trim_db: float = 35.0
    frames: int = 48
    mean: tuple | None = None
    std: tuple | None = None
    input_scale: float = 32.0
    cmn: bool = False
    dc_remove: bool = False
    preemph: float = 0.0
    cvn: bool = False
    cvn_floor: float = 0.1
    kind: str = field(default="mfcc")
    stretch: bool = False
    limit: float = 0.0
    declip: bool = False

    def __post_init__(self):
        self._check_types()
        if self.kind not in KINDS:
            raise FeatureError(f"features: kind {self.kind!r} is not supported (known: "
                               f"{', '.join(map(repr, KINDS))})")
        if self.kind == "logmel" and self.n_mfcc != self.n_mels:
            raise FeatureError(f"features: kind 'logmel' keeps every mel band as a row of the map: n_mfcc "
                               f"({self.n_mfcc}) must equal n_mels ({self.n_mels})")
        if self.win_samples < 2 or self.hop_samples < 1:
            raise FeatureError(f"features: window {self.win_ms} ms / hop {self.hop_ms} ms give fewer than 2 / 1 "
                               f"samples at {self.sample_rate} Hz")
        if self.n_fft < self.win_samples:
            raise FeatureError(f"features: n_fft {self.n_fft} is shorter than the window of "
                               f"{self.win_samples} samples")
        if not 1 <= self.n_mfcc <= self.n_mels:
            raise FeatureError(f"features: n_mfcc {self.n_mfcc} must be 1 ... n_mels ({self.n_mels})")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise FeatureError(f"features: mel range {self.fmin} ... {self.fmax} Hz must lie in "
                               f"0 ... {self.sample_rate / 2} Hz")
        if self.frames < 1:
            raise FeatureError(f"features: frames must be at least 1, not {self.frames}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None:
                value = tuple(float(v) for v in value)
                if len(value) != self.n_mfcc:
                    raise FeatureError(f"features: {name} has {len(value)} values, n_mfcc is {self.n_mfcc}")
                object.__setattr__(self, name, value)
        if self.std is not None and min(self.std) <= 0:
            raise FeatureError("features: every std value must be positive")
        if not self.input_scale > 0:
            raise FeatureError(f"features: input_scale must be positive, not {self.input_scale!r}")
        if not 0.0 <= self.preemph < 1.0:
            raise FeatureError(f"features: preemph must lie in 0 ... 1 (1 excluded), not {self.preemph!r}")
        if not 0.0 <= self.limit < 0.5:
            raise FeatureError(f"features: limit (the share of samples the limiter clips) must lie in 0 ... 0.5 "
                               f"(0.5 excluded), not {self.limit!r}")
        if self.cvn and not self.cmn:
            raise FeatureError("features: cvn (per-utterance variance normalization) needs cmn (the mean first)")
        if not self.cvn_floor > 0:
            raise FeatureError(f"features: cvn_floor must be positive, not {self.cvn_floor!r}")

    def _check_types(self):
        """Refuse a field of the wrong type or a non-finite number (a manifest is untrusted input)."""
        for name, (low, high) in _INT_FIELDS.items():
            try:
                check_int(f"features: {name}", getattr(self, name), low, high)
            except (TypeError, ValueError) as e:
                raise FeatureError(str(e)) from None
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise FeatureError(f"features: {name} must be a finite number, not {value!r}")
        for name in _BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise FeatureError(f"features: {name} must be true or false, not {getattr(self, name)!r}")
        if not isinstance(self.kind, str):
            raise FeatureError(f"features: kind must be a string, not {self.kind!r}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, (list, tuple, np.ndarray)) or not all(
                    isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in value):
                raise FeatureError(f"features: {name} must be a list of finite numbers")

    @property
    def win_samples(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_samples(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def map_shape(self) -> tuple:
        """Shape ``(1, n_mfcc, frames)`` of the INT8 input map."""
        return (1, self.n_mfcc, self.frames)

    def to_dict(self) -> dict:
        """The manifest's ``features`` object (JSON-ready)."""
        d = dataclasses.asdict(self)
        for name in ("mean", "std"):
            d[name] = None if d[name] is None else [float(v) for v in d[name]]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureParams":
        """Rebuild the parameters from a manifest's ``features`` object.

        Raises
        ------
        FeatureError
            On a missing object, an unknown kind or an unknown field.
        """
        if d is None:
            raise FeatureError("model has no 'features' object: it does not say how to make its input map")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise FeatureError(f"features: unknown field(s) {', '.join(unknown)}")
        return cls(**d)


# -- audio ---------------------------------------------------------------------------------------------------

#: Recordings longer than this are refused (the model looks at about half a second; see :func:`read_wav`).
MAX_SECONDS = 30.0
#: Files larger than this are refused before they are read.
MAX_FILE_BYTES = 64 << 20
#: A recording whose loudest 25 ms frame has a lower RMS level than this (dB below full scale) is too quiet to be
#: speech: the quietest of FSDD's 3,000 recordings peaks at -48 dBFS, their median at -20 dBFS.
QUIET_DBFS = -60.0
#: Float samples beyond this magnitude are not audio (full scale is 1.0).
MAX_FLOAT_SAMPLE = 16.0


class FeatureWarning(UserWarning):
    """Audio that is used, but not as a user would expect: cropped, very quiet, truncated, or mixed oddly."""


class CroppedWarning(FeatureWarning):
    """The speech is longer than the model's window: only its middle is used."""


def _warn(message, category=FeatureWarning):
    warnings.warn(message, category, stacklevel=3)


def _read_samples(path):
    """``(rate, data)`` of a WAV file; refuse what the reader cannot parse, turn its warnings into ours."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise FeatureError(f"{path}: not a regular file")
    except FileNotFoundError:
        raise FeatureError(f"{path}: no such file") from None
    except OSError as e:
        raise FeatureError(f"{path}: cannot be read ({e.strerror or e})") from None
    if size > MAX_FILE_BYTES:
        raise FeatureError(f"{path}: {size:,} bytes; the front-end reads WAV files of at most {MAX_FILE_BYTES:,} "
                           f"bytes (recordings of at most {MAX_SECONDS:g} s)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rate, data = scipy.io.wavfile.read(path)
        except (OSError, MemoryError) as e:
            raise FeatureError(f"{path}: cannot be read ({getattr(e, 'strerror', None) or e})") from None
        except Exception as e:  # noqa: BLE001 - any failure of the parser means a malformed file
            reason = str(e) or type(e).__name__
            if isinstance(e, struct.error):
                reason = f"the header is cut short ({e})"
            raise FeatureError(f"{path}: not a readable WAV file ({reason})") from None
    for w in caught:
        text = str(w.message)
        if "EOF prematurely" in text:
            text = f"the data chunk is truncated ({text.rstrip('.')}); only the samples present are used"
        _warn(f"{path}: {text}")
    return int(rate), data


def _to_mono(x, path):
    """Average the channels; where that cancels the signal (e.g. R = -L), use the loudest channel instead."""
    if x.ndim == 1:
        return x
    mix = x.mean(axis=1)
    energy = (x ** 2).mean(axis=0)
    if energy.max() > 0 and (mix ** 2).mean() < 0.25 * energy.mean():
        loudest = int(np.argmax(energy))
        _warn(f"{path}: averaging its {x.shape[1]} channels cancels most of the signal (channels in opposite "
              f"phase); channel {loudest} alone is used")
        return x[:, loudest]
    return mix


def read_wav(path, sample_rate: int = 8000) -> np.ndarray:
    """Read a WAV file as mono float64 in ``[-1, 1)`` at ``sample_rate``.

    Integer PCM is scaled to ``[-1, 1)``; several channels are averaged, except where averaging cancels the signal
    (less than a quarter of the channels' mean energy is left, as with R = -L): then the loudest channel is used,
    with a :class:`FeatureWarning`. A file at another rate is resampled with ``scipy.signal.resample_poly``
    (exact rational ratio). A truncated data chunk is used as far as it goes, with a warning.

    Raises
    ------
    FeatureError
        When the file is missing, not a regular file, larger than :data:`MAX_FILE_BYTES`, not a readable WAV,
        holds no samples, holds NaN or infinite samples or float samples beyond :data:`MAX_FLOAT_SAMPLE`, or is
        longer than :data:`MAX_SECONDS`.
    """
    path = Path(path)
    rate, data = _read_samples(path)
    if data.size == 0:
        raise FeatureError(f"{path}: the file holds no audio samples")
    if rate < 1:
        raise FeatureError(f"{path}: the header gives a sample rate of {rate} Hz")
    seconds = data.shape[0] / rate
    if seconds > MAX_SECONDS:
        raise FeatureError(f"{path}: {seconds:,.1f} s long; the front-end takes recordings of at most "
                           f"{MAX_SECONDS:g} s (the model hears about half a second of speech)")
    if data.dtype == np.uint8:
        x = (data.astype(np.float64) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        x = data.astype(np.float64) / float(-np.iinfo(data.dtype).min)
    else:
        x = data.astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1))
        if bad.size:
            v = x.reshape(x.shape[0], -1)[bad[0]]
            v = v[~np.isfinite(v)][0]
            raise FeatureError(f"{path}: sample {int(bad[0]):,} is {'NaN' if np.isnan(v) else f'{v:+}'}; audio "
                               f"samples must be finite numbers")
        peak = float(np.abs(x).max())
        if peak > MAX_FLOAT_SAMPLE:
            raise FeatureError(f"{path}: float sample of magnitude {peak:g}; audio lies within [-1, 1] (at most "
                               f"{MAX_FLOAT_SAMPLE:g} is accepted)")
    x = _to_mono(x, path)
    if rate != sample_rate:
        g = math.gcd(rate, int(sample_rate))
        x = scipy.signal.resample_poly(x, sample_rate // g, rate // g)
    return x


def _mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_inv(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


#: Where the piecewise-linear warp of :func:`vtlp_warp` bends, as a fraction of the band ``fmin ... fmax``
#: (Jaitly & Hinton bend at 4.8 of 8 kHz; a higher bend keeps more of this narrower band on the scaled segment).
VTLP_BEND = 0.8


def vtlp_warp(freqs, alpha: float, fmin: float, fmax: float) -> np.ndarray:
    """Frequencies ``freqs`` (Hz) under the vocal tract length perturbation of Jaitly & Hinton (2013).

    Inside ``fmin ... fmax`` the offset ``u = f - fmin`` becomes ``alpha * u`` up to the bend
    ``u0 = VTLP_BEND * (fmax - fmin) * min(alpha, 1) / alpha``, then follows the straight line from there to
    ``fmax``, so that ``fmin`` and ``fmax`` stay where they are and the warp is continuous and increasing;
    outside the band frequencies are unchanged. ``alpha = 1`` is the identity; ``alpha > 1`` moves a spectral
    feature (a formant) up, as a shorter vocal tract would, ``alpha < 1`` down.
    """
    if not alpha > 0:
        raise ValueError(f"VTLP warp factor must be positive, not {alpha!r}")
    f = np.asarray(freqs, dtype=np.float64)
    if alpha == 1.0:
        return f
    band = fmax - fmin
    u = f - fmin
    u0 = VTLP_BEND * band * min(alpha, 1.0) / alpha
    upper = band - (band - alpha * u0) / (band - u0) * (band - u)
    w = np.where(u <= u0, alpha * u, upper)
    return np.where((u >= 0) & (u <= band), fmin + w, f)


def mel_filterbank(p: FeatureParams, warp: float = 1.0) -> np.ndarray:
    """Triangular mel filters, shape ``(n_mels, n_fft // 2 + 1)``; with ``warp`` != 1 the FFT bins' frequencies
    are first moved by :func:`vtlp_warp` (the energy of a bin at ``f`` falls into the filters at
    ``vtlp_warp(f)``)."""
    edges = _mel_inv(np.linspace(_mel(p.fmin), _mel(p.fmax), p.n_mels + 2))
    freqs = vtlp_warp(np.arange(p.n_fft // 2 + 1) * p.sample_rate / p.n_fft, warp, p.fmin, p.fmax)
    fb = np.zeros((p.n_mels, freqs.size))
    for m in range(p.n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        rise = (freqs - lo) / (mid - lo)
        fall = (hi - freqs) / (hi - mid)
        fb[m] = np.maximum(0.0, np.minimum(rise, fall))
    return fb


def condition(x: np.ndarray, p: FeatureParams) -> np.ndarray:
    """``x`` declipped (``declip``), with its DC offset removed (``dc_remove``), limited (``limit``) and
    pre-emphasized (``preemph``); ``x`` itself when none is asked for."""
    if p.declip and x.size:
        from .declip import declip
        x = declip(x)
    if p.dc_remove and x.size:
        x = x - x.mean()
    if p.limit > 0.0 and x.size:
        level = float(np.quantile(np.abs(x), 1.0 - p.limit))
        if level > 0.0:  # 0 when most samples are 0: nothing to limit against
            x = np.clip(x, -level, level)
    if p.preemph > 0.0 and x.size:
        x = np.concatenate([x[:1], x[1:] - p.preemph * x[:-1]])
    return x


def mfcc(x: np.ndarray, p: FeatureParams, *, name: str = "audio", warp: float = 1.0) -> np.ndarray:
    """MFCCs of trimmed audio, shape ``(n_frames, n_mfcc)`` (the DC removal and pre-emphasis of step 1, then
    steps 2-4 of the pipeline; with ``kind`` ``"logmel"`` the log mel energies, before the DCT); ``warp`` is a VTLP
    factor for the filterbank (:func:`mel_filterbank`), used by the training-time augmentation only (1: none).

    A :class:`FeatureWarning` says when the loudest frame's RMS level is below :data:`QUIET_DBFS`.

    Raises
    ------
    FeatureError
        When the audio is shorter than one window or has no energy at all.
    """
    n, hop = p.win_samples, p.hop_samples
    if x.size < n:
        raise FeatureError(f"{name}: {x.size} samples is shorter than one {p.win_ms:g} ms analysis window "
                           f"({n} samples at {p.sample_rate} Hz)")
    count = 1 + (x.size - n) // hop
    idx = np.arange(n)[None, :] + hop * np.arange(count)[:, None]
    frames = condition(x, p)[idx] * np.hamming(n)[None, :]
    power = np.abs(np.fft.rfft(frames, n=p.n_fft, axis=1)) ** 2 / p.n_fft
    energy = power.sum(axis=1)
    peak = energy.max()
    # after the DC removal a constant leaves rounding residue only (far below one 16-bit step, ~1e-9)
    if not peak > (1e-20 if p.dc_remove else 0.0):
        what = "all samples equal: a constant DC offset only" if p.dc_remove and x.any() else "all samples zero"
        raise FeatureError(f"{name}: the audio is silent ({what})")
    level = 10.0 * math.log10(max(float((x[idx] ** 2).mean(axis=1).max()), 1e-300))
    if level < QUIET_DBFS:
        _warn(f"{name}: too quiet to be speech: its loudest {p.win_ms:g} ms has an RMS level of {level:.1f} dBFS, "
              f"below {QUIET_DBFS:g} dBFS")
    loud = np.flatnonzero(10.0 * np.log10(np.maximum(energy, 1e-300) / peak) > -p.trim_db)
    power = power[loud[0]:loud[-1] + 1]
    logmel = np.log(np.maximum(power @ mel_filterbank(p, warp).T, 1e-10))
    if p.kind == "logmel":
        return logmel
    return scipy.fft.dct(logmel, type=2, norm="ortho", axis=1)[:, :p.n_mfcc]


def _seconds(frames, p):
    """Duration covered by ``frames`` analysis frames."""
    return ((frames - 1) * p.hop_samples + p.win_samples) / p.sample_rate


def raw_features(path, p: FeatureParams, *, warn_crop: bool = True) -> np.ndarray:
    """MFCCs of a WAV file, centre-cropped to at most ``frames`` frames: shape ``(n <= frames, n_mfcc)``.

    With ``warn_crop``, a :class:`CroppedWarning` says when the speech (after trimming silence) is longer than the
    model's window and only its middle is used (pass False where cropping is expected, as over a data set).
    """
    return audio_features(read_wav(path, p.sample_rate), p, name=str(path), warn_crop=warn_crop)


def audio_features(x: np.ndarray, p: FeatureParams, *, name: str = "audio", warn_crop: bool = True,
                   warp: float = 1.0) -> np.ndarray:
    """:func:`raw_features` of audio already read (mono float at ``p.sample_rate``); ``warp`` as in
    :func:`mfcc`."""
    c = mfcc(x, p, name=name, warp=warp)
    if p.stretch:
        c = stretch_frames(c, p.frames)
    elif c.shape[0] > p.frames:
        if warn_crop:
            _warn(f"{name}: {_seconds(c.shape[0], p):.2f} s of speech after trimming silence; the model hears only "
                  f"the middle {_seconds(p.frames, p):.2f} s ({p.frames} frames)", CroppedWarning)
        start = (c.shape[0] - p.frames) // 2
        c = c[start:start + p.frames]
    if p.cmn:
        c = c - c.mean(axis=0, keepdims=True)
        if p.cvn:
            c = c / np.maximum(c.std(axis=0, keepdims=True), p.cvn_floor)
    return c


def stretch_frames(c: np.ndarray, frames: int) -> np.ndarray:
    """``c`` (shape ``(n, coefficients)``) linearly interpolated along its first axis to exactly ``frames`` rows:
    row ``i`` is taken at position ``i (n - 1) / (frames - 1)`` (the first and last rows are kept; one row is
    repeated)."""
    n = c.shape[0]
    if n == frames:
        return c
    pos = np.linspace(0.0, n - 1.0, frames) if frames > 1 else np.zeros(1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo)[:, None]
    return c[lo] * (1.0 - w) + c[hi] * w


def fit_normalization(raws, p: FeatureParams) -> FeatureParams:
    """Return ``p`` with ``mean`` / ``std`` of every coefficient over all frames of ``raws``."""
    allf = np.concatenate(list(raws), axis=0)
    return dataclasses.replace(p, mean=tuple(allf.mean(axis=0)), std=tuple(allf.std(axis=0) + 1e-8))


def finalize(raw: np.ndarray, p: FeatureParams) -> np.ndarray:
    """Normalize and centre-pad raw MFCCs to the float map, shape ``(1, n_mfcc, frames)``."""
    if p.mean is None or p.std is None:
        raise FeatureError("features: normalization (mean/std) is not fitted")
    z = (raw - np.asarray(p.mean)) / np.asarray(p.std)
    out = np.zeros((p.frames, p.n_mfcc))
    left = (p.frames - z.shape[0]) // 2
    out[left:left + z.shape[0]] = z
    return out.T[None, :, :]


def quantize(xf: np.ndarray, p: FeatureParams) -> np.ndarray:
    """INT8 input map: ``clip(round(input_scale * x), -127, 127)`` (round half to even)."""
    return np.clip(np.round(p.input_scale * xf), -127, 127).astype(np.int8)


def extract(path, p: FeatureParams, *, warn_crop: bool = True) -> np.ndarray:
    """INT8 input map of one WAV file, shape ``(1, n_mfcc, frames)`` (``warn_crop`` as in :func:`raw_features`)."""
    return quantize(finalize(raw_features(path, p, warn_crop=warn_crop), p), p)


@contextmanager
def warnings_to_stderr():
    """Print each :class:`FeatureWarning` raised inside the block as one ``warning:`` line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FeatureWarning)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, FeatureWarning):
                    print(f"warning: {w.message}", file=sys.stderr)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def extract_audio(x: np.ndarray, p: FeatureParams, *, name: str = "audio", warn_crop: bool = True,
                  warp: float = 1.0) -> np.ndarray:
    """:func:`extract` of audio already read (mono float at ``p.sample_rate``); ``warp`` as in :func:`mfcc`."""
    return quantize(finalize(audio_features(x, p, name=name, warn_crop=warn_crop, warp=warp), p), p)


# -- command line --------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.features",
        description="Make the INT8 input map (1 x 16 x 48 for the shipped models) of a WAV file with the "
                    "feature parameters stored in a model's manifest. Audio at another sample rate is "
                    "resampled (scipy.signal.resample_poly).")
    parser.add_argument("wav", help="input WAV file")
    parser.add_argument("--model", help="model directory whose manifest holds the 'features' object (default: the "
                                         "shipped default model)")
    parser.add_argument("--out", help="save the map as a .npy file (int8) for `python -m golden --input`")
    parser.add_argument("--json", action="store_true", help="print the map as one JSON list")
    args = parser.parse_args(argv)
    from .util import model_or_default
    args.model = model_or_default(args.model)
    from golden.manifest import load
    p = FeatureParams.from_dict(load(args.model).features)
    with warnings_to_stderr():
        x = extract(args.wav, p)
    if args.out:
        from .util import atomic_save_npy
        atomic_save_npy(args.out, x[None])
        print(f"{args.out}: input map of shape {tuple(x.shape)} (int8, min {int(x.min())}, max {int(x.max())}); "
              f"python -m golden --model {args.model} --input {args.out} runs it",
              file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(x.tolist()))
    elif not args.out:
        with np.printoptions(linewidth=250, threshold=100000):
            print(x[0])
        print(f"shape {tuple(x.shape)}, min {int(x.min())}, max {int(x.max())}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
