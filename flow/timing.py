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

    Real inputs by the rule every command follows (``sim.stimulus.real_inputs``: the FSDD test recordings of
    ``data_dir``, else the model's own test vectors, else the recordings ``$SPIKESMITH_DATA`` or the download location
    holds); else :data:`RANDOM_LATENCY_SAMPLES` (or ``limit``) random INT8 maps.
    """
    from sim.stimulus import random_inputs, real_inputs
    from train.datadir import search_text

    stimulus = real_inputs(model, data_dir, limit=limit)
    if stimulus is not None:
        return stimulus.x, stimulus.labels, stimulus.source
    count = limit or RANDOM_LATENCY_SAMPLES
    stimulus = random_inputs(model, count, 0)
    return (stimulus.x, None, f"{stimulus.source}: the model carries no test vectors and no recordings were found "
                              f"({search_text()})")


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
