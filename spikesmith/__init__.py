"""spikesmith's Python API: the same code as the commands, as functions.

::

    import spikesmith

    model = spikesmith.load_model("models/fsdd_scnn")
    pred = spikesmith.classify(model, ["seven.wav"])      # bit-true class, readout, hardware cycles
    print(pred.labels[pred.classes[0]], pred.cycles[0])

Nothing is imported until it is used, so ``import spikesmith`` is cheap and needs no torch.
"""

from .predict import Prediction, classify, features, load_model, predict
from .training import evaluate, train

__all__ = ["Prediction", "load_model", "features", "predict", "classify", "train", "evaluate"]
