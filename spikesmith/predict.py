"""Bit-true inference in software: features exactly as in training, the golden model, the hardware's cycles.

:func:`predict` runs INT8 input maps through the golden model (``golden.network.run``) and the cycle model of the
generated hardware; :func:`classify` does the same for WAV files, making their input maps with the model's own
front-end parameters (``train.features.extract`` with the manifest's ``features``), as the trainer and the board host
tool do. Nothing here needs torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Prediction", "load_model", "features", "predict", "classify"]


@dataclass
class Prediction:
    """Bit-true results of a batch of ``N`` samples.

    Members
    -------
    classes : ndarray (N,) int64
        The class index (the lowest index among equal readout values).
    labels : list of str
        The class names from the manifest.
    readout : ndarray (N, K) int64
        The readout layer's values after the last time step.
    cycles : ndarray (N,) int64
        Cycles the generated hardware takes from the first input value to the result (the cycle model, equal to the
        RTL's own counter).
    spikes : dict of str to ndarray (N, T, n) bool
        Spike trains of every spiking layer.
    """
    classes: np.ndarray
    labels: list
    readout: np.ndarray
    cycles: np.ndarray
    spikes: dict

    def latency_us(self, clock_mhz):
        """Latency in microseconds at ``clock_mhz``."""
        return self.cycles / float(clock_mhz)


def load_model(path=None):
    """Load a model directory (default: the shipped default model).

    Raises
    ------
    golden.manifest.ManifestError
        If the directory is not a valid model; the message names the field or file.
    """
    from golden.manifest import load
    if path is None:
        from hw.build import default_model_dir
        path = default_model_dir()
    return load(path)


def features(wav, model):
    """The INT8 input map ``(C, H, W)`` of one WAV file, made exactly as in training.

    Raises
    ------
    train.features.FeatureError
        If the file cannot be read or the model has no feature front-end.
    """
    from train.features import FeatureError, FeatureParams, extract
    if not model.features:
        raise FeatureError(f"model {model.name} has no feature front-end in its manifest: it takes INT8 maps of "
                           f"shape {tuple(model.input_shape)}, not audio")
    return extract(wav, FeatureParams.from_dict(model.features))


def predict(model, x, *, params=None):
    """Bit-true classes, readouts, spike trains and hardware cycles of INT8 input maps.

    Parameters
    ----------
    model : golden.manifest.Model
    x : array (N, C, H, W) or (C, H, W) of integers in -128 ... 127
    params : dict, optional
        Hardware plan overrides (as ``--params`` of the commands); they change the cycles, not the results.

    Returns
    -------
    Prediction
    """
    from golden.network import run
    from hw.cycles import cycles
    from hw.plan import plan

    x = np.asarray(x)
    if x.ndim == len(model.input_shape):
        x = x[None]
    result = run(model, x)
    report = cycles(plan(model, params=params), result.spikes)
    return Prediction(classes=result.classes, labels=list(model.classes), readout=result.readout,
                      cycles=report.total, spikes=result.spikes)


def classify(model, wavs, *, params=None):
    """:func:`predict` on the input maps of WAV files (one batch); returns a :class:`Prediction`."""
    maps = np.stack([features(Path(wav), model) for wav in wavs])
    return predict(model, maps, params=params)
