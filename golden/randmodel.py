"""Seeded generator of small random valid models, for the tests of every part of spikesmith.

:func:`random_model` draws the structure (input shape, conv geometry, pooling, hidden layers, classes, time steps),
the widths (bias, membrane, readout) and the neuron parameters (leak shift, reset mode), then INT8 weights, and
chooses each threshold from the currents the layer sees on random inputs so that the network is neither silent nor
saturated everywhere. Small membrane widths are drawn on purpose, so that saturation is exercised. The same seed gives
the same model. Its models are the version 1 family (one conv2d first, then pools and dense layers), the family
today's hardware builds.

:func:`random_deep_model` draws the stacked networks of manifest version 2 the same way: a conv2d or dense first
layer, then several conv2d layers on spike maps (kernels 1-3, strides 1-2, paddings 0-2) with and without pools
between them, then several dense layers and the readout.
"""

from __future__ import annotations

import sys

import numpy as np

from .cli import run_main
from .manifest import LIF, Conv2d, Dense, Integrate, Model, Pool, required_acc_bits, signed_range, validate
from .network import conv2d_current, dense_current, lif_step, or_pool

__all__ = ["random_model", "random_deep_model", "random_inputs"]


def _weights(rng, shape):
    style = rng.integers(3)
    if style == 0:
        w = rng.integers(-128, 128, size=shape)
    elif style == 1:
        w = np.rint(rng.normal(0, rng.uniform(8, 48), size=shape))
    else:  # sparse weights with a few extremes
        w = np.rint(rng.normal(0, 24, size=shape)) * (rng.random(shape) < 0.6)
        w.flat[rng.integers(w.size)] = rng.choice([-128, 127])
    return np.clip(w, -128, 127).astype(np.int8)


def _bits_above(v):
    bits = 2
    while signed_range(bits)[1] - 1 < v:
        bits += 1
    return bits


def _neuron(rng, currents, reset, leak_shift, mem_bits):
    pos = currents[currents > 0]
    if pos.size:
        theta = int(np.quantile(pos, rng.uniform(0.2, 0.8)))
    else:
        theta = int(np.abs(currents).max(initial=1))
    theta = max(theta, 1)
    bits = mem_bits if mem_bits is not None else int(_bits_above(theta) + rng.integers(1, 6))
    bits = max(bits, _bits_above(theta))
    k = int(leak_shift if leak_shift is not None else rng.integers(0, min(bits, 6)))
    return LIF(leak_shift=min(k, bits - 1), threshold=theta,
               reset=reset or str(rng.choice(["subtract", "zero"])), mem_bits=bits)


def _bias(rng, rows, theta_scale):
    bits = int(rng.integers(4, 17))
    lo, hi = signed_range(bits)
    b = np.rint(rng.normal(0, max(theta_scale, 1) * 0.3, size=rows))
    return np.clip(b, lo, hi).astype(np.int64), bits


def random_inputs(model, n, rng):
    """``n`` random INT8 input maps for ``model`` (a mix of dense noise, sparse maps and extremes)."""
    shape = (n,) + tuple(model.input_shape)
    x = rng.integers(-128, 128, size=shape)
    x = np.where(rng.random(shape) < rng.uniform(0.2, 1.0), x, 0)
    return x.astype(np.int8)


def random_model(seed, *, input_shape=None, time_steps=None, out_channels=None, kernel=None, stride=None,
                 padding=None, pool=None, hidden=None, classes=None, reset=None, leak_shift=None, mem_bits=None):
    """Draw a small random valid model.

    Parameters
    ----------
    seed : int
        Seed of the generator; the same seed gives the same model.
    input_shape, time_steps, out_channels, kernel, stride, padding, pool, hidden, classes, reset, leak_shift, mem_bits
        Fix any of these instead of drawing it. ``pool`` is a kernel ``(kh, kw)`` or ``False`` for none; ``hidden``
        a list of hidden dense layer sizes; ``classes`` the number of classes; ``mem_bits`` the LIF membrane width.

    Returns
    -------
    golden.manifest.Model
    """
    rng = np.random.default_rng(seed)
    c, h, w = input_shape or (int(rng.integers(1, 3)), int(rng.integers(3, 9)), int(rng.integers(3, 11)))
    steps = int(time_steps or rng.integers(1, 7))
    kh, kw = kernel or (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    kh, kw = min(kh, h), min(kw, w)
    sh, sw = stride or (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    ph, pw = padding or (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
    co = int(out_channels or rng.integers(1, 5))
    layers = []
    probe = rng.integers(-128, 128, size=(64, c, h, w)) * (rng.random((64, c, h, w)) < 0.7)

    conv = Conv2d(name="conv1", in_channels=c, out_channels=co, kernel=(kh, kw), stride=(sh, sw),
                  padding=(ph, pw), weights=_weights(rng, (co, c, kh, kw)), bias=np.zeros(co, dtype=np.int64),
                  bias_bits=8, acc_bits=32, neuron=LIF(0, 1, "subtract", 8))
    cur = conv2d_current(probe, conv).reshape(64, -1)
    neuron = _neuron(rng, cur, reset, leak_shift, mem_bits)
    bias, bias_bits = _bias(rng, co, neuron.threshold)
    conv = Conv2d(name="conv1", in_channels=c, out_channels=co, kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                  weights=conv.weights, bias=bias, bias_bits=bias_bits, acc_bits=32, neuron=neuron)
    conv = _with_acc(conv, rng)
    layers.append(conv)
    shape = conv.out_shape((c, h, w))
    spikes = _spike_probe(conv2d_current(probe, conv).reshape(64, -1), neuron, steps)

    if pool is None:
        pool = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if rng.random() < 0.6 else False
    if pool:
        pk = (max(1, min(pool[0], shape[1])), max(1, min(pool[1], shape[2])))
        layers.append(Pool(name="pool1", kernel=pk))
        spikes = or_pool(spikes.reshape((-1,) + shape), pk).reshape(spikes.shape[0], -1)
        shape = (shape[0], shape[1] // pk[0], shape[2] // pk[1])

    sizes = list(hidden) if hidden is not None else [int(rng.integers(2, 13)) for _ in range(rng.integers(0, 3))]
    n_classes = int(classes or rng.integers(2, 6))
    for i, m in enumerate(sizes + [n_classes]):
        nin = int(np.prod(shape))
        last = i == len(sizes)
        name = "out" if last else f"fc{i + 1}"
        weights = _weights(rng, (m, nin))
        probe_layer = Dense(name=name, in_features=nin, out_features=m, weights=weights,
                            bias=np.zeros(m, dtype=np.int64), bias_bits=8, acc_bits=32, neuron=Integrate(32))
        cur = dense_current(spikes, probe_layer)
        if last:
            neuron = Integrate(mem_bits=int(rng.integers(max(_bits_above(int(np.abs(cur).max(initial=1))), 6), 25)))
            scale = max(int(np.abs(cur).max(initial=1)) // 4, 1)
        else:
            neuron = _neuron(rng, cur, reset, leak_shift, mem_bits)
            scale = neuron.threshold
        bias, bias_bits = _bias(rng, m, scale)
        layer = _with_acc(Dense(name=name, in_features=nin, out_features=m, weights=weights, bias=bias,
                                bias_bits=bias_bits, acc_bits=32, neuron=neuron), rng)
        layers.append(layer)
        if not last:
            spikes = _spike_probe(dense_current(spikes, layer), neuron, 1)
        shape = (m,)

    model = Model(name=f"random_{seed}", input_shape=(c, h, w), time_steps=steps, layers=layers,
                  classes=[f"c{i}" for i in range(n_classes)], description=f"random test model, seed {seed}")
    return validate(model)


def _with_acc(layer, rng, on_map=None):
    """Set ``acc_bits`` to the bound, sometimes with spare bits (the bound is what hardware must honour)."""
    from dataclasses import replace
    return replace(layer, acc_bits=required_acc_bits(layer, on_map) + int(rng.integers(0, 2)))


def _lif_layer(rng, layer, current, on_map, reset, leak_shift, mem_bits):
    """``layer`` (drawn weights, zero bias) with its LIF neuron, bias and accumulator width fitted to ``current``."""
    from dataclasses import replace
    neuron = _neuron(rng, current, reset, leak_shift, mem_bits)
    bias, bias_bits = _bias(rng, current.shape[1] if layer.type == "dense" else layer.out_channels, neuron.threshold)
    return _with_acc(replace(layer, bias=bias, bias_bits=bias_bits, neuron=neuron), rng, on_map)


def random_deep_model(seed, *, time_steps=None, dense_first=None, reset=None, leak_shift=None, mem_bits=None):
    """Draw a small random valid model of manifest version 2 (a stacked network).

    Parameters
    ----------
    seed : int
        Seed of the generator; the same seed gives the same model.
    time_steps, reset, leak_shift, mem_bits
        Fix these instead of drawing them (as for :func:`random_model`).
    dense_first : bool, optional
        A dense first layer on the INT8 map (``True``) or a conv2d (``False``); drawn (one in four dense) if
        ``None``. After a conv2d first layer come one to three conv2d layers on spikes, each with a pool before it
        or not, and a pool after the last one or not; then one to three dense LIF layers and the readout. After a
        dense first layer come zero to two dense LIF layers and the readout.

    Returns
    -------
    golden.manifest.Model
    """
    rng = np.random.default_rng(seed)
    c, h, w = int(rng.integers(1, 4)), int(rng.integers(5, 13)), int(rng.integers(5, 15))
    steps = int(time_steps or rng.integers(1, 7))
    if dense_first is None:
        dense_first = bool(rng.random() < 0.25)
    probe = rng.integers(-128, 128, size=(64, c, h, w)) * (rng.random((64, c, h, w)) < 0.7)
    layers, shape, spikes = [], (c, h, w), None
    counts = {"conv": 0, "pool": 0, "fc": 0}

    def name(kind):
        counts[kind] += 1
        return f"{kind}{counts[kind]}"

    def conv(on_map):
        nonlocal shape, spikes
        kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
        kh, kw = min(kh, shape[1]), min(kw, shape[2])
        co = int(rng.integers(1, 5))
        layer = Conv2d(name=name("conv"), in_channels=shape[0], out_channels=co, kernel=(kh, kw),
                       stride=tuple(int(v) for v in rng.integers(1, 3, size=2)),
                       padding=tuple(int(v) for v in rng.integers(0, 3, size=2)),
                       weights=_weights(rng, (co, shape[0], kh, kw)), bias=np.zeros(co, dtype=np.int64), bias_bits=8,
                       acc_bits=32, neuron=LIF(0, 1, "subtract", 8))
        maps = probe if on_map else spikes.reshape((-1,) + shape)
        layer = _lif_layer(rng, layer, conv2d_current(maps, layer).reshape(len(maps), -1), on_map, reset,
                           leak_shift, mem_bits)
        spikes = _spike_probe(conv2d_current(maps, layer).reshape(len(maps), -1), layer.neuron,
                              steps if on_map else 1)
        shape = layer.out_shape(shape)
        layers.append(layer)

    def pool():
        nonlocal shape, spikes
        pk = (int(rng.integers(1, min(shape[1], 3) + 1)), int(rng.integers(1, min(shape[2], 3) + 1)))
        if pk == (1, 1):
            pk = (2, 1) if shape[1] >= shape[2] else (1, 2)
        layers.append(Pool(name=name("pool"), kernel=pk))
        spikes = or_pool(spikes.reshape((-1,) + shape), pk).reshape(spikes.shape[0], -1)
        shape = (shape[0], shape[1] // pk[0], shape[2] // pk[1])

    if dense_first:
        sizes = [int(rng.integers(2, 17)) for _ in range(rng.integers(1, 4))]
    else:
        conv(True)
        for _ in range(rng.integers(1, 4)):
            if rng.random() < 0.5 and min(shape[1:]) >= 2:
                pool()
            conv(False)
        if rng.random() < 0.5 and min(shape[1:]) >= 2:
            pool()
        sizes = [int(rng.integers(2, 17)) for _ in range(rng.integers(1, 4))]
    n_classes = int(rng.integers(2, 6))
    for i, m in enumerate(sizes + [n_classes]):
        on_map, last = not layers, i == len(sizes)
        nin = int(np.prod(shape))
        inputs = probe.reshape(len(probe), -1) if on_map else spikes
        layer = Dense(name="out" if last else name("fc"), in_features=nin, out_features=m,
                      weights=_weights(rng, (m, nin)), bias=np.zeros(m, dtype=np.int64), bias_bits=8, acc_bits=32,
                      neuron=Integrate(32))
        cur = dense_current(inputs, layer)
        if last:
            from dataclasses import replace
            big = int(np.abs(cur).max(initial=1))
            bias, bias_bits = _bias(rng, m, max(big // 4, 1))
            layer = _with_acc(replace(layer, bias=bias, bias_bits=bias_bits,
                                      neuron=Integrate(int(rng.integers(max(_bits_above(big), 6), 25)))), rng, on_map)
        else:
            layer = _lif_layer(rng, layer, cur, on_map, reset, leak_shift, mem_bits)
            spikes = _spike_probe(dense_current(inputs, layer), layer.neuron, steps if on_map else 1)
        layers.append(layer)
        shape = (m,)
    model = Model(name=f"random_deep_{seed}", input_shape=(c, h, w), time_steps=steps, layers=layers,
                  classes=[f"c{i}" for i in range(n_classes)], description=f"random deep test model, seed {seed}")
    return validate(model)


def _spike_probe(current, neuron, steps):
    """Spikes of a layer driven by ``current`` for ``steps`` steps, stacked as probe samples for the next layer."""
    v = np.zeros_like(current)
    out = []
    for _ in range(max(steps, 1)):
        v, s = lif_step(v, current, neuron)
        out.append(s)
    return np.concatenate(out, axis=0)


def main(argv=None):
    """``python -m golden.randmodel --seed S --out DIR``: write a random valid model (for tests and examples)."""
    import argparse
    from .manifest import save
    p = argparse.ArgumentParser(prog="python -m golden.randmodel",
                                description="Write a small random valid model (the same seed gives the same model).")
    p.add_argument("--seed", type=int, required=True, help="seed of the random generator that draws the model")
    p.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    p.add_argument("--deep", action="store_true",
                   help="draw a stacked network of manifest version 2 (several conv2d layers on spike maps, pools, "
                        "dense layers, or a dense first layer) instead of the version 1 family")
    args = p.parse_args(argv)
    model = random_deep_model(args.seed) if args.deep else random_model(args.seed)
    save(model, args.out)
    print(f"wrote {model.name} to {args.out}: input {list(model.input_shape)}, "
          f"{', '.join(l.type for l in model.layers)}, T = {model.time_steps}")


if __name__ == "__main__":
    sys.exit(run_main(main))
