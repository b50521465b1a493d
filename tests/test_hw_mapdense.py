# amaranth: UnusedElaboratable=no
"""MapDenseLayer (a dense first layer on the INT8 map) against golden.network, with random stalls on both streams;
its timeline against the RTL."""

import numpy as np
import pytest

from golden.network import first_layer_current, lif_step
from golden.randmodel import random_deep_model, random_inputs
from hw.layouts import bits_for_count, unpack_spike_event
from hw.mapdense import MapDenseLayer, timeline
from hw.plan import plan_layer

from hw_streams import run_stream, simulator


def _golden_events(model, x):
    layer = model.layers[0]
    current = first_layer_current(x, layer)[0]
    out = []
    for cur in current:
        v = np.zeros_like(cur)
        for _ in range(model.time_steps):
            v, spikes = lif_step(v, cur, layer.neuron)
            out += [(int(k), 0) for k in np.flatnonzero(spikes)]
            out.append((0, 1))
    return out


@pytest.mark.parametrize("state", ["bram", "spram"])
@pytest.mark.parametrize("seed,lanes,stall", [(0, None, 0.0), (1, 1, 0.3), (2, 2, 0.5), (4, 3, 0.2), (7, None, 0.4)])
def test_mapdense_matches_golden(seed, lanes, stall, state):
    model = random_deep_model(seed, dense_first=True, time_steps=3)
    layer = model.layers[0]
    x = random_inputs(model, 3, np.random.default_rng(seed))
    if lanes is not None:
        lanes = min(lanes, layer.out_features)
    plan = plan_layer(layer, model.input_shape, model.time_steps, on_map=True,
                      options={"state": state} | ({} if lanes is None else {"lanes": lanes}))
    expected = _golden_events(model, x)
    values = [int(v) & 0xff for v in x.reshape(-1)]
    per_sample = int(timeline(plan, None, None, np.zeros((1, 1, 1)))["finish"][0])
    got = run_stream(MapDenseLayer(plan), values, len(expected), rng=np.random.default_rng(seed), stall=stall,
                     until=1e-6 * (len(x) * per_sample * (1 + 4 * stall) + 1000))
    assert [unpack_spike_event(p, bits_for_count(layer.out_features)) for p in got] == expected


@pytest.mark.parametrize("state", ["bram", "spram"])
@pytest.mark.parametrize("lanes", [1, 2])
def test_timeline(lanes, state):
    """Input always offered, output always taken: the markers leave when the timeline says (cycle 0: the first
    input transfer)."""

    model = random_deep_model(3, dense_first=True, time_steps=3)
    layer = model.layers[0]
    plan = plan_layer(layer, model.input_shape, model.time_steps, on_map=True,
                      options={"lanes": lanes, "state": state})
    dut = MapDenseLayer(plan)
    x = random_inputs(model, 1, np.random.default_rng(0)).reshape(-1)
    markers = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        k, first = 0, None
        for cycle in range(len(x) * plan.groups + 4 * (plan.neurons + 2) * model.time_steps):
            ctx.set(dut.i.valid, k < len(x))
            ctx.set(dut.i.payload, int(x[k]) if k < len(x) else 0)
            if k < len(x) and ctx.get(dut.i.ready):
                first = cycle if first is None else first
                k += 1
            if ctx.get(dut.o.valid) and ctx.get(dut.o.payload.end):
                markers.append(cycle - first)
            await ctx.tick()

    sim = simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = timeline(plan, None, None, np.zeros((1, model.time_steps, plan.neurons), dtype=bool))["markers"][0]
    assert markers == want.tolist()


def test_refuses_bad_parameters():
    model = random_deep_model(0, dense_first=True)
    layer = model.layers[0]
    with pytest.raises(ValueError, match=rf"^layer fc1: lanes must be an integer from 1 to {layer.out_features}, "):
        plan_layer(layer, model.input_shape, 2, on_map=True, options={"lanes": layer.out_features + 1})
    with pytest.raises(ValueError, match=r"^layer fc1: in_features \d+ does not match the 1 values of the input map$"):
        plan_layer(layer, (1, 1, 1), 2, on_map=True)
    with pytest.raises(TypeError, match=r"^MapDenseLayer needs a hw.kinds.mapdense.MapDensePlan, not None$"):
        MapDenseLayer(None)
    with pytest.raises(ValueError, match=r"^layer fc1: state must be 'bram' or 'spram', not 1$"):
        plan_layer(layer, model.input_shape, 2, on_map=True, options={"state": 1})
    with pytest.raises(ValueError, match=r"^layer fc1: state 'spram' needs a device with SPRAM; the GW1NR-9 has none "):
        plan_layer(layer, model.input_shape, 2, on_map=True, device="GW1NR-9", options={"state": "spram"})
