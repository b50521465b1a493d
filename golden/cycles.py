"""The cycle model: the exact cycle count of one inference of the generated hardware (``hw.network.Network``).

From the model, the hardware plan (``hw.network.plan``) and the spike trains of the golden model
(``golden.network.run(model, x).spikes``), :func:`cycles` returns, per sample, the number of cycles that the
network's cycle counter reports: from the cycle of the first input transfer (cycle 0) to the cycle of the result
transfer, both counted, with the environment's stalls left out. It is vectorized over the samples (a loop over time
steps and layers only), so a whole data set takes milliseconds.

The timeline it computes (see ``docs/hardware.md``):

- **Front end** (conv core, then pools, which are combinational filters and add no cycle). The conv core loads
  ``C*H*W`` values (one per cycle), computes for ``compute`` cycles, then emits step by step from its spike bitmap:
  per bitmap word ``max(1, spikes in the word)`` cycles, per step one marker cycle, plus one cycle to fetch the
  first word. The end-of-step marker of step ``t`` is therefore transferred at cycle
  ``F(t) = load + compute + sum_{t' <= t} S(t')`` with ``S(t) = sum_words max(1, count) + 1``. Its output queue
  holds a whole sample, so nothing downstream ever holds it up.
- **Back end** (dense LIF layers and the readout). Each core reads a step buffer (``hw.fifo.StepBuffer``) that holds
  spikes as words of ``row`` neurons. With ``W(t)`` the cycle the step's input marker was written, the buffer starts
  at ``f = max(W(t) + 3, X(t-1) + 1)`` (``BUFFER_DELAY``: the buffer registers its input, its flags and count); for each word holding ``c > 0`` spikes, in order, it fetches the word at
  ``f`` and the core takes its spikes at ``a, a + G, ..., a + (c-1) G`` with ``a = max(f + 1, ready)`` (``G`` lane
  groups, ``ready`` the core's next free cycle, then ``a_last + G``), and the next fetch is at ``a_last + 1``. The
  core takes the marker at ``X = max(f, ready)``, sweeps its ``M`` neurons in ``X+1 .. X+M``; a LIF core writes its
  marker at ``X+M+1`` and takes input again from ``X+M+2``; the readout takes input again from ``X+M+1`` and, at the
  last step, transfers the result at ``X+M+1``: the inference takes ``X+M+2`` cycles.

:func:`dense_cycles` is the same timeline for the dense schedule (zero-skipping off: every input of every layer
processed at every step, every neuron of the conv map transferred), and :func:`lower_bound` the operations of each
layer divided by its parallel units, layers one after another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Cycles from a step buffer taking a step's marker to its first fetch (the buffer registers its input, then its
#: word flags and step count).
BUFFER_DELAY = 3

__all__ = ["BUFFER_DELAY", "CycleReport", "cycles", "dense_cycles", "lower_bound", "conv_marker_times", "predict"]


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


def _conv_geometry(model, plan):
    from hw.conv import geometry
    lp = plan.layers[0]
    return geometry(model.layers[0], lp.in_shape, model.time_steps, lp.lanes, lp.word_bits)


def conv_marker_times(model, plan, conv_spikes):
    """Cycle of the transfer of the conv core's end-of-step marker of every step.

    Parameters
    ----------
    model : golden.manifest.Model
    plan : hw.network.Plan
    conv_spikes : ndarray (N, T, Co*Ho*Wo) bool
        The conv layer's spikes.

    Returns
    -------
    ndarray (N, T) int64
    """
    geom = _conv_geometry(model, plan)
    spikes = np.asarray(conv_spikes, dtype=bool)
    n, steps = spikes.shape[0], geom.time_steps
    per_row = geom.out_height * geom.out_width
    wb, wpr = geom.word_bits, geom.words_per_row
    maps = spikes.reshape(n, steps, geom.out_channels, per_row)
    padded = np.zeros((n, steps, geom.out_channels, wpr * wb), dtype=np.int64)
    padded[..., :per_row] = maps
    counts = padded.reshape(n, steps, geom.out_channels, wpr, wb).sum(axis=4)
    per_step = np.maximum(counts, 1).sum(axis=(2, 3)) + 1
    return _conv_start(geom) + np.cumsum(per_step, axis=1)


def _conv_start(geom):
    """Cycles from the first input transfer to the conv core's emit phase: ``load + compute`` of its schedule."""
    from hw.conv import conv_schedule
    schedule = conv_schedule(geom, np.zeros((geom.time_steps, geom.neurons), dtype=bool))
    return schedule["load"] + schedule["compute"]


def _row_counts(spikes, row, rows):
    """Spikes per step-buffer word: (N, T, rows) from (N, T, n)."""
    spikes = np.asarray(spikes, dtype=bool)
    n, steps, width = spikes.shape
    padded = np.zeros((n, steps, rows * row), dtype=np.int64)
    padded[..., :width] = spikes
    return padded.reshape(n, steps, rows, row).sum(axis=3)


def _back_end(model, plan, marker_times, input_spikes):
    """Run the back-end recurrence; return (total, layers dict) for the back-end layers."""
    steps = model.time_steps
    n = marker_times.shape[0]
    written = marker_times
    layers = {}
    total = None
    for lp, layer in zip(plan.layers[plan.front:], model.layers[plan.front:]):
        counts = _row_counts(input_spikes[layer.name], lp.buffer_row, lp.buffer_rows)
        m_out, groups = layer.out_features, lp.groups
        free = np.zeros(n, dtype=np.int64)          # first cycle the core takes an input
        reader = np.zeros(n, dtype=np.int64)        # first cycle the buffer may start a step
        busy = np.zeros(n, dtype=np.int64)
        out_written = np.zeros((n, steps), dtype=np.int64)
        for t in range(steps):
            fetch = np.maximum(written[:, t] + BUFFER_DELAY, reader)
            ready = free
            for k in range(lp.buffer_rows):
                c = counts[:, t, k]
                first = np.maximum(fetch + 1, ready)
                last = first + (c - 1) * groups
                spiking = c > 0
                ready = np.where(spiking, last + groups, ready)
                fetch = np.where(spiking, last + 1, fetch)
            take = np.maximum(fetch, ready)          # the core takes the marker
            reader = take + 1
            events = counts[:, t].sum(axis=1)
            if lp.kind == "dense":
                out_written[:, t] = take + m_out + 1
                free = take + m_out + 2
                busy += events * groups + m_out + 2
            else:
                free = take + m_out + 1
                busy += events * groups + 1 + m_out
                if t == steps - 1:
                    busy += 1
                    total = take + m_out + 2
        layers[layer.name] = {"busy": busy, "finish": free}
        written = out_written
    return total, layers


def _report(model, plan, conv_spikes, input_spikes):
    conv = model.layers[0]
    markers = conv_marker_times(model, plan, conv_spikes)
    total, back = _back_end(model, plan, markers, input_spikes)
    layers = {conv.name: {"busy": markers[:, -1] + 1, "finish": markers[:, -1] + 1}}
    for layer in model.layers[1:plan.front]:
        layers[layer.name] = {"busy": np.zeros_like(total), "finish": markers[:, -1] + 1}
    layers.update(back)
    return CycleReport(total=total.astype(np.int64), layers=layers)


def _input_spikes(model, plan, spikes):
    """Input spike trains (N, T, n) of every back-end layer."""
    return {layer.name: spikes[prev.name]
            for prev, layer in zip(model.layers[plan.front - 1:], model.layers[plan.front:])}


def _check(model, plan):
    if plan.model != model.name or len(plan.layers) != len(model.layers) or plan.time_steps != model.time_steps:
        raise ValueError(f"plan of model {plan.model} does not belong to model {model.name}")


def cycles(model, plan, spikes):
    """Exact cycles of inferences with zero-skipping (what the hardware does).

    Parameters
    ----------
    model : golden.manifest.Model
    plan : hw.network.Plan
    spikes : dict of str to ndarray (N, T, n) bool
        ``golden.network.run(model, x).spikes``.

    Returns
    -------
    CycleReport
    """
    _check(model, plan)
    conv = model.layers[0].name
    return _report(model, plan, spikes[conv], _input_spikes(model, plan, spikes))


def dense_cycles(model, plan, samples=1):
    """Cycles of the dense schedule: every neuron transferred and every input processed at every step.

    Returns
    -------
    CycleReport
        For ``samples`` identical rows (the dense schedule does not depend on the input).
    """
    _check(model, plan)
    steps = model.time_steps
    shapes = model.shapes
    conv_n = int(np.prod(shapes[0][1]))
    ones = np.ones((samples, steps, conv_n), dtype=bool)
    inputs = {layer.name: np.ones((samples, steps, int(np.prod(in_shape))), dtype=bool)
              for layer, (in_shape, _) in zip(model.layers[plan.front:], shapes[plan.front:])}
    return _report(model, plan, ones, inputs)


def lower_bound(model, plan, result):
    """Operations divided by parallel units, per layer, summed over the layers (N,).

    - input and conv2d: the largest of the ``C*H*W`` input transfers on one port, the conv's multiply-accumulates with
      non-zero input (``event_ops``) over its multipliers (``lanes * C * Kh * Kw``) and its neuron updates over its
      LIF units (``lanes * T``) (the three can overlap);
    - dense and readout: ``event_ops`` over the lanes, plus ``neuron_updates`` over the one LIF unit;
    - pool: nothing (no arithmetic).

    Parameters
    ----------
    model : golden.manifest.Model
    plan : hw.network.Plan
    result : golden.network.Result

    Returns
    -------
    ndarray (N,) int64
    """
    _check(model, plan)
    conv, lp = model.layers[0], plan.layers[0]
    ops = result.ops
    n = len(result.classes)
    kh, kw = conv.kernel
    mults = lp.lanes * conv.in_channels * kh * kw
    macs = -(-np.asarray(ops[conv.name]["event_ops"], dtype=np.int64) // mults)
    updates = -(-int(ops[conv.name]["neuron_updates"]) // lp.lif_units)
    bound = np.maximum(np.maximum(macs, updates), int(np.prod(model.input_shape)))
    for layer, lpl in zip(model.layers[plan.front:], plan.layers[plan.front:]):
        bound += -(-np.asarray(ops[layer.name]["event_ops"], dtype=np.int64) // lpl.lanes)
        bound += -(-int(ops[layer.name]["neuron_updates"]) // lpl.lif_units)
    return bound


def predict(model, x, params=None):
    """Convenience: plan the hardware, run the golden model on ``x`` and return its :class:`CycleReport`."""
    from hw.network import plan as make_plan

    from .network import run
    return cycles(model, make_plan(model, params), run(model, x).spikes)
