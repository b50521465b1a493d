"""A spikesmith model as a NIR graph, written atomically.

Every layer becomes the NIR nodes a framework reads (:mod:`train.nir.graph` is the inverse):

* conv2d -> ``Conv2d`` (weights ``w_int * s_w``, bias ``b_int * S``) and ``LIF``; a dense layer -> ``Affine`` and
  ``LIF``; the readout -> ``Affine`` and ``I`` (``r = 1``); a pool -> ``SumPool2d`` (stride = kernel) and
  ``Threshold`` 0.5, which is OR-pooling; a ``Flatten`` before the first dense layer that reads a map.
* ``S`` is the current scale: ``s_w / input_scale`` for the first layer (the graph's input is the float map
  ``x = x_int / input_scale``) and ``s_w`` after it, so the float membrane is ``S`` times the integer one.
* LIF in NIR's continuous-time form for the step ``dt``: ``tau = dt / (1 - beta) = dt * 2**k`` (``beta = 1 - 2**-k``),
  ``r = tau / dt`` (input gain 1 per step, snnTorch's convention), ``v_threshold = theta * S``, ``v_leak = 0``,
  ``v_reset = 0``.

NIR's LIF resets to ``v_reset``; a layer with ``reset = "subtract"`` has no NIR form, and peers will run it with a
reset to zero (the export says so). The integers themselves (weights, biases, thresholds, leak shifts, reset modes,
widths) travel in each node's metadata under ``spikesmith.*``, so that an import gets the model back bit for bit.
"""

from __future__ import annotations

import json

import numpy as np

from .graph import DEFAULT_DT
from .quantize import META

__all__ = ["to_graph", "write_graph"]


def _lif(shape, theta_f, k, dt):
    tau = dt * float(2 ** k)
    full = lambda v: np.full(shape, v, dtype=np.float64)  # noqa: E731
    import nir
    return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=full(0.0), v_threshold=full(theta_f),
                   v_reset=full(0.0))


def to_graph(model, *, dt: float = DEFAULT_DT):
    """``(nir.NIRGraph, notes)``: the graph of ``model`` and the list of what a peer will run differently."""
    import nir
    import golden.manifest as gm
    scale = float((model.quantization or {}).get("input_scale", 32.0))
    shape = tuple(model.input_shape)
    nodes = {"input": nir.Input(input_type={"input": np.array(shape)}, metadata={
        META + "name": model.name, META + "time_steps": int(model.time_steps), META + "input_scale": scale,
        META + "classes": json.dumps(list(model.classes)), META + "features": json.dumps(model.features),
        META + "quantization": json.dumps(model.quantization), META + "description": model.description,
        META + "dt": float(dt)})}
    chain, notes = ["input"], []
    for n, (layer, (ins, out)) in enumerate(zip(model.layers, model.shapes)):
        if layer.type == "pool":
            kh, kw = layer.kernel
            nodes[layer.name] = nir.SumPool2d(kernel_size=np.array([kh, kw]), stride=np.array([kh, kw]),
                                              padding=np.array([0, 0]))
            nodes[layer.name + "_or"] = nir.Threshold(threshold=np.full(out, 0.5))
            chain += [layer.name, layer.name + "_or"]
            continue
        # A model without weight scales (a hand-made or random one) is written with scale 1, recorded as -1.
        s_w = float(layer.weight_scale) if layer.weight_scale is not None else 1.0
        S = s_w / scale if n == 0 else s_w
        nr = layer.neuron
        meta = {META + "weights": np.asarray(layer.weights, dtype=np.int8),
                META + "bias": np.asarray(layer.bias, dtype=np.int64),
                META + "weight_scale": s_w if layer.weight_scale is not None else -1.0,
                META + "bias_bits": int(layer.bias_bits), META + "acc_bits": int(layer.acc_bits),
                META + "mem_bits": int(nr.mem_bits), META + "layer": layer.name}
        w = layer.weights.astype(np.float64) * s_w
        b = layer.bias.astype(np.float64) * S
        if layer.type == "conv2d":
            nodes[layer.name] = nir.Conv2d(input_shape=np.array(ins[1:]), weight=w, stride=np.array(layer.stride),
                                           padding=np.array(layer.padding), dilation=np.array([1, 1]), groups=1,
                                           bias=b, metadata=meta)
        else:
            if len(ins) == 3:
                nodes[f"flatten{n}"] = nir.Flatten(input_type={"input": np.array(ins)}, start_dim=0, end_dim=-1)
                chain.append(f"flatten{n}")
            nodes[layer.name] = nir.Affine(weight=w, bias=b, metadata=meta)
        chain.append(layer.name)
        if isinstance(nr, gm.LIF):
            meta.update({META + "threshold": int(nr.threshold), META + "leak_shift": int(nr.leak_shift),
                         META + "reset": nr.reset})
            nodes[layer.name + "_lif"] = _lif(out, nr.threshold * S, nr.leak_shift, dt)
            chain.append(layer.name + "_lif")
            if nr.reset == "subtract":
                notes.append(f"layer {layer.name} resets by subtraction; NIR's LIF resets to v_reset = 0, so a peer "
                             f"runs it with a reset to zero (spikesmith's own import keeps the subtraction)")
        else:
            nodes[layer.name + "_i"] = nir.I(r=np.ones(out))
            chain.append(layer.name + "_i")
    nodes["output"] = nir.Output(output_type={"output": np.array(model.shapes[-1][1])})
    chain.append("output")
    edges = list(zip(chain[:-1], chain[1:]))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), notes


def write_graph(model, path, *, dt: float = DEFAULT_DT) -> list:
    """Write ``model`` as a NIR file at ``path`` atomically (:func:`train.util.atomic_write_bytes`: at every instant
    the file is the old one or the new one, complete); returns the notes of :func:`to_graph`."""
    import io
    import nir
    from ..util import atomic_write_bytes
    graph, notes = to_graph(model, dt=dt)
    buf = io.BytesIO()
    nir.write(buf, graph)
    atomic_write_bytes(path, buf.getvalue())
    return notes
