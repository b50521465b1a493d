"""Stimulus for the RTL testbenches: real data, random data, extremes and random models.

- :func:`fsdd_test_inputs`: the official FSDD test split (file index 0-4, 300 recordings) made into INT8 input maps
  with the model's own feature front-end (``train.features``, parameters from the manifest's ``features``);
- :func:`random_inputs`: random maps (dense noise, sparse maps, saturated values), from ``golden.randmodel``;
- :func:`extreme_inputs`: maps that drive activity to its limits: all zeros, all +127, all -128, and +127 / -128
  alternating in raster order (both phases);
- :func:`random_models`: small random valid manifests (other shapes, widths, reset modes, time steps), saved into a
  directory for the run, and :func:`random_params`: random values of every option each layer kind accepts (lanes,
  word widths, spike logic, input memory, DSP products, weights in SPRAM), so that the generator is verified and
  not one plan.

:func:`real_inputs` is the one rule for real inputs (``--data``, else the model's test vectors, else the recordings
found by ``train.datadir``); :func:`mixed` puts a run together: the extremes first, then real inputs, else random
maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Stimulus", "extreme_inputs", "random_inputs", "fsdd_test_inputs", "model_vectors", "real_inputs",
           "random_models", "random_params", "mixed", "EXTREMES"]

#: Names of the extreme input maps, in the order :func:`extreme_inputs` returns them.
EXTREMES = ("zeros", "max", "min", "alternating", "alternating_inverse")


@dataclass
class Stimulus:
    """A batch of input maps with a name per sample.

    Members
    -------
    x : ndarray (N, C, H, W) int8
    names : list of str
        What each sample is (``"extreme:max"``, ``"fsdd:3_jackson_0"``, ``"random:17"``).
    labels : ndarray (N,) int64
        The true class where known (FSDD), else -1.
    source : str
        What the samples are, for the messages that say which inputs a command used.
    """

    x: np.ndarray
    names: list
    labels: np.ndarray
    source: str = ""

    def __len__(self):
        return int(self.x.shape[0])

    def __add__(self, other: "Stimulus") -> "Stimulus":
        return Stimulus(np.concatenate([self.x, other.x]), self.names + other.names,
                        np.concatenate([self.labels, other.labels]),
                        ", then ".join(part for part in (self.source, other.source) if part))

    def take(self, n: int) -> "Stimulus":
        """The first ``n`` samples."""
        return Stimulus(self.x[:n], self.names[:n], self.labels[:n], self.source if n else "")


def _shape(model) -> tuple:
    return tuple(int(d) for d in model.input_shape)


def extreme_inputs(model) -> Stimulus:
    """The extreme maps of :data:`EXTREMES` for ``model``'s input shape."""
    shape = _shape(model)
    size = int(np.prod(shape))
    alternating = np.where(np.arange(size) % 2 == 0, 127, -128).reshape(shape)
    maps = [np.zeros(shape), np.full(shape, 127), np.full(shape, -128), alternating, -1 - alternating]
    x = np.stack(maps).astype(np.int8)
    return Stimulus(x, [f"extreme:{name}" for name in EXTREMES], np.full(len(maps), -1, dtype=np.int64),
                    f"{len(maps)} extreme maps")


def random_inputs(model, n: int, seed: int) -> Stimulus:
    """``n`` random maps (see ``golden.randmodel.random_inputs``), reproducible from ``seed``."""
    from golden.randmodel import random_inputs as draw
    rng = np.random.default_rng(seed)
    x = np.asarray(draw(model, n, rng), dtype=np.int8).reshape((n,) + _shape(model))
    return Stimulus(x, [f"random:{seed}:{k}" for k in range(n)], np.full(n, -1, dtype=np.int64),
                    f"{n} random INT8 maps (seed {seed})")


def fsdd_test_inputs(model, data_dir, *, limit: int | None = None, progress: bool = False) -> Stimulus:
    """The official FSDD test split through ``model``'s feature front-end.

    Parameters
    ----------
    model : golden.manifest.Model
        Must carry ``features`` (a trained model does; random models do not).
    data_dir : path
        The FSDD ``recordings`` directory (or its parent).
    limit : int, optional
        Take this many recordings, spread evenly over the split (digits and speakers), instead of all 300.
    progress : bool
        Show a progress bar.

    Raises
    ------
    ValueError
        When the model has no feature front-end or its input shape differs from the front-end's map.
    """
    from train.features import FeatureParams, extract
    from train.fsdd import list_recordings, split

    if not model.features:
        raise ValueError(f"model {model.name} has no 'features' object; FSDD audio cannot be made into its input")
    params = FeatureParams.from_dict(model.features)
    if tuple(params.map_shape) != _shape(model):
        raise ValueError(f"model {model.name}: input shape {_shape(model)} differs from the feature map "
                         f"{tuple(params.map_shape)} of its front-end")
    _, test = split(list_recordings(data_dir), "official")
    if limit is not None and limit < len(test):
        picks = np.unique(np.linspace(0, len(test) - 1, num=max(limit, 1)).round().astype(int))
        test = [test[i] for i in picks]
    items = test
    if progress:
        from tqdm import tqdm
        items = tqdm(test, desc="features", unit="file", leave=False)
    x = np.stack([extract(rec.path, params, warn_crop=False) for rec in items]).astype(np.int8)
    return Stimulus(x, [f"fsdd:{rec.path.stem}" for rec in test], np.array([rec.digit for rec in test],
                                                                              dtype=np.int64),
                    f"{len(test)} FSDD test recordings from {data_dir}")


def model_vectors(model, *, limit: int | None = None) -> Stimulus:
    """The test vectors ``model`` carries (``golden.vectors``), ``limit`` of them spread evenly, or ``None``."""
    vectors = model.test_vectors
    if vectors is None:
        return None
    picks = np.arange(len(vectors))
    if limit is not None and limit < len(vectors):
        picks = np.unique(np.linspace(0, len(vectors) - 1, num=max(limit, 1)).round().astype(int))
    return Stimulus(vectors.x[picks], [f"vector:{vectors.names[i]}" for i in picks], vectors.y[picks],
                    f"{len(picks)} test vectors of model {model.name} ({vectors.source})")


def real_inputs(model, data=None, *, limit: int | None = None, progress: bool = False) -> Stimulus:
    """Real inputs for ``model``, or ``None`` when there are none: the FSDD test recordings of ``data`` when given,
    else the test vectors the model carries, else the recordings that ``train.datadir.find_data`` finds
    (``$SPIKESMITH_DATA``, the download location). Every command that reports figures on real inputs uses this one
    rule and prints the :attr:`Stimulus.source` it got.

    Raises
    ------
    ValueError
        When ``data`` is given but the model has no feature front-end to make maps of its recordings.
    """
    if data is not None:
        return fsdd_test_inputs(model, data, limit=limit, progress=progress)
    vectors = model_vectors(model, limit=limit)
    if vectors is not None:
        return vectors
    from train.datadir import find_data
    found = find_data()
    if found is not None and model.features:
        return fsdd_test_inputs(model, found, limit=limit, progress=progress)
    return None


def random_models(seed: int, count: int, directory: Path | str, **overrides) -> list:
    """Draw ``count`` random small models and save each into ``directory/random_<seed>``.

    Returns
    -------
    list of (golden.manifest.Model, Path)
    """
    from golden.manifest import load, save
    from golden.randmodel import random_model

    directory = Path(directory)
    out = []
    for k in range(count):
        model = random_model(seed + k, **overrides)
        path = directory / f"random_{seed + k}"
        save(model, path)
        out.append((load(path), path))
    return out


def random_params(model, seed: int, *, device=None) -> dict:
    """Random hardware parameters for ``model``: each layer kind draws from every option it accepts
    (``random_options`` of :mod:`hw.kinds`: conv lanes, word widths, spike logic, input memory, DSP products; dense
    and readout lanes, weights in SPRAM), so that a run covers other plans than the default one."""
    from hw.device import get
    from hw.kinds import kinds_of

    device = device or get("iCE40UP5K")
    rng = np.random.default_rng(seed)
    params = {}
    for layer, kind, (in_shape, _) in zip(model.layers, kinds_of(model.layers), model.shapes):
        options = kind.random_options(layer, tuple(int(d) for d in in_shape), device, rng,
                                      time_steps=model.time_steps)
        if options:
            params[layer.name] = options
    return params


def mixed(model, *, samples: int, seed: int = 0, data_dir=None, extremes: bool = True,
          progress: bool = False) -> Stimulus:
    """A run of ``samples`` maps: the extremes, then FSDD test samples (if possible) or random maps.

    Parameters
    ----------
    model : golden.manifest.Model
    samples : int
        Total number of samples (at least 1); the extremes count towards it.
    seed : int
        Seed of the random maps.
    data_dir : path, optional
        FSDD recordings (:func:`real_inputs` decides which real inputs are used).
    extremes : bool
        Start with the extreme maps.

    Raises
    ------
    ValueError
        When ``data_dir`` is given but no sample would be taken from it (all ``samples`` are extremes).
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1, not {samples}")
    parts = extreme_inputs(model).take(samples) if extremes else None
    rest = samples - (len(parts) if parts is not None else 0)
    if data_dir is not None and rest <= 0:
        raise ValueError(f"--data {data_dir} would not be used: {samples} samples are all taken by the "
                         f"{len(EXTREMES)} extreme maps; ask for more samples or leave out the extremes")
    if rest > 0:
        more = real_inputs(model, data_dir, limit=rest, progress=progress)
        if more is None:
            more = random_inputs(model, rest, seed)
        elif len(more) < rest:
            more = more + random_inputs(model, rest - len(more), seed)
        parts = more if parts is None else parts + more
    return parts
