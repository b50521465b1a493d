"""The in-memory model: neuron and layer records, the network, and the bounds of its integer currents.

The records are what :mod:`golden.manifest` reads from and writes to a model directory and what
:mod:`golden.validate` checks; the arithmetic they parameterize is docs/arithmetic.md, the golden model that runs
them :mod:`golden.network`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import vectors as tv
from .rom import signed_range

__all__ = ["LIF", "Integrate", "Conv2d", "Pool", "Dense", "Model", "current_range", "required_acc_bits"]


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
