"""Manifest round trip, ROM file format, and every refusal path of loading and saving."""

import hashlib
import json
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest

from golden import manifest as mf
from golden import store
from golden.manifest import LIF, Dense, Integrate, ManifestError, load, save
from golden.network import run
from golden.randmodel import random_inputs, random_model


@pytest.fixture
def saved(tmp_path):
    model = random_model(4)
    save(model, tmp_path / "m")
    return model, tmp_path / "m"


def edit(path, fn):
    doc = json.loads((path / "manifest.json").read_text())
    fn(doc)
    (path / "manifest.json").write_text(json.dumps(doc))


def only_the_current_version(path):
    """The target is a link to the one hidden version beside it, and nothing else is left over."""
    hidden = [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
    return store.leftovers(path) == [] and hidden == [os.readlink(path)]


def rewrite_rom(path, name, text):
    """Replace a ROM file and fix its hash, so that the content check (not the hash) is what refuses it."""
    (path / name).write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()

    def fix(doc):
        for l in doc["layers"]:
            for key in ("weights", "bias"):
                if key in l and l[key]["file"] == name:
                    l[key]["sha256"] = digest
    edit(path, fix)


@pytest.mark.parametrize("seed", range(10))
def test_round_trip_is_exact(tmp_path, seed):
    model = random_model(seed)
    save(model, tmp_path / "m")
    back = load(tmp_path / "m")
    assert back.input_shape == model.input_shape and back.time_steps == model.time_steps
    for a, b in zip(model.layers, back.layers):
        assert a.type == b.type and a.name == b.name
        if a.type != "pool":
            assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
            assert a.neuron == b.neuron and a.acc_bits == b.acc_bits and a.bias_bits == b.bias_bits
    x = random_inputs(model, 5, np.random.default_rng(seed))
    assert np.array_equal(run(model, x).readout, run(back, x).readout)
    assert mf.model_hash(model) == mf.model_hash(back)


def test_rom_file_format_is_readmemh_hex(saved):
    model, path = saved
    conv = model.layers[0]
    lines = (path / "conv1.weights.hex").read_text().splitlines()
    assert len(lines) == conv.weights.size
    assert all(len(line) == 2 for line in lines)
    assert lines[0] == f"{int(conv.weights.ravel()[0]) & 0xff:02x}"
    assert mf.rom_text([-1, 0, 127, -128], 8) == "ff\n00\n7f\n80\n"
    assert mf.rom_text([-1, 5], 20) == "fffff\n00005\n"
    assert mf.rom_text([-2, 1], 3) == "6\n1\n"


def test_model_hash_changes_with_any_weight(saved):
    model, _ = saved
    w = model.layers[-1].weights.copy()
    w[0, 0] = w[0, 0] + 1 if w[0, 0] < 127 else 126
    other = replace(model.layers[-1], weights=w)
    changed = mf.Model(**{**model.__dict__, "layers": model.layers[:-1] + [other]})
    assert mf.model_hash(changed) != mf.model_hash(model)


def test_save_is_atomic_and_replaces_an_existing_model(saved, tmp_path):
    model, path = saved
    bigger = random_model(21)
    save(bigger, path)
    assert load(path).name == bigger.name
    assert only_the_current_version(path)


def test_invalid_model_writes_nothing_and_keeps_the_old_one(saved, tmp_path):
    model, path = saved
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    bad = mf.Model(**{**model.__dict__, "time_steps": 0})
    with pytest.raises(ManifestError, match="time_steps must be an integer from 1 to 1024, not 0"):
        save(bad, path)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert only_the_current_version(path)


def test_interrupted_save_keeps_the_old_model(saved, tmp_path, monkeypatch):
    model, path = saved
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    real = mf.rom_text
    calls = []

    def failing(values, bits):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(values, bits)
    monkeypatch.setattr(mf, "rom_text", failing)
    with pytest.raises(KeyboardInterrupt):
        save(random_model(5), path)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert only_the_current_version(path)


@pytest.mark.parametrize("change,msg", [
    (lambda d: d.update(version=3), r"version 3 is not supported \(this spikesmith reads versions 1, 2\)"),
    (lambda d: d.update(format="other"), "field 'format' is 'other'; expected 'spikesmith-model'"),
    (lambda d: d.pop("format"), "field 'format' is None; expected 'spikesmith-model'"),
    (lambda d: d.pop("time_steps"), "field 'time_steps' is missing"),
    (lambda d: d.update(time_steps=5000), "time_steps must be an integer from 1 to 1024, not 5000"),
    (lambda d: d.update(input_bits=16), "input_bits is 16"),
    (lambda d: d["layers"][0].update(type="conv3d"), r"unknown type 'conv3d' \(known: conv2d, pool, dense\)"),
    (lambda d: d["layers"][-1].update(in_features=d["layers"][-1]["in_features"] + 1), "shape is"),
    (lambda d: d["layers"][0]["neuron"].update(threshold=0), "threshold must be an integer from 1 to "),
    (lambda d: d["layers"][0]["neuron"].update(reset="hard"), "reset is 'hard'"),
    (lambda d: d["layers"][0]["neuron"].update(kind="izhikevich"), "kind is 'izhikevich'; known: lif, integrate"),
    (lambda d: d["layers"][0].update(acc_bits=3), r"acc_bits 3 cannot hold currents from .* \(needs \d+\)"),
    (lambda d: d["layers"][-1]["neuron"].update(kind="lif", leak_shift=1, threshold=3, reset="zero"),
     "last layer must have the integrating readout"),
    (lambda d: d.update(classes=["a"]), "classes has 1 labels; the readout has"),
    (lambda d: d["layers"][0]["weights"].update(file="../x.hex"), "must be a plain file name"),
    (lambda d: d["layers"][0]["weights"].update(sha256="0" * 64), "does not match its sha256"),
    (lambda d: d["layers"][0].update(stride=[0, 1]), r"stride\[0\] must be an integer from 1 to 65536, not 0"),
    (lambda d: d["layers"].insert(3, dict(d["layers"][0], name="x")), r"layer x: conv2d needs a map \[C, H, W\] "
                                                                      "as input, not the 7 values of a dense layer"),
])
def test_refusals_name_the_field_and_bound(saved, change, msg):
    _, path = saved
    edit(path, change)
    with pytest.raises(ManifestError, match=msg):
        load(path)


def test_shapes_that_do_not_chain_are_refused(saved):
    model, path = saved
    dense = model.layers[2]
    n = dense.in_features - 1
    short = replace(dense, in_features=n, weights=dense.weights[:, :n].copy())
    bad = mf.Model(**{**model.__dict__, "layers": model.layers[:2] + [short] + model.layers[3:]})
    with pytest.raises(ManifestError, match=f"in_features {n} does not match the previous layer's output of "
                                            f"{dense.in_features} values"):
        mf.validate(bad)


def test_missing_rom_file(saved):
    _, path = saved
    os.remove(path / "fc1.weights.hex")
    with pytest.raises(ManifestError, match="layer fc1.weights: file fc1.weights.hex is missing"):
        load(path)


def test_wrong_count_of_values(saved):
    model, path = saved
    lines = (path / "fc1.weights.hex").read_text().splitlines()
    rewrite_rom(path, "fc1.weights.hex", "\n".join(lines[:-1]) + "\n")
    with pytest.raises(ManifestError, match=f"has {len(lines) - 1:,} values, {len(lines):,} expected"):
        load(path)


def test_value_outside_int8(saved):
    _, path = saved
    lines = (path / "conv1.weights.hex").read_text().splitlines()
    lines[3] = "1ff"
    rewrite_rom(path, "conv1.weights.hex", "\n".join(lines) + "\n")
    with pytest.raises(ManifestError, match="layer conv1.weights: file conv1.weights.hex line 4: '1ff' has 3 "
                                            "digits; 8-bit values have exactly 2"):
        load(path)


def test_value_that_is_not_hex(saved):
    _, path = saved
    lines = (path / "out.bias.hex").read_text().splitlines()
    lines[0] = "zz"
    rewrite_rom(path, "out.bias.hex", "\n".join(lines) + "\n")
    with pytest.raises(ManifestError, match="line 1: 'zz' holds 'z'; a value is ASCII hexadecimal digits only"):
        load(path)


def test_bias_outside_its_width_is_refused():
    model = random_model(2)
    conv = model.layers[0]
    big = replace(conv, bias=np.full_like(conv.bias, 1 << conv.bias_bits))
    with pytest.raises(ManifestError, match=f"does not fit bias_bits {conv.bias_bits}"):
        mf.validate(mf.Model(**{**model.__dict__, "layers": [big] + model.layers[1:]}))


def test_missing_directory_and_manifest(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="manifest.json is missing"):
        load(tmp_path / "empty")
    (tmp_path / "empty" / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load(tmp_path / "empty")


def test_saved_directory_is_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        save(random_model(1), tmp_path / "m")
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755


def test_required_acc_bits_is_tight():
    layer = Dense(name="d", in_features=3, out_features=2, weights=np.array([[127, 127, 1], [-128, -128, 0]],
                  dtype=np.int8), bias=np.array([0, -1]), bias_bits=4, acc_bits=10, neuron=Integrate(12))
    # Currents reach 255 and -257: 10 bits hold -512 ... 511, 9 bits only -256 ... 255.
    assert mf.current_range(layer)[0].tolist() == [0, -257]
    assert mf.current_range(layer)[1].tolist() == [255, -1]
    assert mf.required_acc_bits(layer) == 10


def test_shipped_tiny_model_loads(tiny_shipped):
    assert tiny_shipped.name == "tiny" and tiny_shipped.weight_count > 0


def test_hardware_options_travel_with_the_model_and_feed_the_plan(tmp_path):
    from hw.plan import plan

    model = random_model(4)
    dense = next(l.name for l in model.layers if l.type == "dense")
    lanes = {lp.name: getattr(lp, "lanes", None) for lp in plan(model).layers}[dense]
    chosen = 1 if lanes != 1 else 2
    with_hw = replace(model, hardware={"iCE40UP5K": {dense: {"lanes": chosen}}, "LFE5U-25F": {}})
    save(with_hw, tmp_path / "m")
    back = load(tmp_path / "m")
    assert back.hardware == with_hw.hardware
    assert mf.model_hash(back) == mf.model_hash(model)  # options do not change the arithmetic
    chosen_of = lambda p: {lp.name: getattr(lp, "lanes", None) for lp in p.layers}[dense]  # noqa: E731
    assert chosen_of(plan(back)) == chosen                    # the model's own options on its device
    assert chosen_of(plan(back, params={})) == lanes          # params replace them, {} by none
    assert chosen_of(plan(back, params={dense: {"lanes": lanes}})) == lanes


@pytest.mark.parametrize("hardware, msg", [
    ([1], r"hardware must be an object of at most 16 devices"),
    ({"iCE40 UP5K": {}}, r"hardware: device 'iCE40 UP5K' must be 1 \.\.\. \d+ characters of A-Z a-z 0-9 _ -"),
    ({"iCE40UP5K": {"nope": {"lanes": 1}}}, r"hardware\.iCE40UP5K: the model has no layer 'nope'"),
    ({"iCE40UP5K": {"LAYER": [1]}}, r"hardware\.iCE40UP5K\.LAYER must be an object of at most 16 options"),
    ({"iCE40UP5K": {"LAYER": {"Lanes": 1}}}, r"option 'Lanes' must match"),
    ({"iCE40UP5K": {"LAYER": {"lanes": 1.5}}}, r"hardware\.iCE40UP5K\.LAYER\.lanes must be a string, an integer"),
])
def test_bad_hardware_options_are_refused(saved, hardware, msg):
    model, path = saved
    layer = model.layers[0].name
    text = json.loads(json.dumps(hardware).replace("LAYER", layer))
    edit(path, lambda doc: doc.update(hardware=text))
    with pytest.raises(ManifestError, match=msg.replace("LAYER", layer)):
        load(path)
