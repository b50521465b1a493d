"""The random model generator: valid, deterministic, varied and active models."""

import numpy as np

from golden import manifest as mf
from golden.network import run
from golden.randmodel import random_inputs, random_model


def test_same_seed_same_model():
    assert mf.model_hash(random_model(17)) == mf.model_hash(random_model(17))
    assert mf.model_hash(random_model(17)) != mf.model_hash(random_model(18))


def test_many_seeds_are_valid_varied_and_not_silent():
    resets, pools, depths, active = set(), 0, set(), 0
    for seed in range(60):
        m = random_model(seed)
        mf.validate(m)
    for seed in range(240, 300):  # seed 250 once drew a conv whose currents fit 1 bit
        mf.validate(random_model(seed))
    for seed in range(60):
        m = random_model(seed)
        resets.add(m.layers[0].neuron.reset)
        pools += any(l.type == "pool" for l in m.layers)
        depths.add(len(m.layers))
        r = run(m, random_inputs(m, 8, np.random.default_rng(seed)))
        active += r.spikes["conv1"].any()
    assert resets == {"subtract", "zero"}
    assert 10 < pools < 60
    assert len(depths) >= 3
    assert active >= 50


def test_overrides_are_honoured():
    m = random_model(3, input_shape=(2, 5, 6), time_steps=3, hidden=[4, 3], classes=5, pool=False,
                     reset="zero", mem_bits=12)
    assert m.input_shape == (2, 5, 6) and m.time_steps == 3 and len(m.classes) == 5
    assert [l.type for l in m.layers] == ["conv2d", "dense", "dense", "dense"]
    assert all(l.neuron.reset == "zero" for l in m.layers[:-1])
