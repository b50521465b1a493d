"""Bit-true accuracy of a saved model on a FSDD split, through the golden model.

``python -m train.evaluate --model DIR --data DIR [--split official|speaker:NAME] [--json]`` makes the INT8 maps
of the split's test side with the feature parameters stored in the manifest, runs them through
:func:`golden.network.run` and prints the accuracy; with ``--json`` the last line is one JSON object with
``accuracy``, ``samples``, ``correct``, the per-class accuracy, the confusion matrix and the model hash.

``speaker:NAME`` only measures speaker independence for a model trained without that speaker
(``python -m train --split speaker:NAME``). The manifest's ``training`` record says which split a model was
trained on (the default model: the official one, which holds every speaker): when the chosen test side holds
recordings the model was trained on, a warning says how many, and the JSON object counts them in ``seen_in_training``
(``null`` when the manifest has no record).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from golden.cli import run_main

__all__ = ["golden_predict", "confusion", "evaluate", "training_caveat", "main"]


def golden_predict(model, x, *, batch: int = 150, progress: bool = True):
    """Classes and readouts of ``x`` (INT8 maps ``(N, C, H, W)``) through the golden model."""
    from golden.network import run
    from tqdm import tqdm
    classes, readouts = [], []
    for i in tqdm(range(0, len(x), batch), desc="golden", unit="batch", disable=not progress, leave=False):
        r = run(model, np.asarray(x[i:i + batch]))
        classes.append(r.classes)
        readouts.append(r.readout)
    return np.concatenate(classes), np.concatenate(readouts)


def confusion(labels, preds, n: int) -> np.ndarray:
    """Confusion matrix ``[true, predicted]`` of counts."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (np.asarray(labels), np.asarray(preds)), 1)
    return m


def evaluate(model_dir, data_dir, split: str = "official", *, progress: bool = True) -> dict:
    """Evaluate a saved model on the test side of ``split``; returns the figures as a dict.

    Raises
    ------
    golden.manifest.ManifestError, train.features.FeatureError, train.fsdd.FsddError
    """
    import golden.manifest as gm
    from .features import FeatureParams
    from .fsdd import list_recordings, load_dataset, seen_in_training, split as split_of
    model = gm.load(model_dir)
    params = FeatureParams.from_dict(model.features)
    recs = list_recordings(data_dir)
    seen = seen_in_training(model.training, recs, split_of(recs, split)[1])
    ds = load_dataset(data_dir, split, params, fit=False, test_only=True, progress=progress)
    if tuple(ds.x_test.shape[1:]) != tuple(model.input_shape):
        raise gm.ManifestError(f"features make maps of shape {ds.x_test.shape[1:]}, the model's input_shape is "
                               f"{list(model.input_shape)}")
    preds, _ = golden_predict(model, ds.x_test, progress=progress)
    cm = confusion(ds.y_test, preds, len(model.classes))
    correct = int(np.trace(cm))
    per_class = (np.diag(cm) / np.maximum(cm.sum(axis=1), 1)).round(4).tolist()
    return {"model": str(model_dir), "name": model.name, "model_hash": gm.model_hash(model), "split": split,
            "samples": int(len(preds)), "correct": correct, "accuracy": correct / max(1, len(preds)),
            "per_class_accuracy": per_class, "confusion": cm.tolist(),
            "errors": [ds.test_names[i] for i in np.flatnonzero(preds != ds.y_test)],
            "training": model.training, "seen_in_training": None if seen is None else len(seen)}


def training_caveat(res) -> str | None:
    """A warning line when the figures of :func:`evaluate` include recordings the model was trained on."""
    if res["seen_in_training"] is None:
        return (f"note: {res['model']} does not record its training split; the {res['split']} test side may hold "
                f"recordings it was trained on")
    if res["seen_in_training"]:
        return (f"warning: {res['seen_in_training']:,} of the {res['samples']:,} test recordings of split "
                f"{res['split']} were in the model's training data (split {res['training']['split']}): "
                f"this accuracy is not a measure of recordings it never heard")
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.evaluate",
        description="Bit-true accuracy of a spikesmith model on FSDD, computed by the golden model.")
    parser.add_argument("--model", help="model directory (default: the shipped default model)")
    parser.add_argument("--data", required=True, help="directory of FSDD WAV files")
    parser.add_argument("--split", default="official", help="official or speaker:NAME (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    from .util import model_or_default
    args.model = model_or_default(args.model)
    from .features import warnings_to_stderr
    with warnings_to_stderr():
        res = evaluate(args.model, args.data, args.split, progress=not args.quiet)
    caveat = training_caveat(res)
    if caveat:
        print(caveat, file=sys.stderr)
    print(f"{res['name']} on FSDD {res['split']} test split: {res['correct']}/{res['samples']} correct, "
          f"bit-true accuracy {100 * res['accuracy']:.2f}%")
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
