"""The trainer's layer stack: its text form, the parser, the shape check and the presets.

A network is written as comma-separated layers, the readout (a dense layer with one output per class) implied::

    c8k3,p2x2,c16k3,p2x4,d128,d64

``cCkK[sS][pP]``
    conv2d with ``C`` output channels, a ``K`` x ``K`` kernel, stride ``S`` (default 1) and zero padding ``P`` on
    every side (default ``K // 2``: the map keeps its size at stride 1 with an odd kernel), LIF neurons. As the
    first layer it reads the INT8 map; anywhere else the spike map of the layer before it.
``pHxW``
    OR-pool with a non-overlapping ``H`` x ``W`` window (the remainder that does not fill a window is dropped).
``dN``
    dense layer of ``N`` LIF neurons; as the first layer it reads the flattened INT8 map.

The first layer is a conv2d or a dense layer; a conv2d or pool needs a map, so neither may follow a dense layer
(docs/arithmetic.md section 2). Presets name the seed paper's architectures (Leow, Goh, Gao, ISCAS 2023) adapted to
the 16 x 48 FSDD map: OR-pools are added so that the dense weights fit the iCE40UP5K's four SPRAMs (1 Mbit, about
128k INT8 weights); the paper runs them for T = 10 steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Conv", "Pool", "Dense", "Preset", "PRESETS", "parse_layers", "format_layers", "stack_shapes",
           "stack_weight_count"]


@dataclass(frozen=True)
class Conv:
    """A conv2d + LIF layer of the stack (square kernel, stride and padding)."""
    channels: int
    kernel: int
    stride: int = 1
    padding: int | None = None
    kind = "conv2d"

    def __post_init__(self):
        if self.padding is None:
            object.__setattr__(self, "padding", self.kernel // 2)

    def text(self):
        s = f"c{self.channels}k{self.kernel}"
        if self.stride != 1:
            s += f"s{self.stride}"
        if self.padding != self.kernel // 2:
            s += f"p{self.padding}"
        return s


@dataclass(frozen=True)
class Pool:
    """An OR-pool of the stack, window ``(h, w)``."""
    kernel: tuple
    kind = "pool"

    def text(self):
        return f"p{self.kernel[0]}x{self.kernel[1]}"


@dataclass(frozen=True)
class Dense:
    """A dense + LIF layer of the stack."""
    features: int
    kind = "dense"

    def text(self):
        return f"d{self.features}"


@dataclass(frozen=True)
class Preset:
    """A named architecture: its layer stack, time steps and where it comes from."""
    layers: str
    time_steps: int
    about: str


PRESETS = {
    "scnn-a": Preset("c6k3,p2x2,c16k3,p2x2,d128,d64", 10,
                     "the seed paper's model A (6C3-16C3-128FC-64FC-10FC) with a 2x2 OR-pool after each "
                     "convolution: 108,054 weights on the 16 x 48 map"),
    "scnn-b": Preset("c6k3,p2x4,d128", 10,
                     "the seed paper's model B (6C3-128FC-10FC) with a 2x4 OR-pool after the convolution: "
                     "75,062 weights on the 16 x 48 map"),
}

_CONV = re.compile(r"c(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?")
_POOL = re.compile(r"p(\d+)x(\d+)")
_DENSE = re.compile(r"d(\d+)")
_FORMS = "cCkK[sS][pP] (conv2d), pHxW (pool) or dN (dense)"


def parse_layers(text):
    """Parse a layer stack (module docstring) into a tuple of :class:`Conv`, :class:`Pool` and :class:`Dense`.

    Raises
    ------
    ValueError
        Naming the position and text of a layer that is not one of the forms, has a zero size, or breaks the
        order rules.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"layer stack must be a non-empty string like 'c8k3,p2x2,d64', not {text!r}")
    out = []
    for n, token in enumerate(t.strip() for t in text.split(",")):
        where = f"layer {n + 1} {token!r}"
        if m := _CONV.fullmatch(token):
            c, k, s, p = (int(v) if v is not None else None for v in m.groups())
            spec = Conv(c, k, 1 if s is None else s, p)
            sizes = (c, k, spec.stride)
        elif m := _POOL.fullmatch(token):
            spec = Pool((int(m.group(1)), int(m.group(2))))
            sizes = spec.kernel
        elif m := _DENSE.fullmatch(token):
            spec = Dense(int(m.group(1)))
            sizes = (spec.features,)
        else:
            raise ValueError(f"{where} is not {_FORMS}")
        if min(sizes) < 1:
            raise ValueError(f"{where}: sizes, kernels and strides must be at least 1")
        if n == 0 and spec.kind == "pool":
            raise ValueError(f"{where}: the first layer must be a conv2d or dense layer (a pool needs spikes)")
        if spec.kind != "dense" and any(s.kind == "dense" for s in out):
            raise ValueError(f"{where}: a {spec.kind} layer needs a map and cannot follow a dense layer")
        out.append(spec)
    return tuple(out)


def format_layers(specs):
    """The text form of a stack (the inverse of :func:`parse_layers`)."""
    return ",".join(s.text() for s in specs)


def stack_shapes(specs, input_shape):
    """Output shape of every layer of the stack on an input map ``(C, H, W)``.

    Raises
    ------
    ValueError
        When a kernel or pool window does not fit the map it gets.
    """
    shape, out = tuple(input_shape), []
    for n, s in enumerate(specs):
        where = f"layer {n + 1} {s.text()!r}"
        if s.kind == "conv2d":
            c, h, w = shape
            ho = (h + 2 * s.padding - s.kernel) // s.stride + 1
            wo = (w + 2 * s.padding - s.kernel) // s.stride + 1
            if ho < 1 or wo < 1:
                raise ValueError(f"{where}: kernel {s.kernel} with padding {s.padding} does not fit the {h} x {w} map")
            shape = (s.channels, ho, wo)
        elif s.kind == "pool":
            c, h, w = shape
            if h // s.kernel[0] < 1 or w // s.kernel[1] < 1:
                raise ValueError(f"{where}: pool {s.kernel} is larger than the {h} x {w} map")
            shape = (c, h // s.kernel[0], w // s.kernel[1])
        else:
            shape = (s.features,)
        out.append(shape)
    return out


def stack_weight_count(specs, input_shape, classes):
    """INT8 weights of the stack and its readout of ``classes`` outputs."""
    count, shape = 0, tuple(input_shape)
    for s, out in zip(specs, stack_shapes(specs, input_shape)):
        if s.kind == "conv2d":
            count += s.channels * shape[0] * s.kernel ** 2
        elif s.kind == "dense":
            count += s.features * _size(shape)
        shape = out
    return count + classes * _size(shape)


def _size(shape):
    n = 1
    for v in shape:
        n *= v
    return n
