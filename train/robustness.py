"""``python -m train.robustness``: bit-true accuracy of a model on audio it was not tuned to.

    python -m train.robustness --model models/fsdd_scnn --data DIR [--split official] [--seed 0] [--json]

Every test recording of the split is perturbed (:mod:`train.perturb`), turned into its input map by the model's own
front-end (``train.features`` with the manifest's ``features``) and classified by the golden model, which the RTL
equals spike for spike: the figures are those of the hardware. The conditions:

==========================  ==================================================================================
``clean``                   the recordings as they are
``white``/``pink`` N dB     Gaussian white or pink noise at N dB SNR (mean-square powers over the recording)
``babble`` N dB             four recordings by other speakers, at equal power, N dB SNR (drawn from 200 of the
                            split's training recordings, so that no test recording is heard twice)
``dc`` N%                   a DC offset of N% of full scale
``gain x10 clipped``        ten times louder, saturated to 16-bit PCM
``8-bit PCM``               the recording through 8-bit unsigned PCM
``stretch`` R               R times as fast, pitch kept (phase vocoder)
``speed`` R                 R times as fast, pitch changed with it (resampling)
``reverb`` RT60 T s         played through a simulated shoebox room of reverberation time T (one of
                            :data:`ROOMS` rooms of 3-10 m drawn once for each T from a fixed seed, a set of its
                            own, apart from any training's rooms; :func:`train.perturb.room_impulse_response`)
==========================  ==================================================================================

Noise and babble draws are seeded per condition and recording (``--seed``), so a run repeats exactly.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import dataclass

import numpy as np

from . import perturb

__all__ = ["CONDITIONS", "Condition", "evaluate", "main"]


@dataclass(frozen=True)
class Condition:
    """One perturbation: ``name`` and ``apply(audio, rng, others, rate)`` (``others``: other speakers' recordings;
    ``rate``: the audio's sample rate)."""
    name: str
    apply: object


def _noise(kind, snr):
    make = {"white": perturb.white, "pink": perturb.pink}[kind]
    return Condition(f"{kind} noise {snr} dB",
                     lambda x, rng, others, rate: perturb.add_noise(x, make(x.size, rng), snr))


def _babble(snr):
    return Condition(f"babble {snr} dB", lambda x, rng, others, rate: perturb.babble(x, others, snr, rng))


#: Rooms simulated for each reverberation condition.
ROOMS = 24


class _Reverb:
    """Through one of :data:`ROOMS` rooms of reverberation time ``rt60``, simulated on first use (from the fixed
    seed ``[ROOM_SEED, rt60 in ms]``) and kept; the recording's own generator picks the room."""

    ROOM_SEED = 0x52455642

    def __init__(self, rt60):
        self.rt60, self._rooms = rt60, {}

    def __call__(self, x, rng, others, rate):
        if rate not in self._rooms:
            bank = np.random.default_rng([self.ROOM_SEED, int(round(1000 * self.rt60))])
            self._rooms[rate] = [perturb.room_impulse_response(self.rt60, bank, rate) for _ in range(ROOMS)]
        return perturb.reverb(x, self._rooms[rate][int(rng.integers(ROOMS))])


CONDITIONS = (
    Condition("clean", lambda x, rng, others, rate: x),
    *(_noise("white", snr) for snr in (20, 10, 5)),
    _noise("pink", 10),
    *(_babble(snr) for snr in (20, 10, 5)),
    Condition("dc 1%", lambda x, rng, others, rate: perturb.dc_offset(x, 0.01)),
    Condition("dc 10%", lambda x, rng, others, rate: perturb.dc_offset(x, 0.10)),
    Condition("gain x10 clipped", lambda x, rng, others, rate: perturb.gain(x, 10.0)),
    Condition("8-bit PCM", lambda x, rng, others, rate: perturb.pcm8(x)),
    Condition("stretch 0.8", lambda x, rng, others, rate: perturb.time_stretch(x, 0.8, rate)),
    Condition("stretch 1.2", lambda x, rng, others, rate: perturb.time_stretch(x, 1.2, rate)),
    Condition("speed 0.9", lambda x, rng, others, rate: perturb.speed(x, 0.9)),
    Condition("speed 1.1", lambda x, rng, others, rate: perturb.speed(x, 1.1)),
    *(Condition(f"reverb RT60 {t} s", _Reverb(t)) for t in (0.3, 0.6, 1.0)),
)


#: Training recordings read for babble.
BABBLE_POOL = 200


def evaluate(model, recordings, audio, pool, *, conditions=CONDITIONS, seed=0, progress=True):
    """Accuracy of ``model`` under every condition.

    Parameters
    ----------
    model : golden.manifest.Model
        With a ``features`` front-end.
    recordings : list of train.fsdd.Recording
        The test recordings (label = ``digit``, babble from other ``speaker`` values).
    audio : list of ndarray
        Their audio (``train.features.read_wav`` at the front-end's rate), in the same order.
    pool : list of (Recording, ndarray)
        Recordings babble is made of (those of the test recording's own speaker are left out).

    Returns
    -------
    list of dict
        Per condition: ``name``, ``correct``, ``samples``, ``accuracy``, ``failed`` (recordings the front-end
        refused after the perturbation; counted as wrong).
    """
    import warnings

    from tqdm import tqdm

    from golden.network import run

    from .features import FeatureError, FeatureParams, FeatureWarning, extract_audio

    params = FeatureParams.from_dict(model.features)
    labels = np.array([r.digit for r in recordings])
    rows = []
    for c, cond in enumerate(tqdm(conditions, desc="conditions", unit="condition", disable=not progress)):
        maps, failed = [], 0
        for i, (rec, x) in enumerate(zip(recordings, audio)):
            rng = np.random.default_rng([seed, c, i])
            others = [a for r, a in pool if r.speaker != rec.speaker]
            try:
                with warnings.catch_warnings():
                    # cropping and very quiet audio are what some conditions do on purpose
                    warnings.simplefilter("ignore", FeatureWarning)
                    maps.append(extract_audio(cond.apply(x, rng, others, params.sample_rate), params,
                                                name=rec.path.name))
            except (FeatureError, ValueError):
                maps.append(None)
                failed += 1
        ok = [k for k, m in enumerate(maps) if m is not None]
        correct = 0
        if ok:
            result = run(model, np.stack([maps[k] for k in ok]))
            correct = int(np.sum(result.classes == labels[ok]))
        rows.append({"name": cond.name, "correct": correct, "samples": len(recordings),
                     "accuracy": correct / len(recordings), "failed": failed})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m train.robustness",
        description="Bit-true accuracy of a model under noise, babble, DC offset, clipping, 8-bit audio, time "
                    "stretch and simulated rooms, on the test recordings of an FSDD split (the golden model, equal "
                    "to the RTL).")
    p.add_argument("--model", metavar="DIR", default=None, help="model directory (default: the shipped model)")
    p.add_argument("--data", metavar="DIR", help="FSDD recordings (default: $SPIKESMITH_DATA, then the download "
                                                 "location of `python -m train.fsdd download`)")
    p.add_argument("--split", default="official", help="official or speaker:NAME (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise and babble draws (default: %(default)s)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="use only N test recordings, evenly spread over the split (a quick look)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)

    from golden.manifest import ManifestError

    from .datadir import find_data, search_text
    from .features import FeatureError, FeatureParams, read_wav
    from .fsdd import FsddError, list_recordings, split
    try:
        if importlib.util.find_spec("pyroomacoustics") is None:
            raise FeatureError("the reverberation conditions simulate rooms with pyroomacoustics, which is not "
                               "installed: pip install -e '.[train]'")
        import spikesmith
        model = spikesmith.load_model(args.model)
        if not model.features:
            raise FeatureError(f"model {model.name} has no feature front-end: it does not take audio")
        data = find_data(args.data)
        if data is None:
            raise FsddError(f"no FSDD recordings found: give {search_text()}")
        train, test = split(list_recordings(data), args.split)
        if args.limit is not None:
            if args.limit < 1:
                raise FsddError(f"--limit must be at least 1, not {args.limit}")
            test = [test[i] for i in np.unique(np.linspace(0, len(test) - 1, args.limit).round().astype(int))]
        rate = FeatureParams.from_dict(model.features).sample_rate
        audio = [read_wav(r.path, rate) for r in test]
        picked = np.random.default_rng(args.seed).choice(len(train), size=min(BABBLE_POOL, len(train)),
                                                         replace=False)
        pool = [(train[i], read_wav(train[i].path, rate)) for i in sorted(picked)]
    except (ManifestError, FeatureError, FsddError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = evaluate(model, test, audio, pool, seed=args.seed, progress=not args.quiet)
    print(f"model {model.name}, {len(test)} test recordings ({args.split} split), bit-true (golden model = RTL)")
    print(f"{'condition':<20} {'accuracy':>9} {'correct':>9}")
    for row in rows:
        note = f"  ({row['failed']} refused by the front-end)" if row["failed"] else ""
        print(f"{row['name']:<20} {row['accuracy']:>9.1%} {row['correct']:>5}/{row['samples']}{note}")
    if args.json:
        print(json.dumps({"model": model.name, "split": args.split, "seed": args.seed, "conditions": rows}))
    return 0


if __name__ == "__main__":
    from golden.cli import run_main
    sys.exit(run_main(main))
