"""Training-time augmentation: perturbed copies of the training audio, and masks on the input maps.

Two kinds of augmentation, both seeded:

**On the audio** (:func:`augmented_maps`), made once before training: ``copies`` perturbed versions of every
training recording, each turned into its input map by the model's own front-end (the normalization fitted on the
clean training recordings, so augmentation never changes what the map means). Each version draws, with the
perturbations of :mod:`train.perturb` (the same code the robustness benchmark measures with):

1. a speed change (pitch and duration together, resampling) by a factor in ``speed`` (probability ``speed_p``);
2. a gain of ``gain_db`` decibels (uniform), saturated and quantized to 16-bit PCM with probability ``clip_p``
   (a boost of up to +20 dB then clips the loud vowels, as an over-driven recorder does);
3. additive noise (probability ``noise_p``) at an SNR drawn uniformly from ``snr_db``: white, pink, brown (1/f^2)
   or babble, equally likely (with ``babble_p`` set: babble with that probability, else one of the other three);
   babble mixes four other recordings **of the training side only** (never a validation or test recording), each
   of another speaker than the one augmented;
4. a DC offset of up to ``dc`` of full scale (probability ``dc_p``);
5. a room (probability ``reverb_p``, 0 in the old recipes): the audio played through one of ``rooms`` simulated
   shoebox rooms (:func:`train.perturb.room_impulse_response`, pyroomacoustics' image-source method) whose
   reverberation times are drawn uniformly from ``rt60`` seconds; the rooms are drawn once per training from the
   seed, and applied after the speed change, before the recorder's gain and the noise;
6. VTLP, vocal tract length perturbation (Jaitly & Hinton 2013; probability ``vtlp_p``, 0 in the old recipes):
   the front-end's mel filterbank is computed on a frequency axis warped by a factor drawn uniformly from ``vtlp``
   (:func:`train.features.vtlp_warp`, piecewise linear so that ``fmax`` stays ``fmax``), which moves the formants
   alone, as another vocal tract length would; the speed change of step 1 moves pitch and duration together.
7. trim jitter (``trim_jitter`` dB, 0 in the old recipes): the front-end trims the version's silence at a level
   drawn uniformly within ``trim_jitter`` dB of its ``trim_db`` (at least 1 dB below the loudest frame), so the
   network does not learn where one recorder's noise floor puts the edges of the speech: an unheard speaker's
   recorder, or noise, moves them, and with ``stretch`` that changes how the speech fills the map.

During training every epoch shows each recording in one of its ``copies + 1`` versions (the clean one included),
drawn with the trainer's seeded generator, so an epoch costs no more than without augmentation.

**On the maps** (:func:`mask_maps`), per batch: time shift is the trainer's ``--shift``; here, SpecAugment-style
masks set a band of up to ``bands`` consecutive coefficients and a run of up to ``frames`` consecutive frames of
each map to zero (the normalized mean), each with probability ``mask_p``; with ``mixup`` set (:func:`mix_maps`), mixup
(Zhang et al. 2018): each batch is blended with a shuffled copy of itself by a weight drawn from Beta(``mixup``,
``mixup``), and the loss blends the two labels' losses by the same weight.

"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from . import perturb

__all__ = ["AugmentConfig", "augmented_maps", "augmented_bank", "room_bank", "vtlp_factor", "trimmed_params",
           "mask_maps", "mix_maps", "time_shift", "NOISE_KINDS"]

#: Noise kinds drawn for the additive noise, equally likely.
NOISE_KINDS = ("white", "pink", "brown", "babble")


@dataclass(frozen=True)
class AugmentConfig:
    """What :func:`augmented_maps` and :func:`mask_maps` draw; the defaults are the trainer's.

    Parameters
    ----------
    copies : int
        Perturbed versions of each training recording (0: no audio augmentation).
    noise_p, snr_db : float, (float, float)
        Probability of additive noise and the range of its SNR in dB.
    babble_p : float or None
        Probability that the additive noise is babble (the other kinds share the rest equally); ``None``: the four
        kinds are equally likely, drawn as in the recipes written before this option existed.
    gain_db, clip_p : (float, float), float
        Range of the random gain in dB, and the probability that the result is saturated to 16-bit PCM.
    speed, speed_p : (float, float), float
        Range of the speed factor, and the probability of a speed change.
    dc, dc_p : float
        Largest DC offset (fraction of full scale) and its probability.
    bands, frames, mask_p : int, int, float
        Widest band of coefficients and longest run of frames masked, and the probability of each mask.
    vtlp, vtlp_p : (float, float), float
        Range of the VTLP warp factor, and the probability that a version is warped (0: never, and no number is
        drawn for it, so the other draws are those of a configuration without VTLP).
    reverb_p, rt60, rooms : float, (float, float), int
        Probability that a version is played through a simulated room, the range of the rooms' reverberation
        times in seconds, and how many rooms are simulated (0 probability: none, and no number is drawn).
    mixup : float
        Parameter of the Beta distribution of :func:`mix_maps`' blend weight; 0: no mixup, and no number is drawn.
    trim_jitter : float
        Largest change of the front-end's silence trimming level per version, in dB (step 7); 0: none, and no
        number is drawn.
    """

    copies: int = 4
    noise_p: float = 0.8
    snr_db: tuple = (0.0, 30.0)
    gain_db: tuple = (-20.0, 20.0)
    clip_p: float = 0.5
    speed: tuple = (0.85, 1.15)
    speed_p: float = 0.5
    dc: float = 0.1
    dc_p: float = 0.2
    bands: int = 2
    frames: int = 4
    mask_p: float = 0.5
    vtlp: tuple = (0.9, 1.1)
    vtlp_p: float = 0.0
    reverb_p: float = 0.0
    rt60: tuple = (0.2, 1.0)
    rooms: int = 32
    babble_p: float | None = None
    mixup: float = 0.0
    trim_jitter: float = 0.0

    def __post_init__(self):
        if not isinstance(self.copies, int) or self.copies < 0:
            raise ValueError(f"augmentation copies must be a non-negative integer, not {self.copies!r}")
        for name in ("noise_p", "clip_p", "speed_p", "dc_p", "mask_p", "vtlp_p", "reverb_p"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"augmentation {name} must be a probability in 0 ... 1, not {v!r}")
        if self.babble_p is not None and not 0.0 <= self.babble_p <= 1.0:
            raise ValueError(f"augmentation babble_p must be a probability in 0 ... 1, not {self.babble_p!r}")
        for name in ("snr_db", "gain_db", "speed", "vtlp", "rt60"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"augmentation {name} range {lo} ... {hi} is empty")
        if not self.speed[0] > 0:
            raise ValueError(f"augmentation speed factors must be positive, not {self.speed[0]!r}")
        if not self.vtlp[0] > 0:
            raise ValueError(f"augmentation VTLP warp factors must be positive, not {self.vtlp[0]!r}")
        if not (0.05 <= self.rt60[0] and self.rt60[1] <= 3.0):
            raise ValueError(f"augmentation reverberation times must lie in 0.05 ... 3 s, not {self.rt60[0]} ... "
                             f"{self.rt60[1]}")
        if not isinstance(self.rooms, int) or not 1 <= self.rooms <= 1024:
            raise ValueError(f"augmentation rooms must be an integer in 1 ... 1024, not {self.rooms!r}")
        if not 0.0 <= self.mixup <= 10.0:
            raise ValueError(f"augmentation mixup must be a Beta parameter in 0 ... 10 (0: off), not {self.mixup!r}")
        if not 0.0 <= self.trim_jitter <= 40.0:
            raise ValueError(f"augmentation trim_jitter must be in 0 ... 40 dB (0: off), not {self.trim_jitter!r}")
        if self.bands < 0 or self.frames < 0:
            raise ValueError(f"mask widths must be non-negative, not {self.bands} bands / {self.frames} frames")


def _noise(x, rng, cfg, others):
    if cfg.babble_p is None:
        kind = NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))] if others else NOISE_KINDS[int(rng.integers(3))]
    else:
        babble = bool(rng.random() < cfg.babble_p) and bool(others)
        kind = "babble" if babble else NOISE_KINDS[int(rng.integers(3))]
    snr = float(rng.uniform(*cfg.snr_db))
    if kind == "babble":
        return perturb.babble(x, others, snr, rng)
    make = {"white": perturb.white, "pink": perturb.pink, "brown": perturb.brown}[kind]
    return perturb.add_noise(x, make(x.size, rng), snr)


#: The seed stream of the training rooms (apart from every recording's own stream ``[seed, k, i]``).
ROOM_STREAM = 0x524F4F4D


def room_bank(cfg: AugmentConfig, seed: int, sample_rate: int) -> list:
    """The impulse responses of ``cfg.rooms`` simulated rooms (none when ``cfg.reverb_p`` is 0), drawn from
    ``numpy.random.default_rng([seed, ROOM_STREAM])``, reverberation times uniform in ``cfg.rt60``."""
    if cfg.reverb_p == 0.0:
        return []
    rng = np.random.default_rng([seed, ROOM_STREAM])
    return [perturb.room_impulse_response(float(rng.uniform(*cfg.rt60)), rng, sample_rate) for _ in range(cfg.rooms)]


def perturb_once(x, rng, cfg: AugmentConfig, others, rooms=()):
    """One random version of audio ``x`` (steps 1-5 of the module docstring); ``others``: babble material;
    ``rooms``: the impulse responses of :func:`room_bank`."""
    if rng.random() < cfg.speed_p:
        x = perturb.speed(x, float(rng.uniform(*cfg.speed)))
    if rooms and rng.random() < cfg.reverb_p:
        x = perturb.reverb(x, rooms[int(rng.integers(len(rooms)))])
    x = perturb.gain(x, 10.0 ** (float(rng.uniform(*cfg.gain_db)) / 20.0), clip=bool(rng.random() < cfg.clip_p))
    if rng.random() < cfg.noise_p and perturb.power(x) > 0.0:
        x = _noise(x, rng, cfg, others)
    if rng.random() < cfg.dc_p:
        x = perturb.dc_offset(x, float(rng.uniform(-cfg.dc, cfg.dc)))
    return x


def vtlp_factor(rng, cfg: AugmentConfig) -> float:
    """The VTLP warp factor of one version: uniform in ``cfg.vtlp`` with probability ``cfg.vtlp_p``, else 1.
    Draws nothing from ``rng`` when ``cfg.vtlp_p`` is 0."""
    if cfg.vtlp_p == 0.0 or not rng.random() < cfg.vtlp_p:
        return 1.0
    return float(rng.uniform(*cfg.vtlp))


def trimmed_params(params, rng, cfg: AugmentConfig):
    """``params`` with the silence trimming level of one version (step 7); ``params`` itself, drawing nothing from
    ``rng``, when ``cfg.trim_jitter`` is 0."""
    if cfg.trim_jitter == 0.0:
        return params
    trim = params.trim_db + float(rng.uniform(-cfg.trim_jitter, cfg.trim_jitter))
    return dataclasses.replace(params, trim_db=max(trim, 1.0))


def augmented_maps(audio, speakers, params, cfg: AugmentConfig, seed: int, *, progress: bool = True):
    """INT8 maps of ``cfg.copies`` perturbed versions of every recording, shape ``(copies, N, 1, n_mfcc, frames)``.

    Parameters
    ----------
    audio : list of ndarray
        The training recordings (mono float at ``params.sample_rate``).
    speakers : list of str
        Their speakers (babble for a recording is made of the other speakers' recordings).
    params : train.features.FeatureParams
        The fitted front-end.
    seed : int
        Version ``k`` of recording ``i`` is drawn from ``numpy.random.default_rng([seed, k, i])`` (its VTLP factor
        and trimming level last, after the audio perturbations).

    A version the front-end refuses (a perturbation left no speech) falls back to the clean map.
    """
    from tqdm import tqdm

    from .features import FeatureError, FeatureWarning, extract_audio
    n = len(audio)
    out = np.zeros((cfg.copies, n, *params.map_shape), dtype=np.int8)
    if cfg.copies == 0:
        return out
    rooms = room_bank(cfg, seed, params.sample_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FeatureWarning)
        clean = [extract_audio(x, params, warn_crop=False) for x in audio]
        for k in tqdm(range(cfg.copies), desc="augment", unit="copy", disable=not progress, leave=False):
            for i, x in enumerate(audio):
                rng = np.random.default_rng([seed, k, i])
                pick = [j for j in rng.choice(n, size=min(16, n), replace=False) if speakers[j] != speakers[i]]
                try:
                    y = perturb_once(x, rng, cfg, [audio[j] for j in pick[:8]], rooms)
                    warp = vtlp_factor(rng, cfg)
                    out[k, i] = extract_audio(y, trimmed_params(params, rng, cfg), warn_crop=False, warp=warp)
                except (FeatureError, ValueError):
                    out[k, i] = clean[i]
    return out


def augmented_bank(ds, cfg: AugmentConfig, seed: int, progress: bool = True):
    """The training maps of the dataset ``ds`` (:class:`train.fsdd.Dataset`) as a float tensor
    ``(1 + copies, N, C, H, W)``: the clean maps, then the perturbed versions of :func:`augmented_maps`."""
    from .features import read_wav
    versions = [ds.x_train[None]]
    if cfg.copies:
        audio = [read_wav(r.path, ds.params.sample_rate) for r in ds.train_recordings]
        versions.append(augmented_maps(audio, [r.speaker for r in ds.train_recordings], ds.params, cfg, seed,
                                       progress=progress))
    return torch.as_tensor(np.concatenate(versions), dtype=torch.float32)


def mask_maps(x, cfg: AugmentConfig, gen):
    """``x`` (float tensor ``(N, C, H, W)``) with a random band of coefficients and a random run of frames of each
    map set to zero, each with probability ``cfg.mask_p`` (drawn from the torch generator ``gen``)."""
    if cfg.mask_p == 0.0 or (cfg.bands == 0 and cfg.frames == 0):
        return x
    n, _, h, w = x.shape
    keep = torch.ones(n, 1, h, w, dtype=x.dtype)
    for width, size, axis in ((cfg.bands, h, 2), (cfg.frames, w, 3)):
        if width == 0:
            continue
        on = torch.rand(n, generator=gen) < cfg.mask_p
        span = torch.randint(1, width + 1, (n,), generator=gen)
        start = (torch.rand(n, generator=gen) * (size - span + 1).clamp(min=1)).long()
        pos = torch.arange(size)[None, :]
        hit = on[:, None] & (pos >= start[:, None]) & (pos < (start + span)[:, None])
        shape = (n, 1, size, 1) if axis == 2 else (n, 1, 1, size)
        keep = keep * (~hit).to(x.dtype).view(shape)
    return x * keep


def time_shift(x, max_shift, gen):
    """Shift every map along its time axis by a random ``-max_shift ... max_shift`` frames, zero-filled."""
    if max_shift <= 0:
        return x
    n, w = x.shape[0], x.shape[-1]
    s = torch.randint(-max_shift, max_shift + 1, (n,), generator=gen)
    xp = torch.nn.functional.pad(x, (max_shift, max_shift))
    idx = (torch.arange(w)[None, :] + (max_shift - s)[:, None]).view(n, 1, 1, w).expand(*x.shape)
    return xp.gather(3, idx)


def mix_maps(x, cfg: AugmentConfig, gen):
    """Mixup of a batch: ``(x', partner, lam)`` with ``x' = lam * x + (1 - lam) * x[partner]``, ``partner`` a random
    permutation of the batch and ``lam`` drawn from Beta(``cfg.mixup``, ``cfg.mixup``), both from the torch
    generator ``gen``; the loss is then ``lam * loss(y) + (1 - lam) * loss(y[partner])``. With ``cfg.mixup`` 0:
    ``(x, None, 1.0)`` and nothing drawn."""
    if cfg.mixup == 0.0 or len(x) < 2:
        return x, None, 1.0
    partner = torch.randperm(len(x), generator=gen)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    lam = float(np.random.default_rng(seed).beta(cfg.mixup, cfg.mixup))
    return lam * x + (1.0 - lam) * x[partner], partner, lam
