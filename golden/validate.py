"""Validation of an in-memory model against every rule of docs/manifest.md and docs/arithmetic.md.

:func:`validate` checks a :class:`golden.layers.Model` and raises :class:`golden.schema.ManifestError` naming the
field and the bound at the first rule broken. The bounds (``MAX_*``) are those of the golden model and the
generator; the field checkers here are shared with the manifest's reader (:mod:`golden.manifest`).
"""

from __future__ import annotations

import math
import re

import numpy as np

from . import schema, vectors as tv
from .checks import MAX_TIME_STEPS
from .layers import LIF, Conv2d, Dense, Integrate, Pool, current_range, required_acc_bits
from .rom import signed_range
from .schema import ManifestError, field_int as _int

__all__ = ["MAX_DIM", "MAX_WEIGHTS", "MAX_NEURONS", "MAX_NEURON_STEPS", "LAYER_TYPES", "validate"]

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


def _fmt(n):
    return f"{n:,}"


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
