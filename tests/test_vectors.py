"""Test vectors carried by a model: saved and loaded with their hash, refused when they do not fit, and the shipped
ones equal to what the front-end makes of the recordings today."""

import io
import json
import zipfile

import numpy as np
import pytest

import golden.manifest as gm
from golden.randmodel import random_inputs, random_model
from golden.vectors import TestVectors, decode, encode

from conftest import FSDD, ROOT


def vectors_for(model, n=5, seed=0):
    rng = np.random.default_rng(seed)
    return TestVectors(x=random_inputs(model, n, rng), y=rng.integers(0, len(model.classes), n),
                       names=[f"s{i}.wav" for i in range(n)], source="random maps for a test")


def test_round_trip_keeps_vectors_and_hash(tmp_path):
    model = random_model(3)
    plain = gm.model_hash(model)
    model.test_vectors = vectors_for(model)
    gm.save(model, tmp_path / "m")
    back = gm.load(tmp_path / "m")
    assert np.array_equal(back.test_vectors.x, model.test_vectors.x)
    assert back.test_vectors.y.tolist() == model.test_vectors.y.tolist()
    assert back.test_vectors.names == model.test_vectors.names
    assert back.test_vectors.source == "random maps for a test"
    assert gm.model_hash(back) == plain
    doc = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert doc["test_vectors"]["count"] == 5 and doc["test_vectors"]["file"] == "vectors.npz"


def _saved(tmp_path):
    model = random_model(4)
    model.test_vectors = vectors_for(model)
    gm.save(model, tmp_path / "m")
    return model, tmp_path / "m"


def _rewrite(path, data=None, **fields):
    doc = json.loads((path / "manifest.json").read_text())
    if data is not None:
        (path / "vectors.npz").unlink()
        (path / "vectors.npz").write_bytes(data)
        import hashlib
        doc["test_vectors"]["sha256"] = hashlib.sha256(data).hexdigest()
    doc["test_vectors"].update(fields)
    (path / "manifest.json").unlink()
    (path / "manifest.json").write_text(json.dumps(doc))


def test_edited_vectors_are_refused(tmp_path):
    _, path = _saved(tmp_path)
    data = bytearray((path / "vectors.npz").read_bytes())
    data[-30] ^= 1
    (path / "vectors.npz").unlink()
    (path / "vectors.npz").write_bytes(bytes(data))
    with pytest.raises(gm.ManifestError, match="test_vectors: file vectors.npz does not match its sha256"):
        gm.load(path)


def test_count_must_match(tmp_path):
    _, path = _saved(tmp_path)
    _rewrite(path, count=6)
    with pytest.raises(gm.ManifestError, match="the file holds 5 samples; count says 6"):
        gm.load(path)


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((2, 1, 1, 1), np.int8), "y": np.zeros(2, np.int64), "names": np.array(["a", "b"])},
     r"x has shape \[2, 1, 1, 1\]; \[N, 2, 8, 10\] expected"),
    ({"x": None, "y": np.array([0, 99]), "names": np.array(["a", "b"])}, "y holds class 99"),
    ({"x": None, "y": np.zeros(2, np.int64), "names": np.array(["a", "\u00e9"])}, "printable ASCII names"),
    ({"x": None, "y": np.zeros(2, np.int64)}, "must hold x, y and names"),
    ({"x": None, "y": np.zeros(2, np.int64), "names": np.array([{"a": 1}, {}], dtype=object)},
     "not a readable .npz archive"),
])
def test_malformed_archives_are_refused(tmp_path, arrays, message):
    model, path = _saved(tmp_path)
    if "x" in arrays and arrays["x"] is None:
        arrays["x"] = np.zeros((2, *model.input_shape), np.int8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _rewrite(path, buf.getvalue(), count=2)
    with pytest.raises(gm.ManifestError, match=message):
        gm.load(path)


def test_not_an_archive_and_extra_members_are_refused():
    with pytest.raises(gm.ManifestError, match="not a readable .npz archive"):
        decode(b"not a zip", input_shape=(1, 2, 2), classes=2, source="s")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in ("x.npy", "y.npy", "names.npy", "evil.npy"):
            z.writestr(name, b"")
    with pytest.raises(gm.ManifestError, match="must hold x, y and names"):
        decode(buf.getvalue(), input_shape=(1, 2, 2), classes=2, source="s")


def test_encode_decode_round_trip():
    model = random_model(5)
    v = vectors_for(model, n=3)
    back = decode(encode(v), input_shape=model.input_shape, classes=len(model.classes), source=v.source)
    assert np.array_equal(back.x, v.x) and back.names == v.names


@pytest.mark.skipif(not FSDD.is_dir(), reason="FSDD recordings not available")
def test_shipped_vectors_are_what_the_front_end_makes_today():
    from train.vectors import fsdd_vectors
    model = gm.load(ROOT / "models" / "fsdd_scnn")
    assert model.test_vectors is not None and len(model.test_vectors) == 300
    fresh = fsdd_vectors(model, FSDD, progress=False)
    assert np.array_equal(fresh.x, model.test_vectors.x), "regenerate with python -m train.vectors"
    assert fresh.y.tolist() == model.test_vectors.y.tolist() and fresh.names == model.test_vectors.names
