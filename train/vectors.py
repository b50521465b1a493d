"""``python -m train.vectors``: give a model the test vectors of its data set (INT8 maps and labels).

    python -m train.vectors --model models/fsdd_scnn --data DIR [--split official] [--out DIR]

The maps of the split's test side are made with the model's own front-end (the manifest's ``features``) and saved
into the model directory (``vectors.npz``, named in the manifest with its hash; docs/manifest.md), so that
``hw.build``, ``hw.bench``, ``sim`` and the board replay run on real inputs with no data set on disk. The model's
weights and its hash are unchanged. FSDD is CC BY-SA 4.0: the vectors carry that attribution in their ``source``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

__all__ = ["fsdd_vectors", "main"]

FSDD_SOURCE = ("FSDD {split} split, test side (Jakobovski/free-spoken-digit-dataset, commit {commit}, "
               "CC BY-SA 4.0), features by the model's front-end")


def fsdd_vectors(model, data, split="official", *, progress=True):
    """:class:`golden.vectors.TestVectors` of the test side of an FSDD split, made with ``model``'s features."""
    from golden.vectors import TestVectors

    from .features import FeatureError, FeatureParams
    from .fsdd import FSDD_COMMIT, load_dataset

    if not model.features:
        raise FeatureError(f"model {model.name} has no feature front-end: it takes no audio")
    ds = load_dataset(data, split, FeatureParams.from_dict(model.features), fit=False, test_only=True,
                      progress=progress)
    return TestVectors(x=ds.x_test.astype(np.int8), y=ds.y_test.astype(np.int64), names=list(ds.test_names),
                       source=FSDD_SOURCE.format(split=split, commit=FSDD_COMMIT[:7]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m train.vectors",
        description="Save the INT8 input maps and labels of an FSDD split's test side into a model directory, so "
                    "that the hardware flow runs on real inputs without the data set.")
    p.add_argument("--model", required=True, metavar="DIR", help="model directory")
    p.add_argument("--data", metavar="DIR", help="FSDD recordings (default: $SPIKESMITH_DATA, then the download "
                                                 "location of `python -m train.fsdd download`)")
    p.add_argument("--split", default="official", help="official or speaker:NAME (default: %(default)s)")
    p.add_argument("--out", metavar="DIR", help="write the model with its vectors here (default: --model itself)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)

    import golden.manifest as gm

    from .datadir import find_data, search_text
    from .features import warnings_to_stderr
    from .fsdd import FsddError

    model = gm.load(args.model)
    data = find_data(args.data)
    if data is None:
        raise FsddError(f"no FSDD recordings found: give {search_text()}")
    with warnings_to_stderr():
        model.test_vectors = fsdd_vectors(model, data, args.split, progress=not args.quiet)
    out = args.out or args.model
    gm.save(model, out)
    x, y = model.test_vectors.x, model.test_vectors.y
    print(f"{out}: {len(y)} test vectors ({args.split} split, {x.nbytes:,} bytes of INT8 maps) saved beside the "
          f"weights; model hash unchanged ({gm.model_hash(model)[:12]})")
    return 0


if __name__ == "__main__":
    from golden.cli import run_main
    sys.exit(run_main(main))
