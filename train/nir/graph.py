"""Reading a NIR graph into a chain of float layers that spikesmith's arithmetic can express, or refusing it.

A graph is accepted when it is one feed-forward path ``Input -> ... -> Output`` made of these patterns:

* ``Conv2d`` or ``Affine``/``Linear`` followed by a spiking neuron (``LIF``, ``IF``, or ``CubaLIF`` whose synapse
  folds, i.e. ``tau_syn = dt``): a conv2d or dense LIF layer;
* ``SumPool2d`` or ``AvgPool2d`` with stride equal to the kernel and no padding, on spikes, followed by a
  ``Threshold`` that any one spike in the window crosses and no spike-free window does: an OR-pool;
* ``Flatten`` (the row-major flattening the manifest uses anyway);
* last, ``Affine``/``Linear`` followed by ``I`` or ``LI``, or by ``Output`` directly: the integrating readout.

Continuous-time neurons are discretized with forward Euler at the step ``dt`` (snnTorch's convention, the default
``1e-4`` s): ``beta = 1 - dt / tau`` and an input gain ``g = r dt / tau``; ``IF`` and ``I`` have no time constant
and take the gain ``r`` per step. ``v_leak`` adds the constant current ``(1 - beta) v_leak`` per step, which folds
into the bias. NIR's neurons reset to ``v_reset`` (which must be 0): spikesmith's ``reset = "zero"``. Because a
zero-reset neuron is unchanged when its input and threshold are scaled together, every neuron's row of weights and
its bias are divided by its threshold, so that every layer has the float threshold 1 (:class:`FloatLayer`).

Everything else is refused with :class:`NirError`, naming the node, its kind and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["NirError", "FloatLayer", "FloatNet", "read_graph", "DEFAULT_DT"]

#: snnTorch's export step (``snntorch.export_nir``), the default discretization step.
DEFAULT_DT = 1e-4
_SYNAPSES = ("Conv2d", "Affine", "Linear")
_SPIKING = ("LIF", "IF", "CubaLIF")
_READOUTS = ("I", "LI")
_POOLS = ("SumPool2d", "AvgPool2d")
_KNOWN = (*_SYNAPSES, *_SPIKING, *_READOUTS, *_POOLS, "Threshold", "Flatten", "Input", "Output")


class NirError(ValueError):
    """A NIR graph, node or parameter that spikesmith cannot map; the message names the node, its kind and why."""


@dataclass
class FloatLayer:
    """One layer of the imported network in float, threshold normalized to 1.

    Members
    -------
    kind : str
        ``"conv2d"``, ``"pool"`` or ``"dense"``.
    nodes : tuple of str
        The NIR nodes it was made of.
    weight, bias : ndarray float64
        Normalized: the current ``weight @ input + bias`` drives a neuron of threshold 1.
    beta : float
        The float leak per step (``1`` for ``IF`` and ``I``).
    neuron : str
        ``"lif"`` (spiking, reset to zero) or ``"integrate"`` (the readout).
    leaky_readout : bool
        The readout came from ``LI``: its leak ``beta`` is dropped by the integrating readout.
    metadata : dict
        The spikesmith metadata of the synapse node, when it carries any (:mod:`train.nir.write`).
    """
    kind: str
    nodes: tuple
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    beta: float = 1.0
    neuron: str = ""
    leaky_readout: bool = False
    metadata: dict = field(default_factory=dict)


@dataclass
class FloatNet:
    """The imported chain: input shape (as the graph gives it), layers, and the graph-level metadata."""
    input_shape: tuple
    layers: list
    dt: float
    metadata: dict = field(default_factory=dict)


def _kind(node):
    return type(node).__name__


def _arr(node_name, node, attr):
    value = getattr(node, attr, None)
    if value is None:
        raise NirError(f"node {node_name} ({_kind(node)}): parameter {attr} is missing")
    a = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise NirError(f"node {node_name} ({_kind(node)}): parameter {attr} holds a non-finite value")
    return a


def _pair(node_name, node, attr, value):
    a = np.asarray(value).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size != 2 or not np.all(a == np.round(a)) or np.any(a < 0):
        raise NirError(f"node {node_name} ({_kind(node)}): {attr} {np.asarray(value).tolist()} is not a pair of "
                       f"non-negative integers")
    return (int(a[0]), int(a[1]))


def _path(graph):
    """The node names from Input to Output, refusing anything but one feed-forward path."""
    nodes, edges = getattr(graph, "nodes", None), getattr(graph, "edges", None)
    if not isinstance(nodes, dict) or not nodes:
        raise NirError("the graph has no nodes")
    if edges is None or not len(edges):
        raise NirError("the graph has no edges")
    succ, pred = {k: [] for k in nodes}, {k: [] for k in nodes}
    for e in edges:
        if not isinstance(e, (tuple, list)) or len(e) != 2:
            raise NirError(f"edge {e!r} is not a pair (source, target)")
        for end in e:
            if end not in nodes:
                raise NirError(f"edge {tuple(e)!r} names node {end!r}, which the graph does not have")
        succ[e[0]].append(e[1])
        pred[e[1]].append(e[0])
    inputs = [k for k, n in nodes.items() if _kind(n) == "Input"]
    outputs = [k for k, n in nodes.items() if _kind(n) == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NirError(f"the graph has {len(inputs)} Input and {len(outputs)} Output nodes; spikesmith needs one of "
                       f"each")
    for name, node in nodes.items():
        if _kind(node) == "NIRGraph":
            raise NirError(f"node {name} (NIRGraph): a nested graph (a recurrent layer) is not supported; "
                           f"spikesmith runs a feed-forward chain")
        if len(set(succ[name])) > 1:
            raise NirError(f"node {name} ({_kind(node)}) has {len(set(succ[name]))} outgoing edges "
                           f"({', '.join(sorted(set(succ[name])))}); spikesmith runs one feed-forward chain")
        if len(set(pred[name])) > 1:
            raise NirError(f"node {name} ({_kind(node)}) has {len(set(pred[name]))} incoming edges "
                           f"({', '.join(sorted(set(pred[name])))}); spikesmith runs one feed-forward chain")
    path, seen = [inputs[0]], {inputs[0]}
    while succ[path[-1]]:
        nxt = succ[path[-1]][0]
        if nxt in seen:
            raise NirError(f"node {nxt} ({_kind(nodes[nxt])}) closes a cycle; recurrent connections are not "
                           f"supported")
        path.append(nxt)
        seen.add(nxt)
    if path[-1] != outputs[0]:
        raise NirError(f"the path from input {inputs[0]} ends at node {path[-1]} ({_kind(nodes[path[-1]])}), not "
                       f"at the output {outputs[0]}")
    for name in nodes:
        if name not in seen:
            raise NirError(f"node {name} ({_kind(nodes[name])}) is not on the path from input to output")
    for name in path:
        if _kind(nodes[name]) not in _KNOWN:
            raise NirError(f"node {name} ({_kind(nodes[name])}): this node kind has no spikesmith equivalent "
                           f"(supported: {', '.join(_KNOWN)})")
    return path


def _input_shape(name, node):
    shape = node.input_type.get("input") if isinstance(node.input_type, dict) else None
    if shape is None:
        raise NirError(f"node {name} (Input): no input shape")
    shape = [int(v) for v in np.asarray(shape).reshape(-1)]
    if len(shape) == 4 and shape[0] == 1:  # a batch dimension, as nirtorch's tracer writes it
        shape = shape[1:]
    if len(shape) == 2 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise NirError(f"node {name} (Input): shape {shape} is neither a map [C, H, W] nor a vector [N]")
    return tuple(shape)


def _synapse(name, node):
    kind = _kind(node)
    w = _arr(name, node, "weight")
    if kind == "Conv2d":
        if w.ndim != 4:
            raise NirError(f"node {name} (Conv2d): weight has shape {list(w.shape)}, [Co, Ci, Kh, Kw] expected")
        if int(np.asarray(node.groups)) != 1:
            raise NirError(f"node {name} (Conv2d): groups {node.groups} (a grouped convolution) is not supported")
        if _pair(name, node, "dilation", node.dilation) != (1, 1):
            raise NirError(f"node {name} (Conv2d): dilation {np.asarray(node.dilation).tolist()} is not supported")
        kh, kw = w.shape[2:]
        pad = node.padding
        if isinstance(pad, str):
            if pad == "valid":
                pad = (0, 0)
            elif pad == "same" and kh % 2 and kw % 2:
                pad = (kh // 2, kw // 2)
            else:
                raise NirError(f"node {name} (Conv2d): padding {pad!r} with kernel {[kh, kw]} is not supported")
        b = _arr(name, node, "bias") if getattr(node, "bias", None) is not None else np.zeros(w.shape[0])
        layer = FloatLayer("conv2d", (name,), w, b.reshape(-1), kernel=(kh, kw),
                           stride=_pair(name, node, "stride", node.stride), padding=_pair(name, node, "padding", pad))
    else:
        if w.ndim != 2:
            raise NirError(f"node {name} ({kind}): weight has shape {list(w.shape)}, [out, in] expected")
        b = _arr(name, node, "bias").reshape(-1) if kind == "Affine" else np.zeros(w.shape[0])
        layer = FloatLayer("dense", (name,), w, b)
    if layer.bias.shape != (w.shape[0],):
        raise NirError(f"node {name} ({kind}): bias has {layer.bias.size} values for {w.shape[0]} outputs")
    layer.metadata = dict(getattr(node, "metadata", None) or {})
    return layer


def _per_output(name, node, attr, a, layer):
    """A neuron parameter as one value per output (a conv channel, a dense neuron), refusing per-position values."""
    n = layer.weight.shape[0]
    a = np.asarray(a, dtype=np.float64)
    if a.size == 1:
        return np.full(n, float(a.reshape(-1)[0]))
    if layer.kind == "dense":
        if a.size != n:
            raise NirError(f"node {name} ({_kind(node)}): {attr} has {a.size} values for {n} neurons")
        return a.reshape(-1)
    if a.ndim == 0 or a.shape[0] != n:
        raise NirError(f"node {name} ({_kind(node)}): {attr} has shape {list(a.shape)}; the conv layer has {n} "
                       f"channels")
    flat = a.reshape(n, -1)
    if np.any(flat != flat[:, :1]):
        raise NirError(f"node {name} ({_kind(node)}): {attr} differs between positions of one channel; a "
                       f"convolution shares one value per channel")
    return flat[:, 0]


def _uniform(name, node, attr, values):
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.ptp(values) > 1e-9 * max(1.0, float(np.abs(values).max())):
        raise NirError(f"node {name} ({_kind(node)}): {attr} ranges from {values.min():.6g} to {values.max():.6g}; "
                       f"spikesmith has one leak per layer")
    return float(values[0])


def _neuron(name, node, layer, dt):
    """Fold ``node``'s neuron into ``layer``: gain, leak current and threshold into the weights; set beta."""
    kind = _kind(node)
    if kind in ("LIF", "CubaLIF", "LI"):
        tau = _arr(name, node, "tau_mem" if kind == "CubaLIF" else "tau")
        if np.any(tau <= 0):
            raise NirError(f"node {name} ({kind}): time constant {tau.min():.6g} is not positive")
        beta = 1.0 - dt / _per_output(name, node, "tau", tau, layer)
        gain = _per_output(name, node, "r", _arr(name, node, "r"), layer) * (1.0 - beta)
        v_leak = _per_output(name, node, "v_leak", _arr(name, node, "v_leak"), layer)
    else:
        beta = np.ones(layer.weight.shape[0])
        gain = _per_output(name, node, "r", _arr(name, node, "r"), layer)
        v_leak = np.zeros_like(gain)
    beta = _uniform(name, node, "beta = 1 - dt / tau", beta)
    if not 0.0 <= beta <= 1.0:
        raise NirError(f"node {name} ({kind}): tau gives beta = 1 - dt / tau = {beta:.6g} at dt {dt:g} s, outside "
                       f"0 ... 1; give the step the graph was trained with (--dt)")
    if kind == "CubaLIF":
        alpha = 1.0 - dt / _uniform(name, node, "tau_syn", _per_output(name, node, "tau_syn",
                                                                       _arr(name, node, "tau_syn"), layer))
        if abs(alpha) > 1e-6:
            raise NirError(f"node {name} (CubaLIF): tau_syn gives a synaptic decay alpha = 1 - dt / tau_syn = "
                           f"{alpha:.6g} at dt {dt:g} s; spikesmith's neurons carry no synaptic current, so only "
                           f"tau_syn = dt (alpha = 0) folds into the weights")
        gain = gain * _per_output(name, node, "w_in", _arr(name, node, "w_in"), layer)
    if np.any(gain <= 0):
        raise NirError(f"node {name} ({kind}): the input gain r dt / tau is {gain.min():.6g}; it must be positive")
    shape = (-1,) + (1,) * (layer.weight.ndim - 1)
    layer.weight = layer.weight * gain.reshape(shape)
    layer.bias = layer.bias * gain + (1.0 - beta) * v_leak
    layer.beta = beta
    layer.nodes = layer.nodes + (name,)
    if kind in _READOUTS:
        layer.neuron = "integrate"
        layer.leaky_readout = kind == "LI" and beta < 1.0
        return layer
    v_reset = getattr(node, "v_reset", None)
    if v_reset is not None and np.any(np.asarray(v_reset, dtype=np.float64) != 0):
        raise NirError(f"node {name} ({kind}): v_reset {np.asarray(v_reset).reshape(-1)[0]:.6g}; spikesmith resets "
                       f"to 0 (reset 'zero') or by subtraction, not to another potential")
    theta = _per_output(name, node, "v_threshold", _arr(name, node, "v_threshold"), layer)
    if np.any(theta <= 0):
        raise NirError(f"node {name} ({kind}): v_threshold {theta.min():.6g} is not positive")
    layer.weight = layer.weight / theta.reshape(shape)
    layer.bias = layer.bias / theta
    layer.neuron = "lif"
    return layer


def _pool(name, node, nxt_name, nxt):
    kind = _kind(node)
    k = _pair(name, node, "kernel_size", node.kernel_size)
    stride = _pair(name, node, "stride", node.stride if node.stride is not None else node.kernel_size)
    pad = _pair(name, node, "padding", node.padding if node.padding is not None else 0)
    if stride != k or pad != (0, 0):
        raise NirError(f"node {name} ({kind}): kernel {list(k)} with stride {list(stride)} and padding {list(pad)}; "
                       f"an OR-pool has stride = kernel and no padding")
    unit = 1.0 if kind == "SumPool2d" else 1.0 / (k[0] * k[1])
    if _kind(nxt) != "Threshold":
        if k == (1, 1):
            return FloatLayer("pool", (name,), kernel=k)
        raise NirError(f"node {name} ({kind}): passes spike counts (0 ... {k[0] * k[1]} per {k[0]} x {k[1]} window) "
                       f"to node {nxt_name} ({_kind(nxt)}); spikesmith pools by OR (0 or 1): follow it with a "
                       f"Threshold node between 0 and {unit:g}")
    thr = _arr(nxt_name, nxt, "threshold")
    if np.any(thr < 0) or np.any(thr >= unit):
        raise NirError(f"node {nxt_name} (Threshold): threshold {thr.min():.6g} ... {thr.max():.6g} after "
                       f"{kind} {name}; it equals OR-pooling only when 0 <= threshold < {unit:g} (one spike in "
                       f"the window crosses it)")
    return FloatLayer("pool", (name, nxt_name), kernel=k)


def read_graph(graph, *, dt: float = DEFAULT_DT) -> FloatNet:
    """Turn a ``nir.NIRGraph`` into a :class:`FloatNet`, or refuse it.

    Raises
    ------
    NirError
        On a malformed graph (unknown edges, branches, cycles, several inputs), an unsupported node kind or
        parameter, or a pattern spikesmith cannot run; the message names the node, its kind and why.
    """
    if not dt > 0:
        raise NirError(f"dt must be a positive number of seconds, not {dt!r}")
    path = _path(graph)
    nodes = graph.nodes
    shape = _input_shape(path[0], nodes[path[0]])
    layers, pending, spikes, i = [], None, False, 1
    while i < len(path) - 1:
        name, node = path[i], nodes[path[i]]
        kind = _kind(node)
        nxt_name = path[i + 1]
        nxt = nodes[nxt_name]
        if kind in _SYNAPSES:
            if pending is not None:
                raise NirError(f"node {name} ({kind}) follows {pending.nodes[0]} ({_kind(nodes[pending.nodes[0]])}) "
                               f"without a neuron between them")
            if kind == "Conv2d" and layers and layers[-1].kind == "dense":
                raise NirError(f"node {name} (Conv2d) follows a dense layer; a convolution needs a map")
            pending = _synapse(name, node)
            if _kind(nxt) == "Output":
                pending.neuron, pending.beta = "integrate", 1.0
                layers.append(pending)
                pending = None
        elif kind in _SPIKING or kind in _READOUTS:
            if pending is None:
                raise NirError(f"node {name} ({kind}) does not follow a Conv2d, Affine or Linear node; spikesmith's "
                               f"neurons take the current of a layer")
            if kind in _READOUTS and _kind(nxt) != "Output":
                raise NirError(f"node {name} ({kind}) is a non-spiking readout before the end of the graph "
                               f"(next: {nxt_name}, {_kind(nxt)}); only the last layer integrates")
            if kind in _SPIKING and _kind(nxt) == "Output":
                raise NirError(f"node {name} ({kind}) spikes into the output; spikesmith's last layer is an "
                               f"integrating readout: end the graph with an Affine followed by I or LI (or by the "
                               f"Output directly)")
            layers.append(_neuron(name, node, pending, dt))
            pending = None
            spikes = kind in _SPIKING
        elif kind in _POOLS:
            if not spikes or pending is not None or not layers or layers[-1].kind == "dense":
                raise NirError(f"node {name} ({kind}) does not pool the spike map of a convolution layer")
            layers.append(_pool(name, node, nxt_name, nxt))
            if _kind(nxt) == "Threshold":
                i += 1
        elif kind == "Flatten":
            if pending is not None:
                raise NirError(f"node {name} (Flatten) comes between a synapse and its neuron")
        elif kind == "Threshold":
            raise NirError(f"node {name} (Threshold) does not follow a SumPool2d or AvgPool2d; a bare threshold "
                           f"has no spikesmith equivalent")
        else:
            raise NirError(f"node {name} ({kind}) cannot appear inside the chain")
        i += 1
    if pending is not None:
        raise NirError(f"node {pending.nodes[0]} has no neuron after it")
    if not layers or layers[-1].neuron != "integrate":
        raise NirError("the graph does not end in a readout (an Affine or Linear followed by I, LI or the Output)")
    if layers[0].kind == "pool":
        raise NirError(f"node {layers[0].nodes[0]} pools the input map; the first layer must be a conv2d or dense")
    meta = dict(getattr(nodes[path[0]], "metadata", None) or {})
    return FloatNet(input_shape=shape, layers=layers, dt=float(dt), metadata=meta)
