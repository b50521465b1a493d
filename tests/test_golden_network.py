"""The golden model against plain scalar loops written here, separately from golden/network.py.

The scalar reference covers every layer kind of manifest version 2: a conv2d or dense first layer on the INT8 map,
conv2d layers on spike maps with their own membranes, pools and dense layers.
"""

import numpy as np
import pytest

from golden.manifest import LIF, Conv2d, Dense, Integrate, Model, Pool, signed_range
from golden.network import conv2d_current, conv2d_taps, dense_current, or_pool, run
from golden.randmodel import random_deep_model, random_inputs, random_model


def loop_conv(x, layer):
    c_in, h, w = x.shape
    kh, kw = layer.kernel
    sh, sw = layer.stride
    ph, pw = layer.padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((layer.out_channels, ho, wo), dtype=np.int64)
    for o in range(layer.out_channels):
        for y in range(ho):
            for xx in range(wo):
                acc = int(layer.bias[o])
                for c in range(c_in):
                    for i in range(kh):
                        for j in range(kw):
                            yy, xi = y * sh + i - ph, xx * sw + j - pw
                            if 0 <= yy < h and 0 <= xi < w:
                                acc += int(layer.weights[o, c, i, j]) * int(x[c, yy, xi])
                out[o, y, xx] = acc
    return out


def loop_conv_ops(x, layer):
    """``(event_ops, dense_ops)`` of one conv2d on one map: taps inside the map, and those reading a non-zero."""
    c_in, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    inside = nonzero = 0
    for y in range(ho):
        for xx in range(wo):
            for c in range(c_in):
                for i in range(kh):
                    for j in range(kw):
                        yy, xi = y * sh + i - ph, xx * sw + j - pw
                        if 0 <= yy < h and 0 <= xi < w:
                            inside += 1
                            nonzero += x[c, yy, xi] != 0
    return nonzero * layer.out_channels, inside * layer.out_channels


def loop_pool(s, kernel):
    c, h, w = s.shape
    kh, kw = kernel
    out = np.zeros((c, h // kh, w // kw), dtype=bool)
    for ch in range(c):
        for y in range(h // kh):
            for x in range(w // kw):
                for i in range(kh):
                    for j in range(kw):
                        if s[ch, y * kh + i, x * kw + j]:
                            out[ch, y, x] = True
    return out


def clamp(v, bits):
    lo, hi = signed_range(bits)
    return min(max(v, lo), hi)


def loop_network(model, x):
    """Scalar re-implementation of docs/arithmetic.md: one sample, Python ints only."""
    shapes = model.shapes
    state = {}
    trains = {l.name: [] for l in model.layers if not isinstance(getattr(l, "neuron", None), Integrate)}
    first = model.layers[0]
    if first.type == "conv2d":
        first_cur = loop_conv(x, first).ravel().tolist()
    else:
        flat = x.ravel().tolist()
        first_cur = [int(first.bias[m]) + sum(int(first.weights[m, i]) * flat[i] for i in range(first.in_features))
                     for m in range(first.out_features)]
    for t in range(model.time_steps):
        s = None
        for k, (l, (ins, out)) in enumerate(zip(model.layers, shapes)):
            if l.type == "pool":
                s = loop_pool(np.array(s, dtype=bool).reshape(ins), l.kernel).ravel().tolist()
            else:
                if k == 0:
                    cur = first_cur
                elif l.type == "conv2d":
                    cur = loop_conv(np.array(s, dtype=np.int64).reshape(ins), l).ravel().tolist()
                else:
                    cur = [int(l.bias[m]) + sum(int(l.weights[m, i]) for i in range(l.in_features) if s[i])
                           for m in range(l.out_features)]
                v = state.get(l.name, [0] * len(cur))
                nu = l.neuron
                if isinstance(nu, Integrate):
                    v = [clamp(a + b, nu.mem_bits) for a, b in zip(v, cur)]
                else:
                    new = []
                    for vm, i in zip(v, cur):
                        r = vm > nu.threshold
                        lk = vm - (vm >> nu.leak_shift)
                        if nu.reset == "subtract":
                            u = lk + i - (nu.threshold if r else 0)
                        else:
                            u = (0 if r else lk) + i
                        new.append(clamp(u, nu.mem_bits))
                    v = new
                    s = [vm > nu.threshold for vm in v]
                state[l.name] = v
            if l.name in trains:
                trains[l.name].append(list(s))
    readout = state[model.layers[-1].name]
    best = max(readout)
    return readout.index(best), readout, {k: np.array(v, dtype=bool) for k, v in trains.items()}


@pytest.mark.parametrize("seed", range(12))
def test_conv_matches_plain_loops(seed):
    m = random_model(seed)
    x = random_inputs(m, 3, np.random.default_rng(seed))
    conv = m.layers[0]
    got = conv2d_current(x, conv)
    for n in range(3):
        assert np.array_equal(got[n], loop_conv(x[n], conv))


def test_conv_stride_and_padding_against_loops():
    rng = np.random.default_rng(5)
    layer = Conv2d(name="c", in_channels=2, out_channels=3, kernel=(3, 2), stride=(2, 3), padding=(2, 1),
                   weights=rng.integers(-128, 128, (3, 2, 3, 2)).astype(np.int8),
                   bias=np.array([-1000, 0, 70000]), bias_bits=20, acc_bits=24, neuron=LIF(1, 5, "zero", 8))
    x = rng.integers(-128, 128, (4, 2, 7, 11))
    got = conv2d_current(x, layer)
    for n in range(4):
        assert np.array_equal(got[n], loop_conv(x[n], layer))


@pytest.mark.parametrize("kernel", [(1, 1), (2, 2), (2, 4), (3, 2)])
def test_or_pool_matches_plain_loops_and_drops_remainders(kernel):
    rng = np.random.default_rng(sum(kernel))
    s = rng.random((3, 2, 7, 9)) < 0.2
    got = or_pool(s, kernel)
    assert got.shape == (3, 2, 7 // kernel[0], 9 // kernel[1])
    for n in range(3):
        assert np.array_equal(got[n], loop_pool(s[n], kernel))


def test_dense_is_the_sum_of_the_rows_of_spiking_inputs():
    rng = np.random.default_rng(1)
    layer = Dense(name="d", in_features=9, out_features=4, weights=rng.integers(-128, 128, (4, 9)).astype(np.int8),
                  bias=np.array([3, -3, 0, 100]), bias_bits=8, acc_bits=16, neuron=Integrate(16))
    s = rng.random((5, 9)) < 0.4
    got = dense_current(s, layer)
    for n in range(5):
        want = [int(layer.bias[m]) + sum(int(layer.weights[m, i]) for i in range(9) if s[n, i]) for m in range(4)]
        assert got[n].tolist() == want


@pytest.mark.parametrize("seed", range(25))
def test_network_matches_scalar_reference(seed):
    m = random_model(seed)
    x = random_inputs(m, 4, np.random.default_rng(100 + seed))
    r = run(m, x)
    for n in range(4):
        cls, readout, trains = loop_network(m, x[n])
        assert r.readout[n].tolist() == readout
        assert r.classes[n] == cls
        for name, train in trains.items():
            assert np.array_equal(r.spikes[name][n], train), name


def test_extreme_inputs_saturate_without_wrapping():
    m = random_model(3, mem_bits=6)
    for value in (-128, 127, 0):
        x = np.full((1,) + m.input_shape, value)
        r = run(m, x, record_membranes=True)
        cls, readout, trains = loop_network(m, x[0])
        assert r.readout[0].tolist() == readout
        for name, mem in r.membranes.items():
            bits = m.layer(name).neuron.mem_bits
            lo, hi = signed_range(bits)
            assert mem.min() >= lo and mem.max() <= hi


def tiny_model(readout_bias):
    conv = Conv2d(name="c", in_channels=1, out_channels=1, kernel=(1, 1), stride=(1, 1), padding=(0, 0),
                  weights=np.array([[[[1]]]], dtype=np.int8), bias=np.array([0]), bias_bits=4, acc_bits=9,
                  neuron=LIF(1, 1000, "subtract", 12))
    out = Dense(name="out", in_features=2, out_features=len(readout_bias),
                weights=np.zeros((len(readout_bias), 2), dtype=np.int8), bias=np.array(readout_bias), bias_bits=8,
                acc_bits=8, neuron=Integrate(12))
    return Model(name="t", input_shape=(1, 1, 2), time_steps=3, layers=[conv, out],
                 classes=[str(i) for i in range(len(readout_bias))])


def test_argmax_ties_go_to_the_lowest_index():
    r = run(tiny_model([5, 9, 9, -3]), np.zeros((1, 1, 1, 2)))
    assert r.readout[0].tolist() == [15, 27, 27, -9]
    assert r.classes.tolist() == [1]
    r = run(tiny_model([4, 4, 4]), np.zeros((1, 1, 1, 2)))
    assert r.classes.tolist() == [0]


def test_operation_counts_against_loops():
    m = random_model(4, padding=(1, 1), kernel=(3, 3))
    x = random_inputs(m, 3, np.random.default_rng(9))
    x[0] = 0
    r = run(m, x)
    conv = m.layers[0]
    c, h, w = m.input_shape
    ho, wo = conv.out_shape(m.input_shape)[1:]
    for n in range(3):
        inside = nonzero = 0
        for y in range(ho):
            for xx in range(wo):
                for ch in range(c):
                    for i in range(3):
                        for j in range(3):
                            yy, xi = y * conv.stride[0] + i - 1, xx * conv.stride[1] + j - 1
                            if 0 <= yy < h and 0 <= xi < w:
                                inside += 1
                                nonzero += x[n, ch, yy, xi] != 0
        assert r.ops["conv1"]["dense_ops"] == inside * conv.out_channels
        assert r.ops["conv1"]["event_ops"][n] == nonzero * conv.out_channels
    assert r.ops["conv1"]["event_ops"][0] == 0
    prev = None
    for l in m.layers:
        if l.type == "dense":
            assert r.ops[l.name]["dense_ops"] == m.time_steps * l.in_features * l.out_features
            assert np.array_equal(r.ops[l.name]["event_ops"], r.spikes[prev].sum(axis=(1, 2)) * l.out_features)
        if l.name in r.spikes:
            prev = l.name
            assert np.array_equal(r.ops[l.name]["spike_count"], r.spikes[l.name].sum(axis=(1, 2)))


def test_batch_equals_single_samples():
    m = random_model(8)
    x = random_inputs(m, 6, np.random.default_rng(0))
    r = run(m, x)
    for n in range(6):
        one = run(m, x[n])
        assert one.readout[0].tolist() == r.readout[n].tolist()
        for k in r.spikes:
            assert np.array_equal(one.spikes[k][0], r.spikes[k][n])


@pytest.mark.parametrize("bad,msg", [
    (np.zeros((2, 1, 8, 11)), "expects"),
    (np.full((1, 1, 8, 12), 128), "outside INT8"),
    (np.full((1, 1, 8, 12), -129), "outside INT8"),
    (np.full((1, 1, 8, 12), 0.5), "integers"),
])
def test_bad_inputs_are_refused(tiny_shipped, bad, msg):
    with pytest.raises(ValueError, match=msg):
        run(tiny_shipped, bad)


# -- stacked networks (manifest version 2) ----------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(30))
def test_deep_network_matches_scalar_reference(seed):
    m = random_deep_model(seed)
    x = random_inputs(m, 3, np.random.default_rng(200 + seed))
    r = run(m, x)
    for n in range(3):
        cls, readout, trains = loop_network(m, x[n])
        assert r.readout[n].tolist() == readout
        assert r.classes[n] == cls
        for name, train in trains.items():
            assert np.array_equal(r.spikes[name][n], train), name


def test_deep_models_cover_every_layer_order():
    seen = {"dense first": 0, "conv on spikes": 0, "stride 2": 0, "padding 2": 0, "pool between convs": 0,
            "no pool between convs": 0, "two dense hidden": 0}
    for seed in range(60):
        m = random_deep_model(seed)
        kinds = [l.type for l in m.layers]
        convs = [l for l in m.layers if l.type == "conv2d"]
        seen["dense first"] += kinds[0] == "dense"
        seen["conv on spikes"] += len(convs) >= 2
        seen["stride 2"] += any(2 in l.stride for l in convs[1:])
        seen["padding 2"] += any(2 in l.padding for l in convs[1:])
        pairs = list(zip(kinds, kinds[1:], kinds[2:]))
        seen["pool between convs"] += ("conv2d", "pool", "conv2d") in pairs
        seen["no pool between convs"] += ("conv2d", "conv2d") in list(zip(kinds, kinds[1:]))
        seen["two dense hidden"] += kinds.count("dense") >= 3
    assert min(seen.values()) >= 5, seen


@pytest.mark.parametrize("seed", range(8))
def test_deep_operation_counts_against_loops(seed):
    m = random_deep_model(seed, dense_first=False)
    x = random_inputs(m, 2, np.random.default_rng(seed))
    x[0] = 0
    r = run(m, x)
    for n in range(2):
        for k, (l, (ins, out)) in enumerate(zip(m.layers, m.shapes)):
            ops = r.ops[l.name]
            if l.type == "pool":
                assert ops["event_ops"][n] == 0 and ops["dense_ops"] == 0 and ops["neuron_updates"] == 0
            elif k == 0:  # the map: counted once per sample
                assert (ops["event_ops"][n], ops["dense_ops"]) == loop_conv_ops(x[n], l)
            elif l.type == "conv2d":  # spikes: counted at every step, on that step's input spikes
                events = dense = 0
                for t in range(m.time_steps):
                    e, d = loop_conv_ops(r.spikes[m.layers[k - 1].name][n, t].reshape(ins), l)
                    events, dense = events + e, dense + d
                assert (ops["event_ops"][n], ops["dense_ops"]) == (events, dense)
            else:
                spikes = r.spikes[m.layers[k - 1].name][n].sum()
                assert ops["event_ops"][n] == spikes * l.out_features
                assert ops["dense_ops"] == m.time_steps * l.in_features * l.out_features
            if l.type != "pool":
                assert ops["neuron_updates"] == m.time_steps * int(np.prod(out))
    assert r.ops["conv1"]["event_ops"][0] == 0


def test_dense_first_layer_counts_non_zero_inputs_once():
    m = random_deep_model(1, dense_first=True)
    assert m.layers[0].type == "dense"
    x = random_inputs(m, 3, np.random.default_rng(3))
    r = run(m, x)
    first = m.layers[0]
    assert r.ops[first.name]["dense_ops"] == first.in_features * first.out_features
    for n in range(3):
        assert r.ops[first.name]["event_ops"][n] == np.count_nonzero(x[n]) * first.out_features


def test_deep_batch_equals_single_samples():
    m = random_deep_model(6)
    x = random_inputs(m, 5, np.random.default_rng(1))
    r = run(m, x, record_membranes=True)
    for n in range(5):
        one = run(m, x[n], record_membranes=True)
        assert one.readout[0].tolist() == r.readout[n].tolist()
        for k in r.spikes:
            assert np.array_equal(one.spikes[k][0], r.spikes[k][n])
        for k in r.membranes:
            assert np.array_equal(one.membranes[k][0], r.membranes[k][n])
