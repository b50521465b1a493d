"""The random model generator: valid, deterministic, varied and active models."""

import numpy as np

from golden import manifest as mf
from golden.network import run
from golden.randmodel import random_deep_model, random_inputs, random_model


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


FROZEN = "bc8d87ab54098ae4c9b2b3db761423a1b8d43e53dff425ae4e39e00c37f23b50"


def fingerprint(models):
    """SHA-256 of everything that makes a model (independent of the manifest's JSON form)."""
    import hashlib
    h = hashlib.sha256()
    for m in models:
        h.update(repr((m.input_shape, m.time_steps, m.classes)).encode())
        for l in m.layers:
            h.update(repr((l.type, l.name, getattr(l, "kernel", None), getattr(l, "stride", None),
                           getattr(l, "padding", None), getattr(l, "bias_bits", None), getattr(l, "acc_bits", None),
                           getattr(l, "neuron", None))).encode())
            if l.type != "pool":
                h.update(np.asarray(l.weights, dtype=np.int64).tobytes() + np.asarray(l.bias, dtype=np.int64).tobytes())
    return h.hexdigest()


def test_random_model_draws_the_same_models_as_before_deep_models():
    # The hardware tests iterate over these seeds: random_model's draws are frozen (value taken before
    # random_deep_model was added).
    assert fingerprint(random_model(s) for s in range(100)) == FROZEN


def test_deep_models_are_deterministic_valid_and_active():
    assert fingerprint([random_deep_model(5)]) == fingerprint([random_deep_model(5)])
    assert fingerprint([random_deep_model(5)]) != fingerprint([random_deep_model(6)])
    silent = 0
    for seed in range(60):
        m = mf.validate(random_deep_model(seed))
        assert mf.manifest_version(m) == 2 or [l.type for l in m.layers].count("conv2d") == 1
        r = run(m, random_inputs(m, 8, np.random.default_rng(seed)))
        silent += not all(s.any() for s in r.spikes.values())
    assert silent <= 12


def test_deep_overrides_are_honoured():
    m = random_deep_model(3, time_steps=2, dense_first=True, reset="zero", leak_shift=2, mem_bits=14)
    assert m.time_steps == 2 and m.layers[0].type == "dense"
    assert all(l.neuron.reset == "zero" and l.neuron.leak_shift == 2 for l in m.layers[:-1])
    assert {l.neuron.mem_bits for l in m.layers[:-1]} <= set(range(14, 33))
    m = random_deep_model(3, dense_first=False)
    assert [l.type for l in m.layers].count("conv2d") >= 2


def test_cli_writes_a_deep_model(tmp_path, capsys):
    from golden.randmodel import main
    main(["--seed", "4", "--deep", "--out", str(tmp_path / "d")])
    assert mf.load(tmp_path / "d").name == "random_deep_4"
    assert "random_deep_4" in capsys.readouterr().out
