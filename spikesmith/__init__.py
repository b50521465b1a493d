"""spikesmith's Python API: the same code as the commands, as functions.

::

    import spikesmith

    model = spikesmith.load_model("models/fsdd_scnn")
    pred = spikesmith.classify(model, ["seven.wav"])      # bit-true class, readout, hardware cycles
    print(pred.labels[pred.classes[0]], pred.cycles[0])
    result = spikesmith.build("models/fsdd_scnn", board="icebreaker")
    print(result.report["logic_cells"], result.report["fmax_mhz"])

``docs/getting-started.md`` walks from a fresh virtual environment through train, verify and build with these
functions. Nothing heavy is imported until it is used: ``import spikesmith`` is cheap and needs no torch.
"""

from .predict import Prediction, classify, features, load_model, predict
from .hardware import build, generate, plan, read_report, simulate
from .training import evaluate, train

__all__ = ["Prediction", "load_model", "features", "predict", "classify", "train", "evaluate", "plan", "generate",
           "simulate", "build", "read_report"]
