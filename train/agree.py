"""Exact agreement between the trainer's integer mode and the golden model.

After training, the exported manifest is run through :func:`golden.network.run` and the torch integer mode
(:func:`train.model.integer_forward`) on the same INT8 maps; the spike train of every LIF and pool layer and the
readout values must be identical, sample by sample. The first difference raises :class:`AgreementError` naming the
sample, layer, time step and neuron.

``python -m train.agree --model DIR --data DIR [--split official]`` runs the check on a saved model: the torch side
is then built from the manifest itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

import numpy as np
import torch

from golden.cli import run_main

from .model import integer_forward, int_layers_from_model

__all__ = ["AgreementError", "Agreement", "check_agreement", "main"]


class AgreementError(AssertionError):
    """The torch integer mode and the golden model differ; the message locates the first difference."""


@dataclass
class Agreement:
    """Outcome of a successful check: sample count, golden classes and readouts (for accuracy figures).

    ``values_compared`` counts the neuron-step slots compared (every neuron of every spiking layer at every step,
    spike or not); ``spikes`` the spikes among them (the events the RTL testbench counts).
    """
    samples: int
    classes: np.ndarray
    readout: np.ndarray
    values_compared: int
    spikes: int


def _first_difference(golden_res, readout, trains, names, readout_name, last_step, base, sample_names):
    """Locate the first difference of one batch, or ``None``.

    Within a sample the earliest time step wins, then the earliest layer of the network at that step (the causal
    origin: a difference propagates to later layers and later steps), then the lowest neuron index.
    """
    n = golden_res.readout.shape[0]
    for i in range(n):
        found = None
        for order, name in enumerate(names):
            g = golden_res.spikes[name][i]
            t = trains[name][i]
            if not np.array_equal(g, t):
                step, neuron = (int(v[0]) for v in np.nonzero(g != t))
                if found is None or (step, order) < found[:2]:
                    found = (step, order, name, neuron, int(g[step, neuron]), int(t[step, neuron]))
        if found is not None:
            step, _, name, neuron, gs, ts = found
            return (f"sample {base + i}{sample_names(base + i)}, layer {name}, time step {step}, neuron {neuron}: "
                    f"golden spike {gs}, torch spike {ts}")
        if not np.array_equal(golden_res.readout[i], readout[i]):
            k = int(np.nonzero(golden_res.readout[i] != readout[i])[0][0])
            return (f"sample {base + i}{sample_names(base + i)}, layer {readout_name}, time step {last_step}, "
                    f"neuron {k}: golden readout {int(golden_res.readout[i, k])}, torch readout {int(readout[i, k])}")
    return None


def check_agreement(model, x, int_layers=None, *, batch: int = 100, names=None, progress: bool = True) -> Agreement:
    """Run ``model`` through the golden model and the torch integer mode on ``x`` and compare everything.

    Parameters
    ----------
    model : golden.manifest.Model
        The exported (or loaded) model.
    x : np.ndarray
        INT8 maps ``(N, C, H, W)``.
    int_layers : list of IntLayer, optional
        The torch side (default: built from ``model``; the trainer passes its own network's integer layers).
    names : list of str, optional
        Sample names used in the error message (file names).

    Raises
    ------
    AgreementError
        At the first sample whose spike trains or readout differ, naming sample, layer, time step and neuron.
    """
    from golden.network import run
    from tqdm import tqdm
    layers = int_layers if int_layers is not None else int_layers_from_model(model)
    label = (lambda i: f" ({names[i]})") if names is not None else (lambda i: "")
    classes, readouts, compared, spikes = [], [], 0, 0
    for base in tqdm(range(0, len(x), batch), desc="agreement", unit="batch", disable=not progress, leave=False):
        xb = np.asarray(x[base:base + batch])
        g = run(model, xb)
        with torch.no_grad():
            r, trains = integer_forward(layers, torch.tensor(xb.astype(np.int64), dtype=torch.float64),
                                        model.time_steps, record=True)
        r = r.numpy().astype(np.int64)
        trains = {k: v.numpy() for k, v in trains.items()}
        order = [l.name for l in model.layers if l.name in g.spikes]
        if set(trains) != set(g.spikes):
            raise AgreementError(f"spiking layers differ: golden {sorted(g.spikes)}, torch {sorted(trains)}")
        for name in order:
            if trains[name].shape != g.spikes[name].shape:
                raise AgreementError(f"layer {name}: spike trains of shape {trains[name].shape} (torch) and "
                                     f"{g.spikes[name].shape} (golden)")
        where = _first_difference(g, r, trains, order, model.layers[-1].name, model.time_steps - 1, base, label)
        if where is not None:
            raise AgreementError(f"torch integer mode and golden model differ: {where}")
        compared += sum(int(v.size) for v in trains.values())
        spikes += sum(int(np.count_nonzero(v)) for v in trains.values())
        classes.append(g.classes)
        readouts.append(g.readout)
    return Agreement(len(x), np.concatenate(classes), np.concatenate(readouts), compared, spikes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.agree",
        description="Check that the torch integer mode and the golden model give identical spike trains and "
                    "readouts for a saved model on a FSDD split.")
    parser.add_argument("--model", help="model directory (default: the shipped default model)")
    parser.add_argument("--data", required=True, help="directory of FSDD WAV files")
    parser.add_argument("--split", default="official", help="official or speaker:NAME (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    from .util import model_or_default
    args.model = model_or_default(args.model)
    import golden.manifest as gm
    from .features import FeatureError, FeatureParams
    from .fsdd import FsddError, load_dataset
    try:
        model = gm.load(args.model)
        ds = load_dataset(args.data, args.split, FeatureParams.from_dict(model.features), fit=False)
        res = check_agreement(model, ds.x_test, names=ds.test_names)
    except (gm.ManifestError, FeatureError, FsddError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except AgreementError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    acc = float(np.mean(res.classes == ds.y_test))
    print(f"agreement: {res.samples} samples identical: {res.values_compared:,} neuron-step values "
          f"({res.spikes:,} spikes) and every readout; bit-true accuracy {acc:.2%}")
    if args.json:
        print(json.dumps({"agree": True, "samples": res.samples, "values_compared": res.values_compared,
                          "spikes": res.spikes,
                          "accuracy": acc}))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
