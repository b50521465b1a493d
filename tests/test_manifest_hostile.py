"""Hostile model directories: every reproducer of issue 19 refused with a ManifestError, and a mutation fuzz.

The fuzz runs ``SPIKESMITH_FUZZ_EXAMPLES`` examples per test (default 300, a few seconds); set it higher for a
longer search, e.g. ``SPIKESMITH_FUZZ_EXAMPLES=20000 pytest tests/test_manifest_hostile.py``.
"""

import copy
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golden import manifest as mf
from golden.manifest import ManifestError, load
from golden.network import run
from golden.randmodel import random_inputs

EXAMPLES = int(os.environ.get("SPIKESMITH_FUZZ_EXAMPLES", "300"))
TINY = Path("models/tiny")


@pytest.fixture
def tiny(tmp_path):
    shutil.copytree(TINY, tmp_path / "m")
    return tmp_path / "m"


def edit(path, fn):
    doc = json.loads((path / "manifest.json").read_text())
    fn(doc)
    (path / "manifest.json").write_text(json.dumps(doc))


def write_raw(path, text):
    (path / "manifest.json").write_text(text)


def conv(d):
    return d["layers"][0]


@pytest.mark.parametrize("change,msg", [
    # ROM references
    (lambda d: conv(d)["weights"].update(file=""), r"weights.file '' must be a plain file name"),
    (lambda d: conv(d)["weights"].update(file="a" * 300), "must be a plain file name in the model directory: 1 "
                                                          r"\.\.\. 128 characters"),
    (lambda d: conv(d)["weights"].update(file="a\0b"), r"file 'a\\x00b' must be a plain file name"),
    (lambda d: conv(d)["weights"].update(file="\udc80.hex"), r"file '\\udc80.hex' must be a plain file name"),
    (lambda d: conv(d)["weights"].update(file="."), r"file '\.' must be a plain file name"),
    (lambda d: conv(d)["weights"].update(shape=[None, 1, 3, 3]), r"weights.shape\[0\] must be an integer, not None"),
    (lambda d: conv(d)["weights"].update(shape=["a", 1, 3, 3]), r"weights.shape\[0\] must be an integer, not 'a'"),
    (lambda d: conv(d)["weights"].update(shape=["2", True, 3.0, 3]), r"weights.shape\[0\] must be an integer"),
    (lambda d: conv(d)["weights"].update(shape=[2, 1, 3]), r"weights.shape is \[2, 1, 3\], \[2, 1, 3, 3\] expected"),
    (lambda d: conv(d)["bias"].update(bits=True), "bias.bits must be an integer, not True"),
    (lambda d: conv(d)["bias"].update(sha256="xyz"), "bias.sha256 'xyz' must be 64 hexadecimal digits"),
    (lambda d: conv(d)["weights"].update(sha256=conv(d)["weights"]["sha256"].upper()), None),
    # sizes
    (lambda d: d.update(input_shape=[1, 65536, 65536]), r"input_shape \[1, 65536, 65536\] has 4,294,967,296 "
                                                        r"values; golden and the generator hold at most 1,048,576"),
    (lambda d: (conv(d).update(out_channels=65536, in_channels=65536, kernel=[65536, 65536]),
                conv(d)["weights"].update(shape=[65536] * 4)),
     r"layer conv1.weights: with shape \[65536, 65536, 65536, 65536\] the network has "
     r"18,446,744,073,709,551,616 weights; golden and the generator hold at most 4,194,304"),
    (lambda d: d.update(input_shape=[1, 8, 65537]), r"input_shape\[2\] must be an integer from 1 to 65536"),
    # fields accepted before and crashing later
    (lambda d: conv(d).update(weight_scale="x"), "layer conv1.weight_scale must be a number, not 'x'"),
    (lambda d: conv(d).update(weight_scale=-1.0), "weight_scale must be a finite positive number, not -1.0"),
    (lambda d: d.update(classes=["a", "\udc80", "c", "d"]), r"classes\[1\] '\\udc80' holds the unprintable"),
    (lambda d: d.update(classes=["a", "a", "c", "d"]), r"classes\[1\] 'a' is used twice"),
    (lambda d: d.update(classes=["a", "", "c", "d"]), r"classes\[1\] is empty or blank"),
    (lambda d: d.update(classes=["a", 1, "c", "d"]), r"classes\[1\] must be a string, not int"),
    (lambda d: d.update(classes=["a", "b\nc", "c", "d"]), r"classes\[1\] 'b\\nc' holds the unprintable"),
    (lambda d: conv(d).update(name="conv1\n"), r"layer 0: name 'conv1\\n' must be 1 \.\.\. 64 characters of A-Z"),
    (lambda d: d.update(name="tiny\n"), r"name 'tiny\\n' must be 1 \.\.\. 64 characters"),
    (lambda d: d.update(features={"std": "x"}), None),  # a string is a valid JSON value; train.features types it
    (lambda d: d.update(features={"std": [1.0, {"a": 1}]}), r"features.std\[1\] must be a number, not \{'a': 1\}"),
    (lambda d: d.update(features={"mean": [1.0] * 5000}), "features.mean has 5,000 entries; at most 4,096"),
    (lambda d: d.update(features=[1]), "features must be an object or null, not list"),
    (lambda d: d.update(quantization={"input_scale": True}), None),
    (lambda d: d.update(description=7), "description must be a string, not int"),
    (lambda d: d.update(time_steps=4.0), "time_steps must be an integer, not 4.0"),
    (lambda d: d.update(version=True), "version True is not supported"),
    (lambda d: d.update(input_bits=8.0), "input_bits is 8.0; version 1 supports 8"),
    (lambda d: conv(d)["neuron"].update(mem_bits=2, threshold=1, leak_shift=0),
     "neuron.mem_bits must be an integer from 3 to 32, not 2"),
    (lambda d: conv(d).update(acc_bits=49), "acc_bits must be an integer from 2 to 48, not 49"),
    (lambda d: d["layers"].__setitem__(1, "pool"), "layer 1 must be an object, not str"),
    (lambda d: conv(d).update(neuron=None), "layer conv1.neuron must be of type dict, not NoneType"),
    (lambda d: d.update(training={"dataset": "fsdd", "split": "official"}), None),
    (lambda d: d.update(training={"Split": "official"}), r"training: key 'Split' must match"),
])
def test_hostile_fields_are_refused_naming_them(tiny, change, msg):
    edit(tiny, change)
    if msg is None:
        load(tiny)
        return
    with pytest.raises(ManifestError, match=msg):
        load(tiny)


@pytest.mark.parametrize("text,msg", [
    ('{"version": ' + "9" * 5000 + "}", "holds an integer of 5,000 digits; at most 18 are allowed"),
    ("[" * 100_000, "nested more than 32 levels deep"),
    ('{"a": NaN}', "holds NaN, which is not a JSON number"),
    ('{"a": -Infinity}', "holds -Infinity, which is not a JSON number"),
    ('{"a": 1e999}', "holds the number 1e999, which is too large for a float"),
    ('{"a": 1, "a": 2}', "key 'a' appears twice in one object"),
    ("[]", "the top level must be an object"),
    ('{"format": "spikesmith-model", "version": 1, "input_bits": 8, "layers": {}}', "layers must be of type list"),
])
def test_hostile_json_is_refused(tiny, text, msg):
    write_raw(tiny, text)
    with pytest.raises(ManifestError, match=msg):
        load(tiny)


def test_non_utf8_manifest(tiny):
    (tiny / "manifest.json").write_bytes(b'{"name": "\xff"}')
    with pytest.raises(ManifestError, match=r"manifest.json: not UTF-8 text \(byte 10: invalid start byte\)"):
        load(tiny)


def test_std_nan_in_the_shipped_model_is_refused(tmp_path):
    shutil.copytree("models/fsdd_scnn", tmp_path / "m")
    text = (tmp_path / "m" / "manifest.json").read_text().replace("16.071433301046053", "NaN")
    write_raw(tmp_path / "m", text)
    with pytest.raises(ManifestError, match="holds NaN"):
        load(tmp_path / "m")


def test_bias_bits_change_no_longer_flips_a_sign(tiny):
    """A 10-bit bias of -512 (200) read as 32 bits was +512: now the digit count refuses it (same file, same hash)."""
    edit(tiny, lambda d: conv(d)["bias"].update(bits=32))
    with pytest.raises(ManifestError, match="conv1.bias.hex line 1: '200' has 3 digits; 32-bit values have "
                                            "exactly 8"):
        load(tiny)


# -- mutation fuzz ----------------------------------------------------------------------------------------------

_BASE = json.loads((TINY / "manifest.json").read_text())
_ROMS = {p.name: p.read_bytes() for p in TINY.glob("*.hex")}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["conv2d", "pool", "dense", "lif", "integrate", "subtract", "zero",
                                              "conv1.weights.hex", "", "..", "manifest.json"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)
small_ints = st.integers(-3, 70000) | st.sampled_from([0, 1, 2, 3, 8, 31, 32, 33, 48, 49, 1024, 1025, 65536])


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


_ALL_PATHS = [p for p in _paths(_BASE) if p]


@st.composite
def mutated_manifests(draw):
    doc = copy.deepcopy(_BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_ALL_PATHS))
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = draw(st.sampled_from(["value", "int", "delete", "dup"]))
            if action == "delete":
                del parent[path[-1]]
            elif action == "dup" and isinstance(parent, list):
                parent.append(copy.deepcopy(parent[path[-1]]))
            else:
                parent[path[-1]] = draw(small_ints if action == "int" else json_values)
        except (KeyError, IndexError, TypeError):
            pass
    return doc


@st.composite
def mutated_roms(draw):
    roms = dict(_ROMS)
    name = draw(st.sampled_from(sorted(roms)))
    raw = bytearray(roms[name])
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(raw)))
        byte = draw(st.sampled_from(b"0123456789abcdefABCDEF\n\r +-_x") | st.integers(0, 255))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        if action == "insert":
            raw.insert(where, byte)
        elif where < len(raw):
            if action == "replace":
                raw[where] = byte
            else:
                del raw[where]
    roms[name] = bytes(raw)
    return name, roms, draw(st.booleans())


def _accepts_or_refuses(doc_text, roms):
    """Load the directory: it must either load and work in golden, or raise ManifestError; nothing else."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m"
        path.mkdir()
        (path / "manifest.json").write_text(doc_text)
        for name, data in roms.items():
            (path / name).write_bytes(data)
        try:
            model = load(path)
        except ManifestError as e:
            str(e).encode("utf-8")  # printable: the CLIs print it
            return
        x = random_inputs(model, 1, np.random.default_rng(0))
        assert run(model, x).readout.shape == (1, len(model.classes))
        mf.model_hash(model)
        mf.save(model, Path(tmp) / "again")
        assert mf.model_hash(load(Path(tmp) / "again")) == mf.model_hash(model)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_manifests())
def test_fuzz_mutated_manifest_is_refused_or_works(doc):
    _accepts_or_refuses(json.dumps(doc), _ROMS)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_roms())
def test_fuzz_mutated_rom_is_refused_or_reads_exactly(case):
    name, roms, fix_hash = case
    doc = copy.deepcopy(_BASE)
    if fix_hash:
        for layer in doc["layers"]:
            for key in ("weights", "bias"):
                if key in layer and layer[key]["file"] == name:
                    layer[key]["sha256"] = hashlib.sha256(roms[name]).hexdigest()
    _accepts_or_refuses(json.dumps(doc), roms)
