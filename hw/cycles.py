"""The cycle model: the exact cycle count of one inference of the generated hardware (:class:`hw.network.Network`).

From a plan (:func:`hw.plan.plan`) and the spike trains of the golden model (``golden.network.run(model, x).spikes``),
:func:`cycles` returns, per sample, the number of cycles that the network's cycle counter reports: from the cycle of
the first input transfer (cycle 0) to the cycle of the result transfer, both counted, with the environment's stalls
left out. It is vectorized over the samples (a loop over time steps and layers only), so a whole data set takes
milliseconds.

The model is the layers' timelines chained: each kind states its own part beside the RTL that causes it
(``timeline`` in :mod:`hw.conv`, :mod:`hw.pool`, :mod:`hw.dense`, :mod:`hw.readout`; the step buffer's delay in
:mod:`hw.stepbuffer`). A timeline takes the cycles at which its producer's end-of-step markers were transferred
(``None`` for the first layer), its input and output spikes, and returns its own markers' cycles, its busy cycles and
the cycle it finishes; the final layer's timeline also returns the total (see docs/hardware.md).

:func:`dense_cycles` is the same timeline for the dense schedule (zero-skipping off: every neuron of every layer
transferred at every step), and :func:`lower_bound` each layer's operations divided by its parallel units (each
kind's ``work``), layers one after another.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["CycleReport", "cycles", "dense_cycles", "lower_bound", "predict", "format_cycles"]


@dataclass
class CycleReport:
    """Cycles of a batch of ``N`` inferences.

    Members
    -------
    total : ndarray (N,) int64
        What the hardware's cycle counter reports.
    layers : dict of str to dict
        Per layer: ``busy`` (N,) cycles the core works (the conv core: load to its last marker; a dense core: the
        sum of its step times; a pool: 0) and ``finish`` (N,) the cycle its last step ends.
    """
    total: np.ndarray
    layers: dict


def _check_spikes(plan, spikes):
    n = None
    for lp in plan.layers[:-1]:  # the readout has no spikes
        if lp.name not in spikes:
            raise ValueError(f"spikes of layer {lp.name} missing (model {plan.model.name} has layers "
                             f"{', '.join(l.name for l in plan.layers)})")
        got = np.shape(spikes[lp.name])
        want = (plan.time_steps, int(np.prod(lp.out_shape)))
        if len(got) != 3 or tuple(got[1:]) != want or (n is not None and got[0] != n):
            raise ValueError(f"spikes of layer {lp.name} must have shape (N, {want[0]}, {want[1]}), not {got}: "
                             f"the spikes of another model or plan?")
        n = got[0]


def cycles(plan, spikes):
    """Exact cycles of inferences with zero-skipping (what the hardware does).

    Parameters
    ----------
    plan : hw.plan.Plan
    spikes : dict of str to ndarray (N, T, n) bool
        ``golden.network.run(plan.model, x).spikes``.

    Returns
    -------
    CycleReport

    Raises
    ------
    ValueError
        If the spikes do not belong to the plan's model (a layer missing, another shape).
    """
    _check_spikes(plan, spikes)
    markers = inputs = None
    layers = {}
    total = None
    for lp in plan.layers:
        outputs = spikes.get(lp.name)
        part = plan.kind(lp).timeline(lp, markers, inputs, outputs)
        layers[lp.name] = {"busy": np.asarray(part["busy"], dtype=np.int64),
                           "finish": np.asarray(part["finish"], dtype=np.int64)}
        if "total" in part:
            total = part["total"]
        markers, inputs = part["markers"], outputs
    return CycleReport(total=np.asarray(total, dtype=np.int64), layers=layers)


def dense_cycles(plan, samples=1):
    """Cycles of the dense schedule: every neuron of every layer spikes at every step.

    Returns
    -------
    CycleReport
        For ``samples`` identical rows (the dense schedule does not depend on the input).
    """
    ones = {lp.name: np.ones((samples, plan.time_steps, int(np.prod(lp.out_shape))), dtype=bool)
            for lp in plan.layers[:-1]}
    return cycles(plan, ones)


def lower_bound(plan, result):
    """Operations divided by parallel units, per layer, summed over the layers (N,).

    Each kind's ``work`` gives its layer's part: the conv core the largest of its input transfers, its
    multiply-accumulates with non-zero input over its multipliers and its neuron updates over its LIF units (the
    three overlap); a dense or readout core its accumulations over its lanes plus its neuron updates; a pool nothing.

    Parameters
    ----------
    plan : hw.plan.Plan
    result : golden.network.Result

    Returns
    -------
    ndarray (N,) int64
    """
    bound = np.zeros(len(result.classes), dtype=np.int64)
    for lp in plan.layers:
        bound = bound + plan.kind(lp).work(lp, result.ops)
    return bound


def predict(model, x, *, params=None, device=None):
    """Plan the hardware, run the golden model on ``x`` and return its :class:`CycleReport`."""
    from golden.network import run

    from .plan import plan
    return cycles(plan(model, device=device, params=params), run(model, x).spikes)


def format_cycles(value):
    """A cycle count as every report prints it: thousands separated, and the median of an even number of samples
    (the mean of the two middle ones) with its ``.5`` kept, so that every command shows the same figure."""
    value = float(value)
    return f"{int(value):,}" if value.is_integer() else f"{value:,.1f}"
