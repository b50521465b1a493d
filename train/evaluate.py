"""Bit-true accuracy of a saved model on a FSDD split, through the golden model.

``python -m train.evaluate --model DIR --data DIR [--split official|speaker:NAME] [--json]`` makes the INT8 maps
of the split's test side with the feature parameters stored in the manifest, runs them through
:func:`golden.network.run` and prints the accuracy; with ``--json`` the last line is one JSON object with
``accuracy``, ``samples``, ``correct``, the per-class accuracy, the confusion matrix and the model hash.

Note that ``speaker:NAME`` only measures speaker independence for a model trained without that speaker
(``python -m train --split speaker:NAME``); the default model was trained on the official split, which holds
every speaker.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

__all__ = ["golden_predict", "confusion", "evaluate", "main"]


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
    from .fsdd import load_dataset
    model = gm.load(model_dir)
    params = FeatureParams.from_dict(model.features)
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
            "errors": [ds.test_names[i] for i in np.flatnonzero(preds != ds.y_test)]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.evaluate",
        description="Bit-true accuracy of a spikesmith model on FSDD, computed by the golden model.")
    parser.add_argument("--model", default="models/fsdd_scnn", help="model directory (default: %(default)s)")
    parser.add_argument("--data", required=True, help="directory of FSDD WAV files")
    parser.add_argument("--split", default="official", help="official or speaker:NAME (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    import golden.manifest as gm
    from .features import FeatureError
    from .fsdd import FsddError
    try:
        res = evaluate(args.model, args.data, args.split, progress=not args.quiet)
    except (gm.ManifestError, FeatureError, FsddError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{res['name']} on FSDD {res['split']} test split: {res['correct']}/{res['samples']} correct, "
          f"bit-true accuracy {100 * res['accuracy']:.2f}%")
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
