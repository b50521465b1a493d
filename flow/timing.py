"""Latency and work per inference from the golden model and the cycle model, for the build report.

:func:`latency` runs the golden model over input maps (the FSDD test split when the data is there, else random maps)
and the cycle model of the generated hardware over its spikes: min / median / max cycles, microseconds at the clock,
inferences per second, and per layer the synaptic operations and the sparsity.
"""

import numpy as np

from .design import cycle_totals

__all__ = ["latency", "RANDOM_LATENCY_SAMPLES", "latency_inputs"]

#: Input maps for the latency figures when no FSDD data can be used.
RANDOM_LATENCY_SAMPLES = 64


def latency_inputs(model, data_dir, limit=None):
    """Input maps for the latency figures: ``(x, labels or None, source)``.

    The FSDD official test split through the model's own feature front-end when ``data_dir`` holds the recordings
    and the model has one; else :data:`RANDOM_LATENCY_SAMPLES` (or ``limit``) random INT8 maps.
    """
    if data_dir is not None and model.features is not None:
        from train.features import FeatureParams
        from train.fsdd import load_dataset

        params = FeatureParams.from_dict(model.features)
        dataset = load_dataset(data_dir, "official", params, fit=False, test_only=True, progress=False)
        x, y = dataset.x_test, dataset.y_test
        if limit is not None:
            x, y = x[:limit], y[:limit]
        return x, y, "FSDD official test split"
    from golden.randmodel import random_inputs

    count = limit or RANDOM_LATENCY_SAMPLES
    return (random_inputs(model, count, np.random.default_rng(0)), None,
            f"{count} random INT8 maps (no FSDD data or no feature front-end)")


def latency(model, plan, result, clock_hz, *, labels=None):
    """Latency and workload of ``model`` on the golden model's ``result`` for some input maps.

    Parameters
    ----------
    model : golden.manifest.Model
    plan
        The hardware plan (``flow.design.make_plan``).
    result : golden.network.Result
        ``golden.network.run(model, x)``.
    clock_hz : float
    labels : ndarray (N,), optional
        True classes, for the accuracy of the integer model.

    Returns
    -------
    dict
        ``samples``, ``cycles`` (min/median/max/mean), ``us`` (the same in microseconds), ``inferences_per_s`` (at
        the median), ``accuracy`` (or None), and ``layers``: per layer ``dense_ops``, ``event_ops`` (mean),
        ``sparsity`` (1 - event/dense), ``spike_rate`` (mean fraction of neurons spiking per step).
    """
    total = np.asarray(cycle_totals(plan, result.spikes), dtype=np.int64)
    stats = {"min": int(total.min()), "median": float(np.median(total)), "max": int(total.max()),
             "mean": float(total.mean())}
    us = {key: value / clock_hz * 1e6 for key, value in stats.items()}
    layers = []
    for layer in model.layers:
        ops = result.ops.get(layer.name, {"dense_ops": 0, "event_ops": [0]})
        dense_ops = int(ops["dense_ops"])
        event = float(np.mean(ops["event_ops"]))
        entry = {"layer": layer.name, "dense_ops": dense_ops, "event_ops": event,
                 "sparsity": (1.0 - event / dense_ops) if dense_ops else None, "spike_rate": None}
        spikes = result.spikes.get(layer.name)
        if spikes is not None and spikes.size:
            entry["spike_rate"] = float(spikes.mean())
        layers.append(entry)
    accuracy = None
    if labels is not None:
        accuracy = float(np.mean(np.asarray(result.classes) == np.asarray(labels)))
    return {
        "samples": int(len(total)),
        "cycles": stats,
        "us": us,
        "inferences_per_s": clock_hz / stats["median"],
        "synaptic_ops_per_inference": float(sum(entry["event_ops"] for entry in layers)),
        "dense_ops_per_inference": int(sum(entry["dense_ops"] for entry in layers)),
        "accuracy": accuracy,
        "layers": layers,
    }
