"""The bit-true NumPy model of a spikesmith network: the executable form of docs/arithmetic.md.

:func:`run` takes a :class:`golden.manifest.Model` and a batch of INT8 input maps and returns, per sample, the class,
the readout values, the spike train of every LIF and pool layer, and operation counts. Everything is integer
arithmetic in int64, vectorized over the batch. Matrix products are formed in float64, which is exact here: every
operand and every partial sum is an integer below 2**53 (checked in :func:`_exact_matmul`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .manifest import Integrate, ManifestError, signed_range

__all__ = ["Result", "run", "saturate", "leak", "lif_step", "integrate_step", "conv2d_current", "conv2d_taps",
           "or_pool", "dense_current", "first_layer_current", "check_input"]

_EXACT = float(1 << 53)


@dataclass
class Result:
    """What :func:`run` returns for a batch of ``N`` samples.

    Members
    -------
    classes : ndarray (N,) int64
        Index of the largest readout value; the lowest index among equals.
    readout : ndarray (N, K) int64
        The readout layer's values after the last time step.
    spikes : dict of str to ndarray (N, T, n) bool
        Spike train of every LIF and pool layer, neurons flattened row-major ``(c, y, x)``.
    ops : dict of str to dict
        Per layer: ``event_ops`` (N,) accumulations with zero inputs skipped, ``dense_ops`` the dense schedule's
        multiply-accumulates, ``neuron_updates`` and ``spike_count`` (N,).
    membranes : dict of str to ndarray (N, T, n) int64
        Membrane (or readout) value after every step, only when ``run(..., record_membranes=True)``.
    """
    classes: np.ndarray
    readout: np.ndarray
    spikes: dict
    ops: dict
    membranes: dict = field(default_factory=dict)

    @property
    def event_ops(self):
        """(N,) synaptic accumulations per sample, all layers, zero inputs skipped."""
        return sum(o["event_ops"] for o in self.ops.values())

    @property
    def dense_ops(self):
        """Multiply-accumulates per sample of the dense schedule, all layers."""
        return sum(o["dense_ops"] for o in self.ops.values())


# -- primitives ----------------------------------------------------------------------------------------------------

def saturate(v, bits):
    """Clamp ``v`` to the signed range of ``bits`` bits (``sat_B`` of arithmetic.md)."""
    lo, hi = signed_range(bits)
    return np.clip(np.asarray(v, dtype=np.int64), lo, hi)


def leak(v, k):
    """``v - (v >> k)`` with an arithmetic shift: the membrane times ``1 - 2**-k``, rounded towards +inf."""
    v = np.asarray(v, dtype=np.int64)
    return v - (v >> k)


def lif_step(v, current, neuron):
    """One LIF update (arithmetic.md section 5).

    Parameters
    ----------
    v : array of int
        Membranes after the previous step (0 before the first step); the reset flag is derived from them.
    current : array of int
        Synaptic currents of this step.
    neuron : golden.manifest.LIF

    Returns
    -------
    (ndarray int64, ndarray bool)
        The new membranes and this step's spikes.
    """
    v = np.asarray(v, dtype=np.int64)
    current = np.asarray(current, dtype=np.int64)
    theta = neuron.threshold
    reset = v > theta
    if neuron.reset == "subtract":
        u = leak(v, neuron.leak_shift) + current - reset * np.int64(theta)
    elif neuron.reset == "zero":
        u = np.where(reset, 0, leak(v, neuron.leak_shift)) + current
    else:
        raise ManifestError(f"reset {neuron.reset!r} is not 'subtract' or 'zero'")
    v_new = saturate(u, neuron.mem_bits)
    return v_new, v_new > theta


def integrate_step(r, current, neuron):
    """One readout update: ``sat(r + current)`` (arithmetic.md section 7)."""
    return saturate(np.asarray(r, dtype=np.int64) + np.asarray(current, dtype=np.int64), neuron.mem_bits)


def _exact_matmul(a, b):
    """``a @ b`` for integer operands, exactly, through float64 BLAS (all partial sums stay below 2**53)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size and b.size:
        bound = np.abs(a).max(initial=0) * np.abs(b).max(initial=0) * a.shape[-1]
        if bound >= _EXACT:
            raise OverflowError("integer product too large for the exact float64 path")
    return np.rint(a @ b).astype(np.int64)


def _windows(maps, layer):
    """(N, Ci, Ho, Wo, Kh, Kw) views of the zero-padded maps under every kernel position."""
    (ph, pw), (sh, sw), (kh, kw) = layer.padding, layer.stride, layer.kernel
    padded = np.pad(maps, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))
    return win[:, :, ::sh, ::sw]


def conv2d_current(x, layer):
    """Conv2d currents ``b + sum w * x`` of a batch ``x`` (N, Ci, H, W), INT8 maps or spikes: (N, Co, Ho, Wo) int64.

    One multiply-add of a strided view per tap: each product ``w * x`` fits 15 bits, the sums are int64.
    """
    (ph, pw), (sh, sw), (kh, kw) = layer.padding, layer.stride, layer.kernel
    x = np.asarray(x)
    n, ci, h, w = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    padded = np.pad(x.astype(np.int32), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    weights = layer.weights.astype(np.int32)
    out = np.empty((n, layer.out_channels, ho, wo), dtype=np.int64)
    for o in range(layer.out_channels):
        acc = np.full((n, ho, wo), int(layer.bias[o]), dtype=np.int64)
        for c in range(ci):
            for i in range(kh):
                for j in range(kw):
                    if weights[o, c, i, j]:
                        tap = padded[:, c, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw]
                        acc += weights[o, c, i, j] * tap
        out[:, o] = acc
    return out


def conv2d_taps(x, layer):
    """Count conv2d work per sample: ``(event_ops (N,), dense_ops)``, counting only taps inside the map."""
    x = np.asarray(x)
    inside = _windows(np.ones((1,) + x.shape[1:], dtype=np.int64), layer)
    nonzero = _windows((x != 0).astype(np.int64), layer)
    dense = int(inside.sum()) * layer.out_channels
    events = nonzero.sum(axis=(1, 2, 3, 4, 5)).astype(np.int64) * layer.out_channels
    return events, dense


def or_pool(spikes, kernel):
    """OR-pool binary maps (N, C, H, W) with a non-overlapping window; rows/columns that do not fill one are dropped."""
    s = np.asarray(spikes, dtype=bool)
    n, c, h, w = s.shape
    kh, kw = kernel
    ho, wo = h // kh, w // kw
    return s[:, :, :ho * kh, :wo * kw].reshape(n, c, ho, kh, wo, kw).any(axis=(3, 5))


def dense_current(spikes, layer):
    """Dense currents ``b + W s`` of input vectors (N, in): binary spikes, or the flattened INT8 map of a first
    layer. Returns (N, out) int64."""
    return _exact_matmul(np.asarray(spikes, dtype=np.int64), layer.weights.astype(np.int64).T) \
        + layer.bias.astype(np.int64)


def first_layer_current(x, layer):
    """Current of the first layer (conv2d or dense) on INT8 maps ``x`` (N, C, H, W), and its work.

    Returns
    -------
    (ndarray (N, n) int64, ndarray (N,) int64, int)
        The currents (neurons flattened row-major), ``event_ops`` (non-zero inputs only) and ``dense_ops``, all
        counted once per sample: the current is the same at every step (direct encoding).
    """
    x = np.asarray(x)
    n = x.shape[0]
    if layer.type == "conv2d":
        events, dense = conv2d_taps(x, layer)
        return conv2d_current(x, layer).reshape(n, -1), events, dense
    flat = x.reshape(n, -1)
    events = np.count_nonzero(flat, axis=1).astype(np.int64) * layer.out_features
    return dense_current(flat, layer), events, layer.in_features * layer.out_features


def check_input(model, x):
    """Return ``x`` as an int64 batch (N, C, H, W), refusing a wrong shape or a value outside INT8."""
    x = np.asarray(x)
    shape = tuple(model.input_shape)
    if x.shape == shape:
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != shape:
        raise ValueError(f"input has shape {list(x.shape)}; model {model.name} expects [N, {', '.join(map(str, shape))}]"
                         f" or [{', '.join(map(str, shape))}]")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.bool_)):
        if not np.issubdtype(x.dtype, np.floating) or not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
            raise ValueError(f"input must hold integers (INT8 feature maps), not {x.dtype} values")
    if x.size and (x.min() < -128 or x.max() > 127):
        bad = int(x.min()) if x.min() < -128 else int(x.max())
        sample = int(np.argwhere((x < -128) | (x > 127))[0][0])
        raise ValueError(f"input value {bad} in sample {sample} is outside INT8 (-128 ... 127)")
    return x.astype(np.int64)


# -- the network ---------------------------------------------------------------------------------------------------

def run(model, x, *, record_membranes=False):
    """Run ``model`` on a batch of INT8 input maps, bit-true.

    Parameters
    ----------
    model : golden.manifest.Model
    x : array of int, (N, C, H, W) or (C, H, W)
        Input feature maps, every value in -128 ... 127, presented at every time step (direct encoding).
    record_membranes : bool
        Also return the membranes after every step.

    Returns
    -------
    Result

    Raises
    ------
    ValueError
        If the input does not match the model's ``input_shape`` or leaves INT8.
    """
    x = check_input(model, x)
    n, steps = x.shape[0], model.time_steps
    shapes = model.shapes
    spikes, ops, membranes = {}, {}, {}

    # The first layer (conv2d or dense) reads the INT8 map, whose current does not change over time: once per sample.
    first = model.layers[0]
    first_current, events, dense = first_layer_current(x, first)
    ops[first.name] = {"event_ops": events, "dense_ops": dense}

    state = {l.name: np.zeros((n, int(np.prod(shapes[i][1]))), dtype=np.int64)
             for i, l in enumerate(model.layers) if hasattr(l, "neuron")}
    for i, (l, (_, out)) in enumerate(zip(model.layers, shapes)):
        if i:
            ops[l.name] = {"event_ops": np.zeros(n, dtype=np.int64), "dense_ops": 0}
        ops[l.name]["neuron_updates"] = steps * int(np.prod(out)) if hasattr(l, "neuron") else 0
        if not isinstance(getattr(l, "neuron", None), Integrate):
            spikes[l.name] = np.zeros((n, steps, int(np.prod(out))), dtype=bool)
        if record_membranes and hasattr(l, "neuron"):
            membranes[l.name] = np.zeros((n, steps, int(np.prod(out))), dtype=np.int64)

    for t in range(steps):
        s = None
        for i, (l, (ins, _)) in enumerate(zip(model.layers, shapes)):
            if l.type == "pool":
                s = or_pool(s.reshape((n,) + ins), l.kernel).reshape(n, -1)
            else:
                if i == 0:
                    cur = first_current
                elif l.type == "conv2d":
                    maps = s.reshape((n,) + ins)
                    cur = conv2d_current(maps, l).reshape(n, -1)
                    events, dense = conv2d_taps(maps, l)
                    ops[l.name]["event_ops"] += events
                    ops[l.name]["dense_ops"] += dense
                else:
                    cur = dense_current(s, l)
                    ops[l.name]["event_ops"] += s.sum(axis=1) * l.out_features
                    ops[l.name]["dense_ops"] += l.in_features * l.out_features
                if isinstance(l.neuron, Integrate):
                    state[l.name] = integrate_step(state[l.name], cur, l.neuron)
                else:
                    state[l.name], s = lif_step(state[l.name], cur, l.neuron)
                if record_membranes:
                    membranes[l.name][:, t] = state[l.name]
            if l.name in spikes:
                spikes[l.name][:, t] = s

    for name, train in spikes.items():
        ops[name]["spike_count"] = train.sum(axis=(1, 2)).astype(np.int64)
    readout = state[model.layers[-1].name]
    ops[model.layers[-1].name]["spike_count"] = np.zeros(n, dtype=np.int64)
    return Result(classes=np.argmax(readout, axis=1).astype(np.int64), readout=readout, spikes=spikes, ops=ops,
                  membranes=membranes)
