# amaranth: UnusedElaboratable=no
"""Readout (integrating dense layer + argmax) against golden.network, with random stalls."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.manifest import Dense, Integrate
from golden.network import dense_current, integrate_step
from golden.randmodel import random_model
from hw.layouts import bits_for_count, pack_spike_event, unpack
from hw.plan import plan_layer
from hw.readout import Readout, readout_layout

from hw_streams import simulator, spike_train_events, stream_get, stream_put


def _golden(layer, trains):
    out = []
    for train in trains:
        r = np.zeros(layer.out_features, dtype=np.int64)
        for s in train:
            r = integrate_step(r, dense_current(s[None], layer)[0], layer.neuron)
        out.append({"cls": int(np.argmax(r)), "readout": [int(x) for x in r]})
    return out


def _simulate(layer, steps, trains, lanes, seed, stall, accumulators="registers"):
    dut = Readout(plan_layer(layer, (layer.in_features,), steps, on_map=False,
                             options={"lanes": lanes, "accumulators": accumulators}))
    in_bits = bits_for_count(layer.in_features)
    events = [e for train in trains for e in spike_train_events(train)]
    rng = np.random.default_rng(seed)
    got = []

    async def producer(ctx):
        await stream_put(ctx, dut.i, [pack_spike_event(k, end, in_bits) for k, end in events], rng=rng, stall=stall)

    async def consumer(ctx):
        got.extend(await stream_get(ctx, dut.o, len(trains), rng=rng, stall=stall))

    sim = simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(1e-6 * (len(events) * 40 + 2000))
    return [unpack(readout_layout(layer), p) for p in got]


@pytest.mark.parametrize("accumulators", ["registers", "ram"])
@pytest.mark.parametrize("seed,lanes,stall", [(1, None, 0.0), (4, 1, 0.4), (6, 2, 0.2), (9, None, 0.5)])
def test_readout_matches_golden(seed, lanes, stall, accumulators):
    model = random_model(seed, hidden=[], pool=False, input_shape=(1, 3, 4), time_steps=4)
    layer = model.layers[-1]
    rng = np.random.default_rng(seed)
    trains = [rng.random((model.time_steps, layer.in_features)) < p for p in (0.4, 1.0, 0.0, 0.7)]
    if lanes is not None:
        lanes = min(lanes, layer.out_features)
    assert _simulate(layer, model.time_steps, trains, lanes, seed, stall, accumulators) == _golden(layer, trains)


def test_saturation_and_lowest_index_wins():
    # Two classes always equal (tie: the lower index wins), a third driven into saturation of 6 bits.
    w = np.array([[5, 3], [5, 3], [127, 127], [-128, -128]], dtype=np.int8)
    layer = Dense(name="out", in_features=2, out_features=4, weights=w, bias=np.array([40, 40, -3, 0]),
                  bias_bits=8, acc_bits=11, neuron=Integrate(mem_bits=7))
    trains = [np.array([[1, 1], [0, 1], [1, 0]], dtype=bool), np.zeros((3, 2), dtype=bool),
              np.array([[0, 0], [0, 0], [1, 1]], dtype=bool)]
    expected = _golden(layer, trains)
    assert expected[0]["readout"] == [63, 63, 63, -64]  # saturated at 2**6 - 1 and -2**6
    assert expected[0]["cls"] == 0
    assert _simulate(layer, 3, trains, 3, 0, 0.3) == expected


def test_refuses_lif_layer():
    model = random_model(2, hidden=[4], pool=False, input_shape=(1, 3, 3))
    with pytest.raises(TypeError, match="^Readout needs the hw.kinds.dense.DensePlan of a readout layer"):
        Readout(plan_layer(model.layers[1], (model.layers[1].in_features,), 2, on_map=False))
