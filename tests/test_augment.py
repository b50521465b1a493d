"""Tests of the training-time augmentation (train/augment.py): seeded, bounded, babble from other speakers only."""

import numpy as np
import pytest
import torch

from train import augment
from train.augment import AugmentConfig, augmented_maps, mask_maps, mix_maps, perturb_once
from train.features import FeatureParams


def _speech(seed, seconds=0.6, rate=8000):
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    f0 = 120 + 40 * seed
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6)) * np.hanning(t.size)
    x = 0.3 * x / np.abs(x).max()
    pad = np.zeros(1200)
    return np.concatenate([pad, x + 0.001 * rng.standard_normal(t.size), pad])


def _params():
    p = FeatureParams(win_ms=32.0, hop_ms=16.0, dc_remove=True, cmn=True)
    return FeatureParams(**{**p.to_dict(), "mean": [0.0] * 16, "std": [5.0] * 16})


@pytest.mark.parametrize("kw,msg", [
    ({"copies": -1}, "augmentation copies must be a non-negative integer, not -1"),
    ({"noise_p": 1.5}, "augmentation noise_p must be a probability in 0 ... 1, not 1.5"),
    ({"snr_db": (10.0, 0.0)}, r"augmentation snr_db range 10.0 ... 0.0 is empty"),
    ({"speed": (0.0, 1.1)}, "augmentation speed factors must be positive, not 0.0"),
    ({"bands": -1}, "mask widths must be non-negative, not -1 bands / 4 frames"),
    ({"trim_jitter": -1.0}, r"augmentation trim_jitter must be in 0 \.\.\. 40 dB \(0: off\), not -1\.0"),
    ({"trim_jitter": float("nan")}, r"augmentation trim_jitter must be in 0 \.\.\. 40 dB \(0: off\), not nan"),
])
def test_config_is_checked(kw, msg):
    with pytest.raises(ValueError, match=f"^{msg}$"):
        AugmentConfig(**kw)


def test_augmented_maps_are_seeded_and_shaped():
    audio = [_speech(k) for k in range(4)]
    spk = ["a", "a", "b", "b"]
    cfg = AugmentConfig(copies=2)
    a = augmented_maps(audio, spk, _params(), cfg, seed=1, progress=False)
    b = augmented_maps(audio, spk, _params(), cfg, seed=1, progress=False)
    c = augmented_maps(audio, spk, _params(), cfg, seed=2, progress=False)
    assert a.shape == (2, 4, 1, 16, 48) and a.dtype == np.int8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])
    assert augmented_maps(audio, spk, _params(), AugmentConfig(copies=0), seed=1, progress=False).shape[0] == 0


def test_babble_is_made_of_other_speakers_only(monkeypatch):
    audio = [_speech(k, seconds=0.5 + 0.05 * k) for k in range(6)]  # the length tells which recording it is
    spk = ["a", "a", "a", "b", "b", "c"]
    speaker_of = {len(x): s for x, s in zip(audio, spk)}
    seen = []

    def spy(x, talkers, snr, rng, count=4):
        seen.append((speaker_of[len(x)], [speaker_of[len(t)] for t in talkers]))
        return x
    monkeypatch.setattr(augment.perturb, "babble", spy)
    cfg = AugmentConfig(copies=8, noise_p=1.0, speed_p=0.0)
    augmented_maps(audio, spk, _params(), cfg, seed=0, progress=False)
    assert len(seen) > 5, "babble is one of four noise kinds: 48 draws make some"
    for own, talkers in seen:
        assert talkers and own not in talkers


def test_perturb_once_clips_to_16_bits_and_keeps_the_input():
    x = _speech(0)
    before = x.copy()
    cfg = AugmentConfig(gain_db=(20.0, 20.0), clip_p=1.0, noise_p=0.0, speed_p=0.0, dc_p=0.0)
    y = perturb_once(x, np.random.default_rng(0), cfg, [])
    assert np.array_equal(x, before)
    assert y.max() <= 32767 / 32768 and y.min() >= -1.0
    assert np.mean(np.abs(y) >= 32767 / 32768) > 0.01  # loud parts saturate
    assert np.allclose(y * 32768, np.round(y * 32768))


def test_masks_zero_one_band_and_one_run_of_frames():
    gen = torch.Generator().manual_seed(0)
    x = torch.ones(64, 1, 16, 48)
    cfg = AugmentConfig(bands=2, frames=4, mask_p=1.0)
    y = mask_maps(x, cfg, gen)
    for m in y[:, 0]:
        rows = (m == 0).all(dim=1).sum().item()
        cols = (m == 0).all(dim=0).sum().item()
        assert 1 <= rows <= 2 and 1 <= cols <= 4
        assert ((m == 0).sum().item() == rows * 48 + cols * 16 - rows * cols)
    assert torch.equal(mask_maps(x, AugmentConfig(mask_p=0.0), gen), x)
    again = mask_maps(x, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(again, y)


def test_mixup_blends_each_map_with_a_partner_by_one_seeded_weight():
    x = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 1, 4, 6).clone()
    gen = torch.Generator().manual_seed(3)
    y, partner, lam = mix_maps(x, AugmentConfig(mixup=0.4), gen)
    assert 0.0 <= lam <= 1.0 and sorted(partner.tolist()) == list(range(8))
    assert torch.allclose(y, lam * x + (1 - lam) * x[partner])
    y2, partner2, lam2 = mix_maps(x, AugmentConfig(mixup=0.4), torch.Generator().manual_seed(3))
    assert lam2 == lam and torch.equal(partner2, partner) and torch.equal(y2, y)
    # the weights follow Beta(alpha, alpha): mostly near 0 or 1 for a small alpha, around 0.5 for a large one
    small = [mix_maps(x, AugmentConfig(mixup=0.1), gen)[2] for _ in range(400)]
    large = [mix_maps(x, AugmentConfig(mixup=8.0), gen)[2] for _ in range(400)]
    assert np.mean([min(v, 1 - v) < 0.1 for v in small]) > 0.6
    assert abs(np.mean(large) - 0.5) < 0.03 and np.std(large) < 0.2


def test_mixup_off_draws_nothing():
    x = torch.ones(8, 1, 4, 6)
    gen = torch.Generator().manual_seed(5)
    y, partner, lam = mix_maps(x, AugmentConfig(), gen)
    assert y is x and partner is None and lam == 1.0
    assert torch.equal(torch.rand(3, generator=gen), torch.rand(3, generator=torch.Generator().manual_seed(5)))
    with pytest.raises(ValueError, match=r"^augmentation mixup must be a Beta parameter in 0 \.\.\. 10 \(0: off\), "
                                         r"not -0\.5$"):
        AugmentConfig(mixup=-0.5)


# -- VTLP ------------------------------------------------------------------------------------------------------

def test_vtlp_config_is_checked():
    with pytest.raises(ValueError, match=r"^augmentation vtlp range 1\.1 \.\.\. 0\.9 is empty$"):
        AugmentConfig(vtlp=(1.1, 0.9))
    with pytest.raises(ValueError, match=r"^augmentation VTLP warp factors must be positive, not 0\.0$"):
        AugmentConfig(vtlp=(0.0, 1.1))
    with pytest.raises(ValueError, match=r"^augmentation vtlp_p must be a probability in 0 \.\.\. 1, not 2$"):
        AugmentConfig(vtlp_p=2)


def test_vtlp_off_draws_nothing_and_changes_no_map():
    """Old recipes (vtlp_p 0) draw exactly the numbers they drew before VTLP existed."""
    rng = np.random.default_rng(5)
    assert augment.vtlp_factor(rng, AugmentConfig()) == 1.0
    assert rng.random() == np.random.default_rng(5).random()
    audio = [_speech(k) for k in range(3)]
    spk = ["a", "b", "c"]
    off = augmented_maps(audio, spk, _params(), AugmentConfig(copies=2), seed=3, progress=False)
    unit = augmented_maps(audio, spk, _params(), AugmentConfig(copies=2, vtlp=(1.0, 1.0), vtlp_p=1.0), seed=3,
                          progress=False)
    assert np.array_equal(off, unit)  # alpha = 1 is no warp; the draw comes after every other one


def test_vtlp_factors_are_seeded_and_in_range():
    cfg = AugmentConfig(vtlp=(0.9, 1.1), vtlp_p=0.5)
    draws = [augment.vtlp_factor(np.random.default_rng([0, k]), cfg) for k in range(200)]
    assert draws == [augment.vtlp_factor(np.random.default_rng([0, k]), cfg) for k in range(200)]
    warped = [a for a in draws if a != 1.0]
    assert 60 < len(warped) < 140 and all(0.9 <= a <= 1.1 for a in warped)


def test_vtlp_changes_the_augmented_maps(monkeypatch):
    audio = [_speech(k) for k in range(3)]
    spk = ["a", "b", "c"]
    quiet = dict(copies=2, noise_p=0.0, clip_p=0.0, speed_p=0.0, dc_p=0.0)
    warps = []
    real = augment.vtlp_factor

    def spy(rng, cfg):
        warps.append(real(rng, cfg))
        return warps[-1]
    monkeypatch.setattr(augment, "vtlp_factor", spy)
    plain = augmented_maps(audio, spk, _params(), AugmentConfig(**quiet), seed=0, progress=False)
    assert warps == [1.0] * 6
    warps.clear()
    warped = augmented_maps(audio, spk, _params(), AugmentConfig(**quiet, vtlp=(0.85, 0.9), vtlp_p=1.0), seed=0,
                            progress=False)
    assert len(warps) == 6 and all(0.85 <= a <= 0.9 for a in warps)
    assert not np.array_equal(plain, warped)


@pytest.mark.parametrize("kw,msg", [
    ({"reverb_p": -0.1}, r"augmentation reverb_p must be a probability in 0 \.\.\. 1, not -0\.1"),
    ({"rt60": (0.8, 0.3)}, r"augmentation rt60 range 0\.8 \.\.\. 0\.3 is empty"),
    ({"rt60": (0.01, 0.3)}, r"augmentation reverberation times must lie in 0\.05 \.\.\. 3 s, not 0\.01 \.\.\. 0\.3"),
    ({"rooms": 0}, r"augmentation rooms must be an integer in 1 \.\.\. 1024, not 0"),
])
def test_room_config_is_checked(kw, msg):
    with pytest.raises(ValueError, match=f"^{msg}$"):
        AugmentConfig(**kw)


def test_rooms_off_simulate_nothing_and_change_no_map(monkeypatch):
    """Old recipes (reverb_p 0) simulate no room and draw exactly the numbers they drew before rooms existed."""
    def fail(*a, **k):
        raise AssertionError("a room was simulated")
    monkeypatch.setattr(augment.perturb, "room_impulse_response", fail)
    assert augment.room_bank(AugmentConfig(), 0, 8000) == []
    audio = [_speech(k) for k in range(3)]
    spk = ["a", "b", "c"]
    off = augmented_maps(audio, spk, _params(), AugmentConfig(copies=2), seed=3, progress=False)
    rng = np.random.default_rng(9)
    y = perturb_once(audio[0], rng, AugmentConfig(), [], rooms=[])
    assert np.array_equal(y, perturb_once(audio[0], np.random.default_rng(9), AugmentConfig(), []))
    assert off.shape == (2, 3, 1, 16, 48)


def test_rooms_are_seeded_and_change_the_maps():
    audio = [_speech(k) for k in range(3)]
    spk = ["a", "b", "c"]
    quiet = dict(copies=2, noise_p=0.0, clip_p=0.0, speed_p=0.0, dc_p=0.0, rooms=3, rt60=(0.6, 0.9))
    bank = augment.room_bank(AugmentConfig(**quiet, reverb_p=1.0), 4, 8000)
    again = augment.room_bank(AugmentConfig(**quiet, reverb_p=1.0), 4, 8000)
    assert len(bank) == 3 and all(np.array_equal(a, b) for a, b in zip(bank, again))
    assert not np.array_equal(bank[0], augment.room_bank(AugmentConfig(**quiet, reverb_p=1.0), 5, 8000)[0])
    dry = augmented_maps(audio, spk, _params(), AugmentConfig(**quiet), seed=4, progress=False)
    wet = augmented_maps(audio, spk, _params(), AugmentConfig(**quiet, reverb_p=1.0), seed=4, progress=False)
    assert np.array_equal(wet, augmented_maps(audio, spk, _params(), AugmentConfig(**quiet, reverb_p=1.0), seed=4,
                                              progress=False))
    assert not np.array_equal(dry, wet)


def _noise_kinds(monkeypatch, cfg, draws=400):
    """The noise kinds ``cfg`` draws over ``draws`` versions (babble material present)."""
    kinds = []
    monkeypatch.setattr(augment.perturb, "babble", lambda x, talkers, snr, rng, count=4: kinds.append("babble") or x)
    for name in ("white", "pink", "brown"):
        make = getattr(augment.perturb, name)
        monkeypatch.setattr(augment.perturb, name, lambda n, rng, _k=name, _m=make: kinds.append(_k) or _m(n, rng))
    x, other = _speech(0), _speech(1)
    for i in range(draws):
        augment._noise(x, np.random.default_rng([7, i]), cfg, [other])
    return kinds


def test_babble_share_follows_babble_p(monkeypatch):
    even = _noise_kinds(monkeypatch, AugmentConfig())
    assert all(150 // 2 < even.count(k) < 150 for k in augment.NOISE_KINDS), "unset: the four kinds equally likely"
    heavy = _noise_kinds(monkeypatch, AugmentConfig(babble_p=0.75))
    assert 260 < heavy.count("babble") < 340
    assert all(heavy.count(k) > 15 for k in ("white", "pink", "brown"))
    assert set(_noise_kinds(monkeypatch, AugmentConfig(babble_p=1.0), draws=50)) == {"babble"}
    assert "babble" not in _noise_kinds(monkeypatch, AugmentConfig(babble_p=0.0), draws=50)


def test_babble_p_without_babble_material_draws_the_other_kinds():
    x = _speech(0)
    y = augment._noise(x, np.random.default_rng(1), AugmentConfig(babble_p=1.0), [])
    assert y.shape == x.shape and not np.array_equal(x, y)


@pytest.mark.parametrize("p", [-0.5, 1.5])
def test_babble_p_is_checked(p):
    with pytest.raises(ValueError, match=rf"^augmentation babble_p must be a probability in 0 \.\.\. 1, not {p}$"):
        AugmentConfig(babble_p=p)


def test_trim_jitter_off_draws_nothing_and_keeps_the_front_end():
    rng = np.random.default_rng(5)
    p = _params()
    assert augment.trimmed_params(p, rng, AugmentConfig()) is p
    assert rng.random() == np.random.default_rng(5).random()


def test_trim_jitter_draws_seeded_levels_within_range_and_at_least_1_db():
    p = FeatureParams(**{**_params().to_dict(), "trim_db": 6.0})
    cfg = AugmentConfig(trim_jitter=10.0)
    levels = [augment.trimmed_params(p, np.random.default_rng([0, k]), cfg).trim_db for k in range(200)]
    assert levels == [augment.trimmed_params(p, np.random.default_rng([0, k]), cfg).trim_db for k in range(200)]
    assert min(levels) == 1.0 and 14.0 < max(levels) <= 16.0
    assert len(set(levels)) > 100  # a continuous draw, clamped below


def test_trim_jitter_moves_the_edges_of_the_augmented_maps(monkeypatch):
    """Only the trimming level differs (no other perturbation), so a changed map can only come from it; the
    speech's tail fades, so a level a few dB away keeps another number of frames."""
    audio = [_speech(k) for k in range(3)]
    spk = ["a", "b", "c"]
    quiet = dict(copies=2, noise_p=0.0, clip_p=0.0, speed_p=0.0, dc_p=0.0, gain_db=(0.0, 0.0))
    levels = []
    real = augment.trimmed_params

    def spy(params, rng, cfg):
        out = real(params, rng, cfg)
        levels.append(out.trim_db)
        return out
    monkeypatch.setattr(augment, "trimmed_params", spy)
    plain = augmented_maps(audio, spk, _params(), AugmentConfig(**quiet), seed=0, progress=False)
    assert levels == [_params().trim_db] * 6
    levels.clear()
    jittered = augmented_maps(audio, spk, _params(), AugmentConfig(**quiet, trim_jitter=20.0), seed=0,
                              progress=False)
    assert len(levels) == 6 and all(15.0 <= t <= 55.0 for t in levels) and len(set(levels)) == 6
    assert not np.array_equal(plain, jittered)
