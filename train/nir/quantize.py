"""Post-training quantization of an imported NIR network (:class:`train.nir.graph.FloatNet`) to a spikesmith model.

Per layer, as the trainer's integer mode does (:mod:`train.model`): the weight scale ``s_w = max|w| / 127``,
``w_int = round(w / s_w)``; the current scale ``S = s_w / input_scale`` for the first layer (it reads the INT8 map
``x_int = input_scale * x``) and ``S = s_w`` after it (spikes); ``b_int = round(b / S)`` and, the float threshold
being 1 after :func:`train.nir.graph.read_graph` normalized it, ``theta = round(1 / S)``. The leak becomes the
nearest ``beta = 1 - 2**-k`` (an ``IF`` neuron's ``beta = 1``: the largest ``k`` the membrane allows, which is exact
for non-negative membranes and adds one unit per step to a negative one). Membrane widths are calibrated on the
calibration maps (the training side, never the test split) with twice the largest magnitude seen, as the trainer
does. A graph written by :mod:`train.nir.write` carries its integers in metadata: when they agree with the float
values, they are taken as they are (:func:`exact_model`), so a round trip is bit for bit.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .graph import NirError

__all__ = ["nearest_leak_shift", "quantize", "exact_model", "MAX_SHIFT", "META"]

#: The largest leak shift tried for a leaky neuron (``beta`` within 2**-24 of 1 is an integrator to float32).
MAX_SHIFT = 24
#: The key prefix of spikesmith's metadata in a NIR node.
META = "spikesmith."


def nearest_leak_shift(beta: float, max_shift: int = MAX_SHIFT) -> tuple:
    """``(k, beta_k - beta)`` for the ``k`` in ``0 ... max_shift`` whose ``beta_k = 1 - 2**-k`` is nearest."""
    k = min(range(max_shift + 1), key=lambda j: abs((1.0 - 2.0 ** -j) - beta))
    return k, (1.0 - 2.0 ** -k) - beta


def _names(layers):
    counts, out = {}, []
    for n, l in enumerate(layers):
        if n == len(layers) - 1:
            out.append("out")
            continue
        prefix = {"conv2d": "conv", "pool": "pool", "dense": "fc"}[l.kind]
        counts[prefix] = counts.get(prefix, 0) + 1
        out.append(f"{prefix}{counts[prefix]}")
    return out


def _check_input(net, input_shape):
    first = net.layers[0]
    if first.kind == "conv2d" and tuple(net.input_shape) != tuple(input_shape):
        raise NirError(f"node {first.nodes[0]} (Conv2d): the graph's input is {list(net.input_shape)}; the data's "
                       f"maps are {list(input_shape)}")
    size = math.prod(input_shape)
    if first.kind == "dense" and first.weight.shape[1] != size:
        raise NirError(f"node {first.nodes[0]}: {first.weight.shape[1]} inputs; the data's maps have {size} values "
                       f"({list(input_shape)})")


def _bias_bits(b):
    big = int(np.abs(b).max()) if b.size else 0
    bits = max(2, (big + 1).bit_length() + 1)
    if bits > 32:
        raise NirError(f"a bias of {big:,} needs {bits} bits; at most 32")
    return bits


def quantize(net, *, input_shape, input_scale: float, time_steps: int, x_calib, name: str, classes=None,
             features=None, margin: float = 2.0):
    """Quantize ``net`` to a :class:`golden.manifest.Model` and report every layer.

    Parameters
    ----------
    net : train.nir.graph.FloatNet
    input_shape : tuple
        ``(C, H, W)`` of the INT8 maps the model reads.
    input_scale : float
        ``x_int = input_scale * x``: the graph's input is ``x``.
    x_calib : array (N, C, H, W)
        Calibration maps (training data) for the membrane widths.

    Returns
    -------
    (golden.manifest.Model, list of dict)
        The model (validated) and one report row per layer: nodes, mapped kind, relative weight error, largest
        bias error and threshold error (in units of the threshold), the float and integer leak and their difference.
    """
    import golden.manifest as gm
    _check_input(net, input_shape)
    names = _names(net.layers)
    layers, rows, first = [], [], True
    for l, lname in zip(net.layers, names):
        if l.kind == "pool":
            layers.append(gm.Pool(name=lname, kernel=tuple(l.kernel)))
            rows.append({"layer": lname, "nodes": list(l.nodes), "mapped": f"pool {l.kernel[0]}x{l.kernel[1]} (OR)",
                         "exact": True})
            continue
        peak = float(np.abs(l.weight).max())
        s_w = peak / 127.0 if peak > 0 else 1.0 / 127.0
        S = s_w / input_scale if first else s_w
        w = np.clip(np.round(l.weight / s_w), -127, 127).astype(np.int8)
        b = np.round(l.bias / S).astype(np.int64)
        row = {"layer": lname, "nodes": list(l.nodes),
               "weight_error": float(np.linalg.norm(l.weight - w * s_w) / max(np.linalg.norm(l.weight), 1e-300)),
               "bias_error": float(np.abs(l.bias - b * S).max()) if b.size else 0.0}
        if l.neuron == "lif":
            theta = max(1, int(round(1.0 / S)))
            k, err = nearest_leak_shift(l.beta)
            neuron = gm.LIF(leak_shift=k, threshold=theta, reset="zero", mem_bits=32)
            row.update(threshold=theta, threshold_error=abs(theta * S - 1.0), beta=l.beta, leak_shift=k,
                       leak_error=err, integrator=l.beta == 1.0)
        else:
            neuron = gm.Integrate(mem_bits=32)
            row.update(beta=l.beta, leak_error=1.0 - l.beta if l.leaky_readout else 0.0)
        common = dict(name=lname, weights=w, bias=b, bias_bits=_bias_bits(b), acc_bits=64, neuron=neuron,
                      weight_scale=s_w)
        if l.kind == "conv2d":
            layer = gm.Conv2d(in_channels=w.shape[1], out_channels=w.shape[0], kernel=tuple(l.kernel),
                              stride=tuple(l.stride), padding=tuple(l.padding), **common)
            row["mapped"] = (f"conv2d {w.shape[1]}->{w.shape[0]} {l.kernel[0]}x{l.kernel[1]} "
                             f"stride {l.stride[0]}x{l.stride[1]} pad {l.padding[0]}x{l.padding[1]}")
        else:
            layer = gm.Dense(in_features=w.shape[1], out_features=w.shape[0], **common)
            row["mapped"] = f"dense {w.shape[1]}->{w.shape[0]}"
        row["mapped"] += (f" + LIF k={neuron.leak_shift} theta={neuron.threshold} reset zero"
                          if l.neuron == "lif" else " + integrating readout")
        layers.append(_replace(layer, acc_bits=gm.required_acc_bits(layer, on_map=first)))
        rows.append(row)
        first = False
    model = gm.Model(name=name, input_shape=tuple(input_shape), time_steps=int(time_steps), layers=layers,
                     classes=list(classes) if classes is not None else [str(i) for i in range(layers[-1].out_features)],
                     features=features, quantization={"input_scale": float(input_scale)},
                     description=f"imported from NIR ({', '.join(n for l in net.layers for n in l.nodes)}), "
                                 f"dt {net.dt:g} s")
    model = calibrate(model, x_calib, margin=margin)
    for row, layer in zip(rows, model.layers):
        if isinstance(getattr(layer, "neuron", None), gm.LIF):
            row["leak_shift"] = layer.neuron.leak_shift
            row["mem_bits"] = layer.neuron.mem_bits
        elif hasattr(layer, "neuron"):
            row["mem_bits"] = layer.neuron.mem_bits
    return gm.validate(model), rows


def calibrate(model, x, *, margin: float = 2.0):
    """``model`` with every membrane width set from the largest ``|membrane|`` on ``x`` (margin ``margin``), and an
    integrating LIF (``beta = 1``) given the largest leak shift its width allows."""
    import golden.manifest as gm
    from ..export import membrane_peaks
    from ..model import bits_for_magnitude, int_layers_from_model
    wide = [_replace(l, neuron=_replace(l.neuron, mem_bits=32)) if hasattr(l, "neuron") else l
            for l in model.layers]
    probe = _replace(model, layers=wide)
    peaks = membrane_peaks(int_layers_from_model(probe), x, model.time_steps)
    out = []
    for l in wide:
        if not hasattr(l, "neuron"):
            out.append(l)
            continue
        bits = bits_for_magnitude(peaks[l.name][0], margin)
        nr = l.neuron
        if isinstance(nr, gm.LIF):
            while (1 << (bits - 1)) - 2 < nr.threshold or bits - 1 < min(nr.leak_shift, MAX_SHIFT):
                bits += 1
            bits = min(bits, 32)
            shift = bits - 1 if nr.leak_shift >= MAX_SHIFT else nr.leak_shift
            nr = _replace(nr, mem_bits=bits, leak_shift=shift)
        else:
            nr = _replace(nr, mem_bits=min(bits, 32))
        out.append(_replace(l, neuron=nr))
    return _replace(model, layers=out)


def exact_model(net, *, input_shape, name: str):
    """The model a graph of :mod:`train.nir.write` carries in its metadata, or ``None`` when it carries none or
    its integers no longer agree with the float values (a graph edited since)."""
    import golden.manifest as gm
    meta = net.metadata
    if not all(any(str(k).startswith(META) for k in l.metadata) for l in net.layers if l.kind != "pool"):
        return None
    try:
        scale = float(meta[META + "input_scale"])
        layers, names, first = [], _names(net.layers), True
        for l, lname in zip(net.layers, names):
            if l.kind == "pool":
                layers.append(gm.Pool(name=lname, kernel=tuple(l.kernel)))
                continue
            m = {str(k)[len(META):]: v for k, v in l.metadata.items() if str(k).startswith(META)}
            w = np.asarray(m["weights"]).astype(np.int8)
            b = np.asarray(m["bias"]).astype(np.int64).reshape(-1)
            given = float(m["weight_scale"])
            s_w = given if given > 0 else 1.0
            S = s_w / scale if first else s_w
            if l.neuron == "lif":
                theta = int(m["threshold"])
                neuron = gm.LIF(leak_shift=int(m["leak_shift"]), threshold=theta, reset=str(m["reset"]),
                                mem_bits=int(m["mem_bits"]))
            else:
                theta, neuron = 1, gm.Integrate(mem_bits=int(m["mem_bits"]))
            # The float values divided by the threshold, as read_graph made them, against the integers times S.
            norm = theta * S if l.neuron == "lif" else 1.0
            if w.shape != l.weight.shape or not np.allclose(w * s_w / norm, l.weight, rtol=1e-6, atol=0) or \
                    not np.allclose(b * S / norm, l.bias, rtol=1e-6, atol=1e-12):
                return None
            common = dict(name=lname, weights=w, bias=b, bias_bits=int(m["bias_bits"]), acc_bits=int(m["acc_bits"]),
                          neuron=neuron, weight_scale=given if given > 0 else None)
            if l.kind == "conv2d":
                layers.append(gm.Conv2d(in_channels=w.shape[1], out_channels=w.shape[0], kernel=tuple(l.kernel),
                                        stride=tuple(l.stride), padding=tuple(l.padding), **common))
            else:
                layers.append(gm.Dense(in_features=w.shape[1], out_features=w.shape[0], **common))
            first = False
        model = gm.Model(name=str(meta.get(META + "name", name)), input_shape=tuple(input_shape),
                         time_steps=int(meta[META + "time_steps"]), layers=layers,
                         classes=json.loads(str(meta[META + "classes"])),
                         features=json.loads(str(meta.get(META + "features", "null"))),
                         quantization=json.loads(str(meta[META + "quantization"])),
                         description=str(meta.get(META + "description", "")))
        return gm.validate(model)
    except (KeyError, ValueError, TypeError):
        return None


def _replace(obj, **kw):
    import dataclasses
    return dataclasses.replace(obj, **kw)
