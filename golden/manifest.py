"""The model manifest: load, validate and atomically save a spikesmith model directory.

The format is specified in ``docs/manifest.md``; the arithmetic its parameters control in ``docs/arithmetic.md``.
A model is a :class:`Model` holding a list of layers (:class:`Conv2d`, :class:`Pool`, :class:`Dense`) with their
integer weights in memory. :func:`load` reads and validates a directory, :func:`save` validates and writes one
atomically, :func:`validate` checks an in-memory model; every refusal raises :class:`ManifestError` naming the field
or file and the bound.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "FORMAT", "VERSION", "READ_VERSIONS", "MAX_TIME_STEPS", "ManifestError",
    "LIF", "Integrate", "Conv2d", "Pool", "Dense", "Model",
    "load", "save", "validate", "required_acc_bits", "current_range", "model_hash", "read_rom", "write_rom",
    "signed_range", "manifest_version",
]

FORMAT = "spikesmith-model"
VERSION = 2
#: Versions the loader reads: version 1 is the first-layer-conv2d family; version 2 adds stacked layers (docs/manifest.md).
READ_VERSIONS = (1, 2)
MAX_TIME_STEPS = 1024
MANIFEST = "manifest.json"
_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
LAYER_TYPES = ("conv2d", "pool", "dense")


class ManifestError(ValueError):
    """A model that spikesmith refuses: the message names the field or file and the bound."""


def signed_range(bits):
    """Return ``(lo, hi)``, the range of a ``bits``-wide two's complement integer."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


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
    """
    name: str
    input_shape: tuple
    time_steps: int
    layers: list
    classes: list
    features: dict | None = None
    quantization: dict | None = None
    description: str = ""

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

def _digits(bits):
    return (bits + 3) // 4


def rom_text(values, bits):
    """The ROM file text of ``values``: one two's complement hex value of ``ceil(bits/4)`` digits per line."""
    values = np.asarray(values, dtype=np.int64).ravel()
    lo, hi = signed_range(bits)
    bad = np.flatnonzero((values < lo) | (values > hi))
    if bad.size:
        raise ManifestError(f"value {int(values[bad[0]])} at index {int(bad[0])} does not fit {bits} signed bits "
                            f"({lo} ... {hi})")
    mask, d = (1 << bits) - 1, _digits(bits)
    return "".join(f"{int(v) & mask:0{d}x}\n" for v in values)


def write_rom(path, values, bits):
    """Write a ROM init file (see :func:`rom_text`)."""
    Path(path).write_text(rom_text(values, bits))


def read_rom(path, bits, count):
    """Read a ROM init file of ``count`` signed ``bits``-wide values; refuse a wrong count or an out-of-range value."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ManifestError(f"ROM file {path.name} is missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"ROM file {path.name} cannot be read: {e}") from None
    lines = text.split()
    if len(lines) != count:
        raise ManifestError(f"ROM file {path.name} has {_fmt(len(lines))} values, {_fmt(count)} expected")
    out = np.empty(count, dtype=np.int64)
    d = _digits(bits)
    for n, token in enumerate(lines):
        try:
            raw = int(token, 16)
        except ValueError:
            raise ManifestError(f"ROM file {path.name} line {n + 1}: {token!r} is not a hexadecimal value") from None
        if len(token) > d or raw >> bits:
            raise ManifestError(f"ROM file {path.name} line {n + 1}: value 0x{token} does not fit {bits} bits")
        out[n] = raw - (1 << bits) if raw >> (bits - 1) else raw
    return out


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


# -- validation ----------------------------------------------------------------------------------------------------

def _int(where, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ManifestError(f"{where} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ManifestError(f"{where} is {value}; it must be in {lo} ... {hi}")
    return int(value)


def _pair(where, value, lo):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ManifestError(f"{where} must be a pair [h, w], not {value!r}")
    return tuple(_int(f"{where}[{i}]", v, lo, 1 << 16) for i, v in enumerate(value))


def _check_neuron(where, neuron):
    if isinstance(neuron, LIF):
        b = _int(f"{where}.mem_bits", neuron.mem_bits, 2, 32)
        _int(f"{where}.threshold", neuron.threshold, 1, (1 << (b - 1)) - 2)
        _int(f"{where}.leak_shift", neuron.leak_shift, 0, b - 1)
        if neuron.reset not in ("subtract", "zero"):
            raise ManifestError(f"{where}.reset is {neuron.reset!r}; it must be 'subtract' or 'zero'")
    elif isinstance(neuron, Integrate):
        _int(f"{where}.mem_bits", neuron.mem_bits, 2, 32)
    else:
        raise ManifestError(f"{where} must be a LIF or Integrate neuron, not {neuron!r}")


def _check_params(where, layer, shape, on_map):
    w, b = layer.weights, layer.bias
    if not isinstance(w, np.ndarray) or w.shape != shape:
        raise ManifestError(f"{where}: weights have shape {getattr(w, 'shape', None)}, {list(shape)} expected")
    if w.dtype != np.int8:
        wi = np.asarray(w)
        if not np.issubdtype(wi.dtype, np.integer) or wi.min() < -128 or wi.max() > 127:
            raise ManifestError(f"{where}: weights must be INT8 (-128 ... 127)")
    bb = _int(f"{where}.bias_bits", layer.bias_bits, 2, 32)
    if not isinstance(b, np.ndarray) or b.shape != (shape[0],):
        raise ManifestError(f"{where}: bias has shape {getattr(b, 'shape', None)}, {[shape[0]]} expected")
    lo, hi = signed_range(bb)
    if b.size and (b.min() < lo or b.max() > hi):
        raise ManifestError(f"{where}: bias value {int(b.min() if b.min() < lo else b.max())} does not fit "
                            f"bias_bits {bb} ({lo} ... {hi})")
    need = required_acc_bits(layer, on_map)
    acc = _int(f"{where}.acc_bits", layer.acc_bits, 2, 48)
    if acc < need:
        clo, chi = current_range(layer, on_map)
        raise ManifestError(f"{where}: acc_bits {acc} cannot hold currents from {_fmt(int(clo.min()))} to "
                            f"{_fmt(int(chi.max()))} (needs {need})")


def validate(model):
    """Check a :class:`Model` against every rule of docs/manifest.md and docs/arithmetic.md.

    Raises
    ------
    ManifestError
        On the first rule broken, naming the field and the bound.
    """
    if not isinstance(model.name, str) or not _MODEL_NAME.match(model.name):
        raise ManifestError(f"name {model.name!r} must match [A-Za-z0-9_.-]+")
    shape = model.input_shape
    if not isinstance(shape, (list, tuple)) or len(shape) != 3:
        raise ManifestError(f"input_shape must be [C, H, W], not {shape!r}")
    for i, v in enumerate(shape):
        _int(f"input_shape[{i}]", v, 1, 1 << 16)
    _int("time_steps", model.time_steps, 1, MAX_TIME_STEPS)
    if not model.layers:
        raise ManifestError("layers is empty; a model needs a conv2d or dense layer first and a dense readout last")
    names = set()
    shape = tuple(shape)
    for n, layer in enumerate(model.layers):
        where = f"layer {getattr(layer, 'name', n)}"
        if not isinstance(layer, (Conv2d, Pool, Dense)):
            raise ManifestError(f"layer {n}: unknown layer object {type(layer).__name__}")
        if not isinstance(layer.name, str) or not _NAME.match(layer.name):
            raise ManifestError(f"layer {n}: name {layer.name!r} must match [A-Za-z0-9_]+")
        if layer.name in names:
            raise ManifestError(f"{where}: the name is used twice")
        names.add(layer.name)
        last = n == len(model.layers) - 1
        if isinstance(layer, Conv2d):
            if len(shape) != 3:
                raise ManifestError(f"{where}: conv2d needs a map [C, H, W] as input, not the {shape[0]} values of "
                                    f"a dense layer")
            kh, kw = _pair(f"{where}.kernel", layer.kernel, 1)
            _pair(f"{where}.stride", layer.stride, 1)
            _pair(f"{where}.padding", layer.padding, 0)
            _int(f"{where}.in_channels", layer.in_channels, 1, 1 << 16)
            if layer.in_channels != shape[0]:
                raise ManifestError(f"{where}: in_channels {layer.in_channels} does not match the input's "
                                    f"{shape[0]} channels")
            _int(f"{where}.out_channels", layer.out_channels, 1, 1 << 16)
            out = layer.out_shape(shape)
            if out[1] < 1 or out[2] < 1:
                raise ManifestError(f"{where}: kernel {[kh, kw]} with padding {list(layer.padding)} does not fit "
                                    f"the {shape[1]} x {shape[2]} input")
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
            size = int(np.prod(shape))
            _int(f"{where}.in_features", layer.in_features, 1, 1 << 20)
            if layer.in_features != size:
                raise ManifestError(f"{where}: in_features {layer.in_features} does not match the previous "
                                    f"layer's output of {size} values")
            _int(f"{where}.out_features", layer.out_features, 1, 1 << 16)
            _check_params(where, layer, (layer.out_features, layer.in_features), n == 0)
            out = (layer.out_features,)
        if hasattr(layer, "neuron"):
            _check_neuron(f"{where}.neuron", layer.neuron)
            if last and not isinstance(layer.neuron, Integrate):
                raise ManifestError(f"{where}: the last layer must have the integrating readout neuron")
            if not last and isinstance(layer.neuron, Integrate):
                raise ManifestError(f"{where}: only the last layer may have the integrating readout neuron")
        shape = out
    if not isinstance(model.classes, (list, tuple)) or len(model.classes) != shape[0]:
        raise ManifestError(f"classes has {len(model.classes) if isinstance(model.classes, (list, tuple)) else 0} "
                            f"labels; the readout has {shape[0]} outputs")
    if not all(isinstance(c, str) for c in model.classes):
        raise ManifestError("classes must be strings")
    if model.features is not None and not isinstance(model.features, dict):
        raise ManifestError("features must be an object or null")
    if model.quantization is not None and not isinstance(model.quantization, dict):
        raise ManifestError("quantization must be an object or null")
    return model


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
    return {
        "format": FORMAT, "version": manifest_version(model), "name": model.name, "description": model.description,
        "input_shape": list(model.input_shape), "input_bits": 8, "time_steps": model.time_steps,
        "classes": list(model.classes), "features": model.features, "quantization": model.quantization,
        "layers": layers,
    }


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
    """SHA-256 identifying a model's structure and parameters (the canonical manifest JSON with the ROM hashes)."""
    hashes = {f: _sha256(t.encode()) for f, t in _rom_texts(model).items()}
    doc = _to_json(model, hashes)
    return _sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def save(model, path):
    """Validate ``model`` and write it to the directory ``path`` atomically.

    The files are written into a temporary directory beside ``path`` and renamed into place; an existing model at
    ``path`` is replaced only once the new one is complete.

    Raises
    ------
    ManifestError
        If the model is invalid; nothing is written then.
    """
    validate(model)
    path = Path(path)
    texts = _rom_texts(model)
    hashes = {f: _sha256(t.encode()) for f, t in texts.items()}
    doc = _to_json(model, hashes)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        tmp.chmod(0o777 & ~_umask())
        for name, text in texts.items():
            (tmp / name).write_text(text)
        (tmp / MANIFEST).write_text(json.dumps(doc, indent=2) + "\n")
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.rmdir(old)
            os.rename(path, old)
        os.rename(tmp, path)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _get(d, key, where, kind=None):
    if not isinstance(d, dict) or key not in d:
        raise ManifestError(f"{where}: field '{key}' is missing")
    v = d[key]
    if kind is not None and not isinstance(v, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ManifestError(f"{where}.{key} must be of type {names}, not {type(v).__name__}")
    return v


def _load_rom(path, ref, where, shape, bits_range):
    ref_where = f"{where}"
    fname = _get(ref, "file", ref_where, str)
    if "/" in fname or "\\" in fname or fname.startswith("."):
        raise ManifestError(f"{ref_where}.file {fname!r} must be a plain file name in the model directory")
    rshape = _get(ref, "shape", ref_where, list)
    if [int(v) for v in rshape] != list(shape):
        raise ManifestError(f"{ref_where}.shape is {rshape}, {list(shape)} expected")
    bits = _int(f"{ref_where}.bits", _get(ref, "bits", ref_where), *bits_range)
    digest = _get(ref, "sha256", ref_where, str)
    count = int(np.prod(shape))
    file = path / fname
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"{where}: file {fname} is missing") from None
    if _sha256(data) != digest:
        raise ManifestError(f"{where}: file {fname} does not match its sha256 in the manifest (edited or corrupt)")
    try:
        values = read_rom(file, bits, count)
    except ManifestError as e:
        raise ManifestError(f"{where}: {e}") from None
    return values.reshape(shape), bits


def _neuron_from(d, where):
    kind = _get(d, "kind", where, str)
    if kind == "lif":
        return LIF(leak_shift=_get(d, "leak_shift", where), threshold=_get(d, "threshold", where),
                   reset=_get(d, "reset", where), mem_bits=_get(d, "mem_bits", where))
    if kind == "integrate":
        return Integrate(mem_bits=_get(d, "mem_bits", where))
    raise ManifestError(f"{where}.kind is {kind!r}; known: lif, integrate")


def load(path):
    """Read and validate the model in directory ``path``.

    Raises
    ------
    ManifestError
        If the manifest or a ROM file is missing, malformed, of an unknown version, or breaks any bound.
    """
    path = Path(path)
    mf = path / MANIFEST
    if not path.is_dir():
        raise ManifestError(f"model directory {path} does not exist")
    try:
        doc = json.loads(mf.read_text())
    except FileNotFoundError:
        raise ManifestError(f"{MANIFEST} is missing in {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"{MANIFEST}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{MANIFEST}: the top level must be an object")
    if doc.get("format") != FORMAT:
        raise ManifestError(f"{MANIFEST}: field 'format' is {doc.get('format')!r}; expected {FORMAT!r}")
    version = _get(doc, "version", MANIFEST)
    if version not in READ_VERSIONS:
        raise ManifestError(f"{MANIFEST}: version {version} is not supported (this spikesmith reads versions "
                            f"{', '.join(map(str, READ_VERSIONS))})")
    if _get(doc, "input_bits", MANIFEST) != 8:
        raise ManifestError(f"{MANIFEST}: input_bits is {doc['input_bits']}; version {version} supports 8")
    input_shape = _get(doc, "input_shape", MANIFEST, list)
    layers_doc = _get(doc, "layers", MANIFEST, list)
    layers, shape = [], input_shape
    for n, d in enumerate(layers_doc):
        if not isinstance(d, dict):
            raise ManifestError(f"layer {n}: must be an object")
        where = f"layer {d.get('name', n)}"
        kind = _get(d, "type", where, str)
        name = _get(d, "name", where, str)
        if kind == "pool":
            layers.append(Pool(name=name, kernel=_pair(f"{where}.kernel", _get(d, "kernel", where), 1)))
            continue
        if kind not in LAYER_TYPES:
            raise ManifestError(f"{where}: unknown type {kind!r} (known: {', '.join(LAYER_TYPES)})")
        neuron = _neuron_from(_get(d, "neuron", where, dict), f"{where}.neuron")
        common = dict(acc_bits=_get(d, "acc_bits", where), neuron=neuron, weight_scale=d.get("weight_scale"))
        if kind == "conv2d":
            co = _int(f"{where}.out_channels", _get(d, "out_channels", where), 1, 1 << 16)
            ci = _int(f"{where}.in_channels", _get(d, "in_channels", where), 1, 1 << 16)
            k = _pair(f"{where}.kernel", _get(d, "kernel", where), 1)
            wshape = (co, ci, *k)
            w, _ = _load_rom(path, _get(d, "weights", where, dict), f"{where}.weights", wshape, (8, 8))
            b, bb = _load_rom(path, _get(d, "bias", where, dict), f"{where}.bias", (co,), (2, 32))
            layers.append(Conv2d(name=name, in_channels=ci, out_channels=co, kernel=k,
                                 stride=_pair(f"{where}.stride", _get(d, "stride", where), 1),
                                 padding=_pair(f"{where}.padding", _get(d, "padding", where), 0),
                                 weights=w.astype(np.int8), bias=b, bias_bits=bb, **common))
        else:
            m = _int(f"{where}.out_features", _get(d, "out_features", where), 1, 1 << 16)
            nin = _int(f"{where}.in_features", _get(d, "in_features", where), 1, 1 << 20)
            w, _ = _load_rom(path, _get(d, "weights", where, dict), f"{where}.weights", (m, nin), (8, 8))
            b, bb = _load_rom(path, _get(d, "bias", where, dict), f"{where}.bias", (m,), (2, 32))
            layers.append(Dense(name=name, in_features=nin, out_features=m, weights=w.astype(np.int8), bias=b,
                                bias_bits=bb, **common))
    model = Model(name=_get(doc, "name", MANIFEST, str), input_shape=tuple(input_shape),
                  time_steps=_get(doc, "time_steps", MANIFEST), layers=layers,
                  classes=_get(doc, "classes", MANIFEST, list), features=doc.get("features"),
                  quantization=doc.get("quantization"), description=doc.get("description", ""))
    validate(model)
    if version < manifest_version(model):
        raise ManifestError(f"{MANIFEST}: version {version} allows only a conv2d first layer and no other conv2d; "
                            f"this layer stack needs version {manifest_version(model)}")
    return model


def manifest_version(model):
    """The version :func:`save` writes: 1 for the version 1 family (conv2d first, no other conv2d), else 2.

    Models that version 1 can express keep version 1, so their files and :func:`model_hash` do not change.
    """
    kinds = [l.type for l in model.layers]
    return 1 if kinds and kinds[0] == "conv2d" and "conv2d" not in kinds[1:] else 2
