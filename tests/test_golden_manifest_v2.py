"""Manifest version 2: stacked layers, the versions written and read, and the accumulator bound of spike inputs."""

import json
from dataclasses import replace

import numpy as np
import pytest

from golden import manifest as mf
from golden.manifest import ManifestError, load, save
from golden.network import run
from golden.randmodel import random_deep_model, random_inputs, random_model


@pytest.mark.parametrize("seed", range(12))
def test_deep_round_trip_is_exact_and_written_as_version_2(tmp_path, seed):
    model = random_deep_model(seed)
    save(model, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["version"] == 2
    back = load(tmp_path / "m")
    assert [l.type for l in back.layers] == [l.type for l in model.layers]
    x = random_inputs(model, 4, np.random.default_rng(seed))
    assert np.array_equal(run(model, x).readout, run(back, x).readout)
    assert mf.model_hash(model) == mf.model_hash(back)


def test_version_1_family_is_still_written_as_version_1(tmp_path):
    model = random_model(4)
    save(model, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["version"] == 1
    assert mf.manifest_version(model) == 1 and load(tmp_path / "m").name == model.name


def test_a_version_1_manifest_cannot_hold_a_stack(tmp_path):
    model = random_deep_model(2, dense_first=False)
    save(model, tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    doc = json.loads(path.read_text())
    doc["version"] = 1
    path.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match=r"^manifest.json: version 1 allows only a conv2d first layer and no other "
                                            r"conv2d; this layer stack needs version 2$"):
        load(tmp_path / "m")


def test_accumulator_bound_of_a_conv_on_spikes_is_the_sum_of_signed_weights():
    model = random_deep_model(2, dense_first=False)
    conv2 = model.layer("conv2")
    w = conv2.weights.astype(np.int64).reshape(conv2.out_channels, -1)
    lo, hi = mf.current_range(conv2, on_map=False)
    assert np.array_equal(lo, conv2.bias + np.minimum(w, 0).sum(axis=1))
    assert np.array_equal(hi, conv2.bias + np.maximum(w, 0).sum(axis=1))
    # the version 1 default for a conv2d is the INT8 bound, wider
    assert mf.required_acc_bits(conv2) >= mf.required_acc_bits(conv2, on_map=False)
    assert conv2.acc_bits >= mf.required_acc_bits(conv2, on_map=False)
    need = mf.required_acc_bits(conv2, on_map=False)
    short = replace(conv2, acc_bits=need - 1)
    layers = [short if l.name == "conv2" else l for l in model.layers]
    with pytest.raises(ManifestError, match=rf"layer conv2: acc_bits {need - 1} cannot hold currents from .* "
                                            rf"\(needs {need}\)"):
        mf.validate(replace(model, layers=layers))


def test_accumulator_bound_of_a_dense_first_layer_is_the_int8_bound():
    model = random_deep_model(0, dense_first=True)
    fc1 = model.layers[0]
    w = fc1.weights.astype(np.int64)
    lo, hi = mf.current_range(fc1, on_map=True)
    assert np.array_equal(hi, fc1.bias + np.maximum(127 * w, -128 * w).sum(axis=1))
    need = mf.required_acc_bits(fc1, on_map=True)
    assert fc1.acc_bits >= need > mf.required_acc_bits(fc1)
    with pytest.raises(ManifestError, match=rf"layer {fc1.name}: acc_bits {need - 1} cannot hold"):
        mf.validate(replace(model, layers=[replace(fc1, acc_bits=need - 1)] + model.layers[1:]))


def test_structural_rules():
    model = random_deep_model(2, dense_first=False)
    pool_first = mf.Pool(name="p0", kernel=(1, 1))
    with pytest.raises(ManifestError, match="layer p0: pool needs a spike map"):
        mf.validate(replace(model, layers=[pool_first] + model.layers))
    dense = next(l for l in model.layers if l.type == "dense")
    after = model.layers.index(dense) + 1
    conv = replace(model.layers[0], name="late")
    with pytest.raises(ManifestError, match=r"layer late: conv2d needs a map \[C, H, W\] as input, not the \d+ values "
                                            r"of a dense layer"):
        mf.validate(replace(model, layers=model.layers[:after] + [conv] + model.layers[after:]))
    conv2 = model.layer("conv2")
    wrong = replace(conv2, in_channels=conv2.in_channels + 1,
                    weights=np.zeros((conv2.out_channels, conv2.in_channels + 1, *conv2.kernel), dtype=np.int8))
    with pytest.raises(ManifestError, match=f"layer conv2: in_channels {conv2.in_channels + 1} does not match the "
                                            f"input's {conv2.in_channels} channels"):
        mf.validate(replace(model, layers=[wrong if l.name == "conv2" else l for l in model.layers]))
    with pytest.raises(ManifestError, match="layers is empty; a model needs a conv2d or dense layer first"):
        mf.validate(replace(model, layers=[]))


def test_a_lone_readout_on_the_map_is_a_model():
    model = random_deep_model(0, dense_first=True)
    out = model.layers[-1]
    n = int(np.prod(model.input_shape))
    lone = replace(out, in_features=n, weights=np.ones((out.out_features, n), dtype=np.int8))
    lone = replace(lone, acc_bits=mf.required_acc_bits(lone, on_map=True))
    m = mf.validate(replace(model, layers=[lone]))
    x = random_inputs(m, 2, np.random.default_rng(0))
    r = run(m, x)
    assert np.array_equal(r.readout, np.clip(m.time_steps * (x.reshape(2, -1).sum(axis=1)[:, None] + lone.bias),
                                             *mf.signed_range(lone.neuron.mem_bits)))
