"""The model manifest: load, validate and atomically save a spikesmith model directory.

The format is specified in ``docs/manifest.md``; the arithmetic its parameters control in ``docs/arithmetic.md``.
A model is a :class:`Model` holding a list of layers (:class:`Conv2d`, :class:`Pool`, :class:`Dense`) with their
integer weights in memory. :func:`load` reads and validates a directory, :func:`save` validates and writes one
atomically, :func:`validate` checks an in-memory model; every refusal raises :class:`ManifestError` naming the field
or file and the bound. The ROM file format lives in :mod:`golden.rom`, the strict JSON layer in
:mod:`golden.schema`, the safe reading and the atomic replacement of the directory in :mod:`golden.store`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import schema, store, vectors as tv
from .checks import MAX_TIME_STEPS
from .rom import RomError, parse_rom, rom_size, signed_range
from .rom import rom_text as _rom_text
from .rom import write_rom
from .schema import ManifestError, field_int as _int, get as _get

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
#: The largest extent of one dimension (channels, height, width, features, kernel, stride, padding).
MAX_DIM = 1 << 16
#: The most INT8 weights a network may have (all layers together).
MAX_WEIGHTS = 1 << 22
#: The most values of one map: the input map and every layer's output.
MAX_NEURONS = 1 << 20
#: The most neuron states a sample passes through: the neurons of all layers times ``time_steps``.
MAX_NEURON_STEPS = 1 << 26
_NAME = re.compile(r"[A-Za-z0-9_]+")
_MODEL_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_DEVICE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_OPTION = re.compile(r"[a-z_][a-z0-9_]{0,63}")
LAYER_TYPES = ("conv2d", "pool", "dense")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def rom_text(values, bits):
    """The ROM file text of ``values`` (:func:`golden.rom.rom_text`); refusals as :class:`ManifestError`."""
    try:
        return _rom_text(values, bits)
    except RomError as e:
        raise ManifestError(str(e)) from None


def _fmt(n):
    return f"{n:,}"


# -- neurons -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LIF:
    """Leaky integrate-and-fire neuron parameters (docs/arithmetic.md section 5).

    Parameters
    ----------
    leak_shift : int
        ``k``; the leak is ``v - (v >> k)``, i.e. ``beta = 1 - 2**-k``.
    threshold : int
        ``theta``; a neuron spikes when its membrane is strictly greater.
    reset : str
        ``"subtract"`` or ``"zero"``, applied one step after the spike as in snnTorch's ``Leaky``.
    mem_bits : int
        Width of the saturating membrane.
    """
    leak_shift: int
    threshold: int
    reset: str
    mem_bits: int
    kind = "lif"

    def to_json(self):
        return {"kind": "lif", "leak_shift": self.leak_shift, "threshold": self.threshold,
                "reset": self.reset, "mem_bits": self.mem_bits}


@dataclass(frozen=True)
class Integrate:
    """The non-spiking integrating readout (docs/arithmetic.md section 7): ``R = sat(R + I)``, no leak."""
    mem_bits: int
    kind = "integrate"

    def to_json(self):
        return {"kind": "integrate", "mem_bits": self.mem_bits}


# -- layers --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Conv2d:
    """2-D convolution over the INT8 input map (first layer) or a spike map, with LIF neurons.
    Weights ``int8 [Co, Ci, Kh, Kw]``."""
    name: str
    in_channels: int
    out_channels: int
    kernel: tuple
    stride: tuple
    padding: tuple
    weights: np.ndarray
    bias: np.ndarray
    bias_bits: int
    acc_bits: int
    neuron: LIF
    weight_scale: float | None = None
    type = "conv2d"

    def out_shape(self, in_shape):
        c, h, w = in_shape
        ho = (h + 2 * self.padding[0] - self.kernel[0]) // self.stride[0] + 1
        wo = (w + 2 * self.padding[1] - self.kernel[1]) // self.stride[1] + 1
        return (self.out_channels, ho, wo)


@dataclass(frozen=True, eq=False)
class Pool:
    """OR-pooling of a binary spike map with a non-overlapping ``(Kh, Kw)`` window."""
    name: str
    kernel: tuple
    type = "pool"

    def out_shape(self, in_shape):
        c, h, w = in_shape
        return (c, h // self.kernel[0], w // self.kernel[1])


@dataclass(frozen=True, eq=False)
class Dense:
    """Fully connected layer on binary spikes (or, as the first layer, the INT8 map), with LIF neurons or the
    integrating readout. Weights ``int8 [M, N]``."""
    name: str
    in_features: int
    out_features: int
    weights: np.ndarray
    bias: np.ndarray
    bias_bits: int
    acc_bits: int
    neuron: LIF | Integrate
    weight_scale: float | None = None
    type = "dense"

    def out_shape(self, in_shape):
        return (self.out_features,)


@dataclass(eq=False)
class Model:
    """One spiking network: its structure, integer parameters and metadata.

    Members
    -------
    shapes : list of (tuple, tuple)
        ``(in_shape, out_shape)`` of every layer, derived from ``input_shape``.
    training : dict or None
        Where the model was trained, e.g. ``{"dataset": "fsdd", "split": "official"}`` (docs/manifest.md);
        informational, not part of :func:`model_hash`.
    test_vectors : golden.vectors.TestVectors or None
        Input maps and labels the model carries for the hardware flow; not part of :func:`model_hash`.
    hardware : dict or None
        The model's own hardware options per device, ``{"iCE40UP5K": {"fc1": {"lanes": 2}}}``: what
        :func:`hw.plan.plan` takes on that device when it is given no ``params`` (docs/manifest.md); not part of
        :func:`model_hash` (they do not change the arithmetic).
    """
    name: str
    input_shape: tuple
    time_steps: int
    layers: list
    classes: list
    features: dict | None = None
    quantization: dict | None = None
    description: str = ""
    training: dict | None = None
    test_vectors: tv.TestVectors | None = None
    hardware: dict | None = None

    @property
    def shapes(self):
        result, shape = [], tuple(self.input_shape)
        for layer in self.layers:
            out = layer.out_shape(shape)
            result.append((shape, out))
            shape = out
        return result

    @property
    def weight_count(self):
        """Number of INT8 weights in all layers."""
        return sum(int(l.weights.size) for l in self.layers if hasattr(l, "weights"))

    def layer(self, name):
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)


# -- bounds --------------------------------------------------------------------------------------------------------

def current_range(layer, on_map=None):
    """Return ``(lo, hi)`` int64 arrays: the smallest and largest current of each neuron (arithmetic.md section 4).

    ``on_map`` says whether the layer reads the INT8 input map (the first layer) or spikes ``{0, 1}``; ``None``
    takes the version 1 rule: a conv2d reads the map, a dense layer spikes.
    """
    w = layer.weights.astype(np.int64).reshape(layer.weights.shape[0], -1)
    b = layer.bias.astype(np.int64)
    if on_map is None:
        on_map = layer.type == "conv2d"
    if on_map:
        lo = b + np.minimum(127 * w, -128 * w).sum(axis=1)
        hi = b + np.maximum(127 * w, -128 * w).sum(axis=1)
    else:
        lo = b + np.minimum(w, 0).sum(axis=1)
        hi = b + np.maximum(w, 0).sum(axis=1)
    return lo, hi


def _bits_for(lo, hi):
    bits = 2  # the narrowest signed width the format allows
    while not (signed_range(bits)[0] <= lo and hi <= signed_range(bits)[1]):
        bits += 1
    return bits


def required_acc_bits(layer, on_map=None):
    """The smallest accumulator width that holds every current the layer can produce (``on_map``: see
    :func:`current_range`)."""
    lo, hi = current_range(layer, on_map)
    return _bits_for(int(lo.min()), int(hi.max()))


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


# -- validation ----------------------------------------------------------------------------------------------------

def _pair(where, value, lo):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ManifestError(f"{where} must be a pair [h, w], not {schema._show(value)}")
    return tuple(_int(f"{where}[{i}]", v, lo, MAX_DIM) for i, v in enumerate(value))


def _check_neuron(where, neuron):
    if isinstance(neuron, LIF):
        b = _int(f"{where}.mem_bits", neuron.mem_bits, 3, 32)
        _int(f"{where}.threshold", neuron.threshold, 1, (1 << (b - 1)) - 2)
        _int(f"{where}.leak_shift", neuron.leak_shift, 0, b - 1)
        if neuron.reset not in ("subtract", "zero"):
            raise ManifestError(f"{where}.reset is {schema._show(neuron.reset)}; it must be 'subtract' or 'zero'")
    elif isinstance(neuron, Integrate):
        _int(f"{where}.mem_bits", neuron.mem_bits, 2, 32)
    else:
        raise ManifestError(f"{where} must be a LIF or Integrate neuron, not {type(neuron).__name__}")


def _check_params(where, layer, shape, on_map):
    w, b = layer.weights, layer.bias
    if not isinstance(w, np.ndarray) or w.shape != shape:
        raise ManifestError(f"{where}: weights have shape {getattr(w, 'shape', None)}, {list(shape)} expected")
    if not np.issubdtype(w.dtype, np.integer) or (w.size and (w.min() < -128 or w.max() > 127)):
        raise ManifestError(f"{where}: weights must be INT8 (-128 ... 127)")
    bb = _int(f"{where}.bias_bits", layer.bias_bits, 2, 32)
    if not isinstance(b, np.ndarray) or b.shape != (shape[0],) or not np.issubdtype(b.dtype, np.integer):
        raise ManifestError(f"{where}: bias has shape {getattr(b, 'shape', None)}, {[shape[0]]} of integers "
                            f"expected")
    lo, hi = signed_range(bb)
    if b.size and (b.min() < lo or b.max() > hi):
        raise ManifestError(f"{where}: bias value {int(b.min() if b.min() < lo else b.max())} does not fit "
                            f"bias_bits {bb} ({lo} ... {hi})")
    if layer.weight_scale is not None:
        schema.field_number(f"{where}.weight_scale", layer.weight_scale, positive=True)
    acc = _int(f"{where}.acc_bits", layer.acc_bits, 2, 48)
    need = required_acc_bits(layer, on_map)
    if acc < need:
        clo, chi = current_range(layer, on_map)
        raise ManifestError(f"{where}: acc_bits {acc} cannot hold currents from {_fmt(int(clo.min()))} to "
                            f"{_fmt(int(chi.max()))} (needs {need})")


def _check_size(what, count, bound, unit):
    if count > bound:
        raise ManifestError(f"{what} {_fmt(count)} {unit}; golden and the generator hold at most {_fmt(bound)}")


def _check_layer(n, layer, shape, last):
    """Check one layer against its input ``shape``; return its output shape."""
    where = f"layer {layer.name}"
    if isinstance(layer, Conv2d):
        if len(shape) != 3:
            raise ManifestError(f"{where}: conv2d needs a map [C, H, W] as input, not the {shape[0]} values of a "
                                f"dense layer")
        kh, kw = _pair(f"{where}.kernel", layer.kernel, 1)
        _pair(f"{where}.stride", layer.stride, 1)
        _pair(f"{where}.padding", layer.padding, 0)
        _int(f"{where}.in_channels", layer.in_channels, 1, MAX_DIM)
        if layer.in_channels != shape[0]:
            raise ManifestError(f"{where}: in_channels {layer.in_channels} does not match the input's "
                                f"{shape[0]} channels")
        _int(f"{where}.out_channels", layer.out_channels, 1, MAX_DIM)
        out = layer.out_shape(shape)
        if out[1] < 1 or out[2] < 1:
            raise ManifestError(f"{where}: kernel {[kh, kw]} with padding {list(layer.padding)} does not fit "
                                f"the {shape[1]} x {shape[2]} input")
        _check_size(f"{where}: the output map of", math.prod(out), MAX_NEURONS, "values")
        _check_params(where, layer, (layer.out_channels, layer.in_channels, kh, kw), n == 0)
        if not isinstance(layer.neuron, LIF):
            raise ManifestError(f"{where}: a conv2d layer needs LIF neurons")
    elif isinstance(layer, Pool):
        if n == 0 or len(shape) != 3:
            raise ManifestError(f"{where}: pool needs a spike map [C, H, W] as input")
        kh, kw = _pair(f"{where}.kernel", layer.kernel, 1)
        out = layer.out_shape(shape)
        if out[1] < 1 or out[2] < 1:
            raise ManifestError(f"{where}: kernel {[kh, kw]} is larger than its {shape[1]} x {shape[2]} input")
        if last:
            raise ManifestError(f"{where}: the last layer must be a dense readout, not pool")
    else:
        size = math.prod(shape)
        _int(f"{where}.in_features", layer.in_features, 1, MAX_NEURONS)
        if layer.in_features != size:
            raise ManifestError(f"{where}: in_features {layer.in_features} does not match the previous "
                                f"layer's output of {size} values")
        _int(f"{where}.out_features", layer.out_features, 1, MAX_DIM)
        _check_params(where, layer, (layer.out_features, layer.in_features), n == 0)
        out = (layer.out_features,)
    if hasattr(layer, "neuron"):
        _check_neuron(f"{where}.neuron", layer.neuron)
        if last and not isinstance(layer.neuron, Integrate):
            raise ManifestError(f"{where}: the last layer must have the integrating readout neuron")
        if not last and isinstance(layer.neuron, Integrate):
            raise ManifestError(f"{where}: only the last layer may have the integrating readout neuron")
    return out


def validate(model):
    """Check a :class:`Model` against every rule of docs/manifest.md and docs/arithmetic.md.

    Raises
    ------
    ManifestError
        On the first rule broken, naming the field and the bound.
    """
    schema.field_name("name", model.name, _MODEL_NAME, "A-Z a-z 0-9 _ . -")
    schema.field_text("description", model.description, schema.MAX_DESCRIPTION, lines=True)
    shape = model.input_shape
    if not isinstance(shape, (list, tuple)) or len(shape) != 3:
        raise ManifestError(f"input_shape must be [C, H, W], not {schema._show(shape)}")
    shape = tuple(_int(f"input_shape[{i}]", v, 1, MAX_DIM) for i, v in enumerate(shape))
    _check_size(f"input_shape {list(shape)} has", math.prod(shape), MAX_NEURONS, "values")
    steps = _int("time_steps", model.time_steps, 1, MAX_TIME_STEPS)
    if not isinstance(model.layers, (list, tuple)) or not model.layers:
        raise ManifestError("layers is empty; a model needs a conv2d or dense layer first and a dense readout last")
    names, neurons = set(), 0
    for n, layer in enumerate(model.layers):
        if not isinstance(layer, (Conv2d, Pool, Dense)):
            raise ManifestError(f"layer {n}: unknown layer object {type(layer).__name__}")
        schema.field_name(f"layer {n}: name", layer.name, _NAME, "A-Z a-z 0-9 _")
        if layer.name in names:
            raise ManifestError(f"layer {layer.name}: the name is used twice")
        names.add(layer.name)
        shape = _check_layer(n, layer, shape, n == len(model.layers) - 1)
        neurons += math.prod(shape)
    _check_size("the network has", model.weight_count, MAX_WEIGHTS, "weights")
    _check_size("the network has", neurons, MAX_NEURONS, "neurons")
    _check_size(f"the network has {_fmt(neurons)} neurons x {steps} time steps =", neurons * steps,
                MAX_NEURON_STEPS, "neuron updates per sample")
    schema.field_classes(model.classes, shape[0])
    schema.field_object("features", model.features)
    schema.field_object("quantization", model.quantization)
    schema.field_object("training", model.training)
    _check_hardware(model)
    if model.test_vectors is not None:
        tv.check(model.test_vectors, model.input_shape, len(model.classes))
    return model


def _check_hardware(model):
    """``hardware``: ``None``, or at most 16 devices (names ``[A-Za-z0-9_-]``), each an object of the model's layer
    names, each an object of at most 16 options (``[a-z_][a-z0-9_]*``) whose values are short strings, integers or
    booleans. Which options a layer has, and their ranges, the plan checks (it names the layer and the bound)."""
    hw = model.hardware
    if hw is None:
        return
    if not isinstance(hw, dict) or len(hw) > 16:
        raise ManifestError(f"hardware must be an object of at most 16 devices such as "
                            f'{{"iCE40UP5K": {{"fc1": {{"lanes": 2}}}}}}, not {schema._show(hw)}')
    names = {layer.name for layer in model.layers}
    for device, layers in hw.items():
        schema.field_name("hardware: device", device, _DEVICE_NAME, "A-Z a-z 0-9 _ -")
        if not isinstance(layers, dict):
            raise ManifestError(f"hardware.{device} must be an object of layers, not {schema._show(layers)}")
        for name, options in layers.items():
            if name not in names:
                raise ManifestError(f"hardware.{device}: the model has no layer {schema._show(name)} (layers: "
                                    f"{', '.join(l.name for l in model.layers)})")
            if not isinstance(options, dict) or len(options) > 16:
                raise ManifestError(f"hardware.{device}.{name} must be an object of at most 16 options such as "
                                    f'{{"lanes": 2}}, not {schema._show(options)}')
            for key, value in options.items():
                where = f"hardware.{device}.{name}"
                if not isinstance(key, str) or not _OPTION.fullmatch(key):
                    raise ManifestError(f"{where}: option {schema._show(key)} must match [a-z_][a-z0-9_]*")
                if isinstance(value, str):
                    schema.field_text(f"{where}.{key}", value, 64)
                elif not isinstance(value, (bool, int)):
                    raise ManifestError(f"{where}.{key} must be a string, an integer or a boolean, not "
                                        f"{schema._show(value)}")


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
