"""The model manifest: load, validate and atomically save a spikesmith model directory.

The format is specified in ``docs/manifest.md``; the arithmetic its parameters control in ``docs/arithmetic.md``.
A model is a :class:`Model` holding a list of layers (:class:`Conv2d`, :class:`Pool`, :class:`Dense`) with their
integer weights in memory. :func:`load` reads and validates a directory, :func:`save` validates and writes one
atomically, :func:`validate` checks an in-memory model; every refusal raises :class:`ManifestError` naming the field
or file and the bound. The records live in :mod:`golden.layers`, the rules :func:`validate` applies in
:mod:`golden.validate`, the ROM file format in :mod:`golden.rom`, the strict JSON layer in :mod:`golden.schema`, the
safe reading and the atomic replacement of the directory in :mod:`golden.store`; this module re-exports the names
users need from them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np

from . import schema, store, vectors as tv
from .checks import MAX_TIME_STEPS
from .layers import LIF, Conv2d, Dense, Integrate, Model, Pool, current_range, required_acc_bits
from .rom import RomError, parse_rom, rom_size, signed_range
from .rom import rom_text as _rom_text
from .rom import write_rom
from .schema import ManifestError, field_int as _int, get as _get
from .validate import (LAYER_TYPES, MAX_DIM, MAX_NEURON_STEPS, MAX_NEURONS, MAX_WEIGHTS, _NAME, _check_size, _pair,
                       validate)

__all__ = [
    "FORMAT", "VERSION", "MAX_TIME_STEPS", "MAX_WEIGHTS", "MAX_NEURONS", "MAX_NEURON_STEPS", "MAX_DIM",
    "ManifestError", "LIF", "Integrate", "Conv2d", "Pool", "Dense", "Model",
    "load", "save", "validate", "required_acc_bits", "current_range", "model_hash", "read_rom", "write_rom",
    "rom_text", "signed_range", "READ_VERSIONS", "manifest_version",
]

FORMAT = "spikesmith-model"
VERSION = 2
#: Versions the loader reads: version 1 is the first-layer-conv2d family; version 2 adds stacked layers (docs/manifest.md).
READ_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def rom_text(values, bits):
    """The ROM file text of ``values`` (:func:`golden.rom.rom_text`); refusals as :class:`ManifestError`."""
    try:
        return _rom_text(values, bits)
    except RomError as e:
        raise ManifestError(str(e)) from None


# -- ROM files -----------------------------------------------------------------------------------------------------

def read_rom(path, bits, count):
    """Read a ROM init file of ``count`` signed ``bits``-wide values (:mod:`golden.rom` gives the format).

    Raises
    ------
    ManifestError
        If the file is not a regular file, is too large, or breaks the format; the message names the file and line.
    """
    path = Path(path)
    with store.ModelDir(path.parent) as d:
        data = d.read(path.name, _rom_limit(count, bits), f"ROM file {path.name}")
    try:
        return parse_rom(data, bits, count)
    except RomError as e:
        raise ManifestError(f"ROM file {path.name} {e}") from None


def _rom_limit(count, bits):
    """The most bytes read of a ROM file: twice its size, so that a malformed file is refused with its reason."""
    return 2 * rom_size(count, bits) + 4096


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


# -- JSON ----------------------------------------------------------------------------------------------------------

def _rom_files(layer):
    return f"{layer.name}.weights.hex", f"{layer.name}.bias.hex"


def _to_json(model, hashes):
    layers = []
    for layer in model.layers:
        d = {"name": layer.name, "type": layer.type}
        if layer.type == "pool":
            d["kernel"] = list(layer.kernel)
        else:
            wf, bf = _rom_files(layer)
            if layer.type == "conv2d":
                d.update(in_channels=layer.in_channels, out_channels=layer.out_channels, kernel=list(layer.kernel),
                         stride=list(layer.stride), padding=list(layer.padding))
            else:
                d.update(in_features=layer.in_features, out_features=layer.out_features)
            d["weights"] = {"file": wf, "shape": list(layer.weights.shape), "bits": 8, "sha256": hashes[wf]}
            d["bias"] = {"file": bf, "shape": [int(layer.bias.size)], "bits": layer.bias_bits, "sha256": hashes[bf]}
            d["acc_bits"] = layer.acc_bits
            d["neuron"] = layer.neuron.to_json()
            if layer.weight_scale is not None:
                d["weight_scale"] = float(layer.weight_scale)
        layers.append(d)
    doc = {
        "format": FORMAT, "version": manifest_version(model), "name": model.name, "description": model.description,
        "input_shape": list(model.input_shape), "input_bits": 8, "time_steps": model.time_steps,
        "classes": list(model.classes), "features": model.features, "quantization": model.quantization,
        "layers": layers,
    }
    if model.training is not None:
        doc["training"] = model.training
    if model.hardware is not None:
        doc["hardware"] = model.hardware
    if model.test_vectors is not None:
        doc["test_vectors"] = {"file": tv.VECTORS_FILE, "sha256": hashes[tv.VECTORS_FILE],
                               "count": len(model.test_vectors), "source": model.test_vectors.source}
    return doc


def _files(model):
    """The data files of a saved model (ROMs and test vectors), name to bytes."""
    files = {name: text.encode() for name, text in _rom_texts(model).items()}
    if model.test_vectors is not None:
        files[tv.VECTORS_FILE] = tv.encode(model.test_vectors)
    return files


def _rom_texts(model):
    texts = {}
    for layer in model.layers:
        if layer.type == "pool":
            continue
        wf, bf = _rom_files(layer)
        texts[wf] = rom_text(layer.weights, 8)
        texts[bf] = rom_text(layer.bias, layer.bias_bits)
    return texts


def model_hash(model):
    """SHA-256 identifying a model's structure and parameters (the canonical manifest JSON with the ROM hashes).

    The ``training`` record and the test vectors are left out: they say where the weights came from and what to try
    them on, not what they compute.
    """
    hashes = {f: _sha256(t.encode()) for f, t in _rom_texts(model).items()}
    doc = _to_json(dataclasses.replace(model, test_vectors=None), hashes)
    doc.pop("training", None)
    doc.pop("hardware", None)
    return _sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def save(model, path):
    """Validate ``model`` and write it to the directory ``path`` atomically (:func:`golden.store.save_files`).

    At every instant ``path`` is either the previous model, complete, or the new one, complete; ``path`` becomes a
    link to a hidden sibling ``.NAME.v-<id>`` that holds the files.

    Raises
    ------
    ManifestError
        If the model is invalid; nothing is written then.
    """
    validate(model)
    files = _files(model)
    hashes = {name: _sha256(data) for name, data in files.items()}
    files[MANIFEST] = (json.dumps(_to_json(model, hashes), indent=2) + "\n").encode()
    return store.save_files(path, files)


# -- loading -------------------------------------------------------------------------------------------------------

class _Reader:
    """Reads one model directory: the ROM files of its layers, within the network's weight budget."""

    def __init__(self, directory):
        self.dir = directory
        self.weights = 0

    def rom(self, ref, where, shape, bits_range, *, weights=False):
        fname = store.check_file_name(f"{where}.file", _get(ref, "file", where, str))
        rshape = _get(ref, "shape", where, list)
        if len(rshape) != len(shape) or [_int(f"{where}.shape[{i}]", v, 1, MAX_DIM * MAX_DIM)
                                         for i, v in enumerate(rshape)] != list(shape):
            raise ManifestError(f"{where}.shape is {schema._show(rshape)}, {list(shape)} expected")
        bits = _int(f"{where}.bits", _get(ref, "bits", where), *bits_range)
        digest = _get(ref, "sha256", where, str)
        if not _SHA256.fullmatch(digest):
            raise ManifestError(f"{where}.sha256 {schema._show(digest)} must be 64 hexadecimal digits")
        count = math.prod(shape)
        if weights:
            self.weights += count
            _check_size(f"{where}: with shape {list(shape)} the network has", self.weights, MAX_WEIGHTS,
                        "weights")
        data = self.dir.read(fname, _rom_limit(count, bits), where)
        if _sha256(data) != digest.lower():
            raise ManifestError(f"{where}: file {fname} does not match its sha256 in the manifest (edited or "
                                f"corrupt)")
        try:
            values = parse_rom(data, bits, count)
        except RomError as e:
            raise ManifestError(f"{where}: file {fname} {e}") from None
        return values.reshape(shape), bits

    def layer(self, n, d):
        if not isinstance(d, dict):
            raise ManifestError(f"layer {n} must be an object, not {type(d).__name__}")
        name = schema.field_name(f"layer {n}: name", _get(d, "name", f"layer {n}"), _NAME, "A-Z a-z 0-9 _")
        where = f"layer {name}"
        kind = _get(d, "type", where, str)
        if kind not in LAYER_TYPES:
            raise ManifestError(f"{where}: unknown type {schema._show(kind)} (known: {', '.join(LAYER_TYPES)})")
        if kind == "pool":
            return Pool(name=name, kernel=_pair(f"{where}.kernel", _get(d, "kernel", where), 1))
        neuron = _neuron_from(_get(d, "neuron", where, dict), f"{where}.neuron")
        common = dict(acc_bits=_get(d, "acc_bits", where), neuron=neuron, weight_scale=d.get("weight_scale"))
        if kind == "conv2d":
            co = _int(f"{where}.out_channels", _get(d, "out_channels", where), 1, MAX_DIM)
            ci = _int(f"{where}.in_channels", _get(d, "in_channels", where), 1, MAX_DIM)
            k = _pair(f"{where}.kernel", _get(d, "kernel", where), 1)
            w, _ = self.rom(_get(d, "weights", where, dict), f"{where}.weights", (co, ci, *k), (8, 8), weights=True)
            b, bb = self.rom(_get(d, "bias", where, dict), f"{where}.bias", (co,), (2, 32))
            return Conv2d(name=name, in_channels=ci, out_channels=co, kernel=k,
                          stride=_pair(f"{where}.stride", _get(d, "stride", where), 1),
                          padding=_pair(f"{where}.padding", _get(d, "padding", where), 0),
                          weights=w.astype(np.int8), bias=b, bias_bits=bb, **common)
        m = _int(f"{where}.out_features", _get(d, "out_features", where), 1, MAX_DIM)
        nin = _int(f"{where}.in_features", _get(d, "in_features", where), 1, MAX_NEURONS)
        w, _ = self.rom(_get(d, "weights", where, dict), f"{where}.weights", (m, nin), (8, 8), weights=True)
        b, bb = self.rom(_get(d, "bias", where, dict), f"{where}.bias", (m,), (2, 32))
        return Dense(name=name, in_features=nin, out_features=m, weights=w.astype(np.int8), bias=b, bias_bits=bb,
                     **common)


def _neuron_from(d, where):
    kind = _get(d, "kind", where, str)
    if kind == "lif":
        return LIF(leak_shift=_get(d, "leak_shift", where), threshold=_get(d, "threshold", where),
                   reset=_get(d, "reset", where), mem_bits=_get(d, "mem_bits", where))
    if kind == "integrate":
        return Integrate(mem_bits=_get(d, "mem_bits", where))
    raise ManifestError(f"{where}.kind is {schema._show(kind)}; known: lif, integrate")


def load(path):
    """Read and validate the model in directory ``path``.

    Only regular files inside the directory are read (:class:`golden.store.ModelDir`), each within its size bound;
    every field is checked for its type and range before it is used.

    Raises
    ------
    ManifestError
        If the manifest or a ROM file is missing, malformed, of an unknown version, or breaks any bound.
    """
    path = Path(path)
    with store.ModelDir(path) as directory:
        doc = schema.decode(directory.read(MANIFEST, store.MAX_MANIFEST_BYTES, f"model {path}"))
        if not isinstance(doc, dict):
            raise ManifestError(f"{MANIFEST}: the top level must be an object")
        if doc.get("format") != FORMAT:
            raise ManifestError(f"{MANIFEST}: field 'format' is {schema._show(doc.get('format'))}; expected "
                                f"{FORMAT!r}")
        version = _get(doc, "version", MANIFEST)
        if version not in READ_VERSIONS or isinstance(version, (bool, float)):
            raise ManifestError(f"{MANIFEST}: version {schema._show(version)} is not supported (this spikesmith "
                                f"reads versions {', '.join(map(str, READ_VERSIONS))})")
        input_bits = _get(doc, "input_bits", MANIFEST)
        if input_bits != 8 or isinstance(input_bits, (bool, float)):
            raise ManifestError(f"{MANIFEST}: input_bits is {schema._show(input_bits)}; version {version} supports 8")
        reader = _Reader(directory)
        layers = [reader.layer(n, d) for n, d in enumerate(_get(doc, "layers", MANIFEST, list))]
        vectors = doc.get("test_vectors")
        if vectors is not None:
            vectors = _read_vectors(directory, vectors)
    model = Model(name=_get(doc, "name", MANIFEST, str), input_shape=tuple(_get(doc, "input_shape", MANIFEST, list)),
                  time_steps=_get(doc, "time_steps", MANIFEST), layers=layers,
                  classes=_get(doc, "classes", MANIFEST, list), features=doc.get("features"),
                  quantization=doc.get("quantization"), description=doc.get("description", ""),
                  training=doc.get("training"), hardware=doc.get("hardware"))
    validate(model)
    if version < manifest_version(model):
        raise ManifestError(f"{MANIFEST}: version {version} allows only a conv2d first layer and no other conv2d; "
                            f"this layer stack needs version {manifest_version(model)}")
    if vectors is not None:
        data, count, source = vectors
        model.test_vectors = tv.decode(data, input_shape=model.input_shape, classes=len(model.classes),
                                       source=source)
        if len(model.test_vectors) != count:
            raise ManifestError(f"test_vectors: the file holds {len(model.test_vectors)} samples; count says "
                                f"{count}")
    return model


def manifest_version(model):
    """The version :func:`save` writes: 1 for the version 1 family (conv2d first, no other conv2d), else 2.

    Models that version 1 can express keep version 1, so their files and :func:`model_hash` do not change.
    """
    kinds = [l.type for l in model.layers]
    return 1 if kinds and kinds[0] == "conv2d" and "conv2d" not in kinds[1:] else 2


def _read_vectors(directory, ref):
    """``(bytes, count, source)`` of the test vectors file the manifest's ``test_vectors`` names."""
    where = "test_vectors"
    if not isinstance(ref, dict):
        raise ManifestError(f"{where} must be an object with file, sha256, count and source")
    fname = store.check_file_name(f"{where}.file", _get(ref, "file", where, str))
    digest = _get(ref, "sha256", where, str)
    if not _SHA256.fullmatch(digest):
        raise ManifestError(f"{where}.sha256 {schema._show(digest)} must be 64 hexadecimal digits")
    count = _int(f"{where}.count", _get(ref, "count", where), 1, tv.MAX_VECTORS)
    source = _get(ref, "source", where, str)
    data = directory.read(fname, tv.MAX_VECTOR_BYTES, where)
    if _sha256(data) != digest.lower():
        raise ManifestError(f"{where}: file {fname} does not match its sha256 in the manifest (edited or corrupt)")
    return data, count, source
