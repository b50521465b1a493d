"""Seeded audio perturbations: the conditions of the robustness benchmark and the trainer's augmentations.

Every function takes mono float audio in ``[-1, 1)`` (as ``train.features.read_wav`` returns it) and returns new
audio; none modifies its input. Random ones take a ``numpy.random.Generator``, so a seed fixes the result.

- :func:`add_noise` mixes noise at a signal-to-noise ratio, where both powers are mean squares over the whole
  recording (the noise is scaled, the speech is not); :func:`white`, :func:`pink` and :func:`brown` make noise;
  :func:`babble` mixes other talkers.
- :func:`dc_offset`, :func:`gain`, :func:`pcm8` model a bad recording chain: an offset in fractions of full scale,
  a gain with clipping to 16-bit PCM, and 8-bit unsigned PCM (256 levels).
- :func:`time_stretch` changes the duration and keeps the pitch (phase vocoder on a 32 ms STFT, a quarter hop);
  :func:`speed` changes both (resampling, as a faster or slower tape).
- :func:`room_impulse_response` simulates a random shoebox room of a given reverberation time (RT60) with
  pyroomacoustics' image-source method; :func:`reverb` plays audio through such a room.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal

__all__ = ["white", "pink", "brown", "add_noise", "babble", "dc_offset", "gain", "pcm8", "time_stretch", "speed",
           "power", "room_impulse_response", "reverb", "MAX_IMAGE_ORDER"]

#: Largest 16-bit PCM value, as a float in [-1, 1).
PCM16_MAX = 32767 / 32768


def power(x):
    """Mean square of ``x`` (0 for empty audio)."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x * x)) if x.size else 0.0


def white(n, rng):
    """White Gaussian noise of unit power."""
    return rng.standard_normal(n)


def _coloured(n, rng, exponent):
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / f ** (exponent / 2.0), n=n)
    return noise / math.sqrt(max(power(noise), 1e-30))


def pink(n, rng):
    """Pink (1/f power) noise of unit power."""
    return _coloured(n, rng, 1.0)


def brown(n, rng):
    """Brown (1/f^2 power) noise of unit power."""
    return _coloured(n, rng, 2.0)


def add_noise(x, noise, snr_db):
    """``x`` plus ``noise`` (tiled or cut to the length of ``x``) scaled to ``snr_db`` below the speech's power.

    Raises
    ------
    ValueError
        If ``x`` is silent or ``noise`` is empty or silent (no SNR is defined).
    """
    x = np.asarray(x, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if noise.size == 0 or power(noise) == 0.0:
        raise ValueError("noise is empty or silent: no signal-to-noise ratio can be set")
    ps = power(x)
    if ps == 0.0:
        raise ValueError("audio is silent: no signal-to-noise ratio can be set")
    noise = np.resize(noise, x.shape)
    scale = math.sqrt(ps / (power(noise) * 10.0 ** (snr_db / 10.0)))
    return x + scale * noise


def babble(x, talkers, snr_db, rng, *, count=4):
    """Mix ``count`` recordings drawn from ``talkers`` (a list of audio arrays), each at equal power and at a random
    offset, into ``x`` at ``snr_db``."""
    if not talkers:
        raise ValueError("babble needs at least one other recording")
    mix = np.zeros(np.asarray(x).shape)
    for k in rng.choice(len(talkers), size=min(count, len(talkers)), replace=False):
        t = np.asarray(talkers[k], dtype=np.float64)
        if power(t) == 0.0:
            continue
        t = np.roll(np.resize(t, mix.shape), int(rng.integers(0, mix.size)))
        mix += t / math.sqrt(power(t))
    return add_noise(x, mix, snr_db)


def dc_offset(x, fraction):
    """``x`` plus a constant ``fraction`` of full scale, clipped to 16-bit PCM."""
    return np.clip(np.asarray(x, dtype=np.float64) + fraction, -1.0, PCM16_MAX)


def gain(x, factor, *, clip=True):
    """``x`` times ``factor``; with ``clip``, saturated and quantized to 16-bit PCM as a recorder would."""
    y = np.asarray(x, dtype=np.float64) * factor
    if clip:
        y = np.round(np.clip(y, -1.0, PCM16_MAX) * 32768.0) / 32768.0
    return y


def pcm8(x):
    """``x`` through 8-bit unsigned PCM (the WAV convention: 128 is zero)."""
    q = np.clip(np.round(np.asarray(x, dtype=np.float64) * 128.0) + 128.0, 0, 255)
    return (q - 128.0) / 128.0


def time_stretch(x, rate, sample_rate=8000):
    """Play ``x`` ``rate`` times as fast without changing its pitch (``rate`` 0.8: 25% longer).

    A phase vocoder: STFT with a 32 ms Hann window and a quarter-window hop, frames taken at ``rate`` times the
    hop with their phase advance accumulated, resynthesized at the original hop.
    """
    if not rate > 0:
        raise ValueError(f"stretch rate must be positive, not {rate!r}")
    x = np.asarray(x, dtype=np.float64)
    n = max(16, int(round(0.032 * sample_rate)))
    hop = n // 4
    target = int(round(x.size / rate))
    # a window of silence at the end, so that the last frames reach the end of the stretched audio
    _, _, spec = scipy.signal.stft(np.concatenate([x, np.zeros(n)]), nperseg=n, noverlap=n - hop,
                                   boundary="zeros", padded=True)
    steps = np.arange(0.0, spec.shape[1] - 1, rate)
    expected = 2.0 * np.pi * hop * np.arange(spec.shape[0]) / n
    phase = np.angle(spec[:, 0])
    out = np.empty((spec.shape[0], steps.size), dtype=np.complex128)
    for k, t in enumerate(steps):
        i = int(t)
        frac = t - i
        mag = (1.0 - frac) * np.abs(spec[:, i]) + frac * np.abs(spec[:, i + 1])
        out[:, k] = mag * np.exp(1j * phase)
        advance = np.angle(spec[:, i + 1]) - np.angle(spec[:, i]) - expected
        advance -= 2.0 * np.pi * np.round(advance / (2.0 * np.pi))
        phase = phase + expected + advance
    _, y = scipy.signal.istft(out, nperseg=n, noverlap=n - hop, boundary=True)
    return np.pad(y, (0, max(0, target - y.size)))[:target]


def speed(x, factor):
    """Play ``x`` ``factor`` times as fast, pitch included (resampling by a ratio of small integers)."""
    if not factor > 0:
        raise ValueError(f"speed factor must be positive, not {factor!r}")
    ratio = np.round(factor * 100).astype(int)
    g = math.gcd(int(ratio), 100)
    return scipy.signal.resample_poly(np.asarray(x, dtype=np.float64), 100 // g, int(ratio) // g)


#: Highest image-source order of a simulated room: it bounds the time a small, very reverberant room takes. The
#: worst case, a 3 x 3 x 2.5 m room of RT60 1 s, would need order 178 (4 s of computing); at 40 it keeps the first
#: 0.35 s of the response and 96% of its energy (the energy falls 20 dB in 0.22 s instead of 0.35 s).
MAX_IMAGE_ORDER = 40


def room_impulse_response(rt60, rng, sample_rate=8000):
    """The impulse response from a talker to a microphone in a random shoebox room whose reverberation time is
    ``rt60`` seconds (Sabine's formula, :func:`pyroomacoustics.inverse_sabine`; image-source method up to
    :data:`MAX_IMAGE_ORDER` reflections).

    The room is 3-10 m long, 3-8 m wide (no wider than long) and 2.5-4 m high; talker and microphone are drawn
    uniformly at least 0.5 m from every wall and 1 m from each other. Rooms too small for the asked time (walls
    that would absorb more than all) are drawn again. The response starts at the direct sound (the propagation
    delay is dropped).

    Raises
    ------
    ValueError
        If ``rt60`` is not between 0.05 and 3 s.
    ImportError
        Without pyroomacoustics (the ``train`` extra installs it).
    """
    if not 0.05 <= rt60 <= 3.0:
        raise ValueError(f"reverberation time must be 0.05 ... 3 s, not {rt60!r}")
    try:
        import pyroomacoustics as pra
    except ImportError:
        raise ImportError("simulated rooms need pyroomacoustics: pip install -e '.[train]'") from None
    for _ in range(1000):
        length = rng.uniform(3.0, 10.0)
        dims = np.array([length, rng.uniform(3.0, min(8.0, length)), rng.uniform(2.5, 4.0)])
        src, mic = (rng.uniform(0.5, dims - 0.5) for _ in range(2))
        if np.linalg.norm(src - mic) < 1.0:
            continue
        try:
            absorption, order = pra.inverse_sabine(rt60, dims)
        except ValueError:
            continue
        room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption),
                           max_order=min(order, MAX_IMAGE_ORDER))
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)
        return rir[int(np.argmax(np.abs(rir))):]
    raise ValueError(f"no room of 3-10 m has a reverberation time of {rt60} s")  # pragma: no cover


def reverb(x, rir):
    """``x`` played through the room of impulse response ``rir``: the convolution, tail included, scaled to the
    power of ``x`` (a reverberant recording as loud as the dry one)."""
    x = np.asarray(x, dtype=np.float64)
    y = scipy.signal.fftconvolve(x, np.asarray(rir, dtype=np.float64))
    py = power(y)
    return y * math.sqrt(power(x) / py) if py > 0.0 else y
