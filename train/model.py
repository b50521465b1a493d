"""The spiking CNN in PyTorch: float mode (snnTorch neurons), quantization-aware mode and exact integer mode.

:class:`SCNN` is a configurable stack of layers (:mod:`train.arch`): a first ``conv2d`` or ``dense`` LIF layer on
the INT8 map, then any chain of ``conv2d`` LIF layers on spike maps, OR-pools and ``dense`` LIF layers, and a dense
readout; by default ``conv2d + LIF -> OR-pool -> dense + LIF -> dense readout``. It runs for ``T`` time steps with direct encoding (the INT8 map is presented at every step), the readout integrating
its current over the steps. It has three modes:

``float``
    snnTorch ``Leaky`` neurons (``beta = 1 - 2**-k``, threshold 1, fast-sigmoid surrogate, delayed reset) on the
    float map ``x / input_scale``; used for surrogate-gradient training.
``qat``
    the integer arithmetic of ``docs/arithmetic.md`` evaluated in float32 with straight-through estimators on the
    weight/bias rounding and on the leak's floor, and the fast-sigmoid surrogate on the spike: its forward values
    are the integers the hardware computes.
``int``
    the same integer arithmetic in float64 (every value an exact integer), no gradients.

The integer arithmetic lives in one function, :func:`integer_forward`, on a list of :class:`IntLayer`; it runs
both a trained :class:`SCNN` (:meth:`SCNN.int_layers`) and any manifest :class:`golden.manifest.Model`
(:func:`int_layers_from_model`), which is how the trainer is checked against the golden model.

Integer scaling (symmetric, per layer): ``s_w = max|w| / 127``, ``w_int = round(w / s_w)``. The first layer's
current is in units of ``S = s_w / input_scale`` (its input is ``x_int = input_scale * x``), every other layer's
in units of ``S = s_w`` (its input is 0/1 spikes); the bias is ``round(b / S)`` and the float threshold ``theta_f``
becomes the integer ``round(theta_f / S)``. The membrane in integer units is the float membrane divided by ``S``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, asdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .arch import Conv, Dense, Pool, format_layers, parse_layers, stack_shapes, stack_weight_count

__all__ = ["SCNNConfig", "SCNN", "IntLayer", "integer_forward", "int_layers_from_model", "ste_round", "ste_floor",
           "spike_fn"]


# -- straight-through estimators and the surrogate spike ----------------------------------------------------------

def ste_round(x):
    """``round(x)`` in the forward pass, identity gradient."""
    return x + (torch.round(x) - x).detach()


def ste_floor(x):
    """``floor(x)`` in the forward pass, identity gradient."""
    return x + (torch.floor(x) - x).detach()


class _FastSigmoidSpike(torch.autograd.Function):
    """Heaviside ``[u > 0]`` forward; fast-sigmoid derivative ``1 / (1 + slope |u|)^2`` backward."""

    @staticmethod
    def forward(ctx, u, slope):
        ctx.save_for_backward(u)
        ctx.slope = slope
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad / (ctx.slope * u.abs() + 1.0) ** 2, None


def spike_fn(u, slope):
    """Spike ``[u > 0]`` with the fast-sigmoid surrogate gradient of the given slope."""
    return _FastSigmoidSpike.apply(u, slope)


# -- the integer engine -------------------------------------------------------------------------------------------

@dataclass
class IntLayer:
    """One layer of the integer network as torch tensors (weights and bias hold integer values).

    Parameters
    ----------
    kind : str
        ``"conv2d"``, ``"pool"`` or ``"dense"``.
    neuron : str
        ``"lif"``, ``"integrate"`` or ``""`` (pool).
    """
    name: str
    kind: str
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    neuron: str = ""
    leak_shift: int = 0
    threshold: int = 1
    reset: str = "subtract"
    mem_bits: int = 32


def _sat(v, bits):
    return torch.clamp(v, -float(1 << (bits - 1)), float((1 << (bits - 1)) - 1))


def integer_forward(layers, x, time_steps, *, slope=None, record=False, stats=None):
    """Run the integer network of ``docs/arithmetic.md`` on a batch.

    Parameters
    ----------
    layers : list of IntLayer
        First a conv2d or dense layer on the map, then conv2d, pool and dense layers, last a dense layer with the
        integrating readout.
    x : torch.Tensor
        Integer-valued input maps ``(N, C, H, W)``; its dtype (float32 or float64) is the compute dtype.
    time_steps : int
        ``T``.
    slope : float, optional
        When given, spikes use the fast-sigmoid surrogate normalized by the threshold and the leak's floor a
        straight-through estimator (quantization-aware training); otherwise everything is exact and hard.
    record : bool
        Also return the spike trains: dict layer name -> bool tensor ``(N, T, n_neurons)`` for every LIF and pool
        layer (the golden model's ``Result.spikes``).
    stats : dict, optional
        Filled with the largest ``|membrane|`` (readout value) of every neuron layer, and the count of saturated
        updates, over this batch (``{name: (max_abs, saturations)}``, accumulated).

    Returns
    -------
    readout : torch.Tensor
        ``R[T-1]``, shape ``(N, n_classes)``.
    spikes : dict
        Only with ``record``.
    """
    n = x.shape[0]
    floor = ste_floor if slope is not None else torch.floor
    state = {}
    trains = {l.name: [] for l in layers if l.neuron == "lif" or l.kind == "pool"} if record else None
    first = layers[0]
    if first.kind == "conv2d":
        cur0 = F.conv2d(x, first.weight.to(x.dtype), first.bias.to(x.dtype), stride=first.stride,
                        padding=first.padding)
    else:
        cur0 = F.linear(x.reshape(n, -1), first.weight.to(x.dtype), first.bias.to(x.dtype))
    readout = None
    for _ in range(time_steps):
        h = None
        for i, l in enumerate(layers):
            if l.kind == "pool":
                h = F.max_pool2d(h, l.kernel)
                if record:
                    trains[l.name].append(h.detach().reshape(n, -1) > 0)
                continue
            if i == 0:
                cur = cur0
            elif l.kind == "conv2d":
                cur = F.conv2d(h, l.weight.to(x.dtype), l.bias.to(x.dtype), stride=l.stride, padding=l.padding)
            else:
                cur = F.linear(h.reshape(n, -1), l.weight.to(x.dtype), l.bias.to(x.dtype))
            v = state.get(l.name)
            if v is None:
                v = torch.zeros_like(cur)
            if l.neuron == "integrate":
                new = v + cur
            else:
                theta = float(l.threshold)
                r = (v > theta).to(x.dtype).detach()
                leaked = v - floor(v / float(1 << l.leak_shift))
                if l.reset == "subtract":
                    new = leaked + cur - r * theta
                else:
                    new = (1.0 - r) * leaked + cur
            if stats is not None:
                lo, hi = -float(1 << (l.mem_bits - 1)), float((1 << (l.mem_bits - 1)) - 1)
                m, s = stats.get(l.name, (0, 0))
                stats[l.name] = (max(m, int(new.detach().abs().max())),
                                 s + int(((new < lo) | (new > hi)).sum()))
            v = _sat(new, l.mem_bits)
            state[l.name] = v
            if l.neuron == "integrate":
                readout = v
                continue
            if slope is not None:
                h = spike_fn((v - theta) / theta, slope)
            else:
                h = (v > theta).to(x.dtype)
            if record:
                trains[l.name].append(h.detach().reshape(n, -1) > 0)
    if record:
        return readout, {k: torch.stack(v, dim=1) for k, v in trains.items()}
    return readout


def int_layers_from_model(model, dtype=torch.float64):
    """The :class:`IntLayer` list of a :class:`golden.manifest.Model`."""
    out = []
    for l in model.layers:
        if l.type == "pool":
            out.append(IntLayer(l.name, "pool", kernel=tuple(l.kernel)))
            continue
        nr = l.neuron
        common = dict(weight=torch.tensor(np.asarray(l.weights, dtype=np.int64), dtype=dtype),
                      bias=torch.tensor(np.asarray(l.bias, dtype=np.int64), dtype=dtype), mem_bits=nr.mem_bits)
        if nr.kind == "lif":
            common.update(neuron="lif", leak_shift=nr.leak_shift, threshold=nr.threshold, reset=nr.reset)
        else:
            common.update(neuron="integrate")
        if l.type == "conv2d":
            out.append(IntLayer(l.name, "conv2d", kernel=tuple(l.kernel), stride=tuple(l.stride),
                                padding=tuple(l.padding), **common))
        else:
            out.append(IntLayer(l.name, "dense", **common))
    return out


# -- the trainable network ----------------------------------------------------------------------------------------

@dataclass
class SCNNConfig:
    """Structure and neuron options of :class:`SCNN`.

    Parameters
    ----------
    input_shape : tuple
        ``(C, H, W)`` of the INT8 input map.
    layers : str
        The layer stack in the text form of :mod:`train.arch` (``"c8k3,p2x2,c16k3,p2x4,d128,d64"``), the readout
        implied. Empty: the default stack ``c{channels}k{kernel},p{pool},d{hidden}...`` of the four fields below.
    channels : int
        Output channels of the convolution (default stack).
    kernel : int
        Square convolution kernel, padding ``kernel // 2``, stride 1 (default stack).
    pool : tuple
        OR-pool window ``(h, w)`` (default stack).
    hidden : tuple of int
        Sizes of the dense LIF layers between pool and readout (default stack).
    classes : int
        Readout size.
    time_steps : int
        ``T``.
    leak_shift : int
        ``k`` of every LIF layer (``beta = 1 - 2**-k``).
    threshold : float
        Float threshold of every LIF layer.
    reset : str
        ``"subtract"`` or ``"zero"``.
    slope : float
        Fast-sigmoid surrogate slope (in units of the threshold).
    neuron : str
        ``"lif"`` for the spiking network, ``"relu"`` for the non-spiking CNN control (float only).
    input_scale : float
        ``x_int = input_scale * x``.
    dropout : float
        Dropout probability on the activations (spikes) of every layer before the readout, in float training only
        (the quantization-aware and integer modes never drop): a regularizer that changes nothing in the exported
        arithmetic.
    mem_bits : list of int
        Membrane width of every neuron layer (conv and dense in order, readout last), chosen by calibration before
        export.
    """
    input_shape: tuple = (1, 16, 48)
    channels: int = 4
    kernel: int = 3
    pool: tuple = (2, 4)
    hidden: tuple = (28,)
    classes: int = 10
    time_steps: int = 4
    leak_shift: int = 3
    threshold: float = 1.0
    reset: str = "subtract"
    slope: float = 25.0
    neuron: str = "lif"
    input_scale: float = 32.0
    dropout: float = 0.0
    mem_bits: list = field(default_factory=list)
    layers: str = ""

    def __post_init__(self):
        self.input_shape = tuple(self.input_shape)
        self.pool = tuple(self.pool)
        self.hidden = tuple(self.hidden)
        if self.reset not in ("subtract", "zero"):
            raise ValueError(f"reset must be 'subtract' or 'zero', not {self.reset!r}")
        if self.neuron not in ("lif", "relu"):
            raise ValueError(f"neuron must be 'lif' or 'relu', not {self.neuron!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout!r}")
        if not self.layers and self.kernel % 2 != 1:
            raise ValueError(f"kernel must be odd (same padding), not {self.kernel}")
        stack = self.stack
        stack_shapes(stack, self.input_shape)
        neurons = sum(1 for s in stack if s.kind != "pool") + 1
        if not self.mem_bits:
            self.mem_bits = [24] * neurons
        if len(self.mem_bits) != neurons:
            raise ValueError(f"mem_bits needs {neurons} widths (one per conv2d and dense layer, then the readout)")

    @property
    def stack(self) -> tuple:
        """The layers before the readout, as :mod:`train.arch` specs."""
        if self.layers:
            return parse_layers(self.layers)
        return (Conv(self.channels, self.kernel), Pool(self.pool), *(Dense(h) for h in self.hidden))

    @property
    def weight_count(self) -> int:
        return stack_weight_count(self.stack, self.input_shape, self.classes)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


class SCNN(nn.Module):
    """Configurable spiking network (see the module docstring for its modes).

    Parameters
    ----------
    config : SCNNConfig

    Members
    -------
    body : nn.ModuleList
        The conv2d (``nn.Conv2d``) and dense (``nn.Linear``) layers before the readout, in order.
    out : nn.Linear
        The readout.
    """

    def __init__(self, config: SCNNConfig):
        super().__init__()
        self.config = cfg = config
        self.stack = cfg.stack
        shape = cfg.input_shape
        self.body = nn.ModuleList()
        for spec, out in zip(self.stack, stack_shapes(self.stack, shape)):
            if spec.kind == "conv2d":
                self.body.append(nn.Conv2d(shape[0], spec.channels, spec.kernel, stride=spec.stride,
                                           padding=spec.padding))
            elif spec.kind == "dense":
                self.body.append(nn.Linear(math.prod(shape), spec.features))
            shape = out
        self.out = nn.Linear(math.prod(shape), cfg.classes)
        self.mode = "float"
        if cfg.neuron == "lif":
            import snntorch as snn
            from snntorch import surrogate
            grad = surrogate.fast_sigmoid(slope=cfg.slope / cfg.threshold)
            beta = 1.0 - 2.0 ** -cfg.leak_shift
            self.lifs = nn.ModuleList(
                snn.Leaky(beta=beta, threshold=cfg.threshold, spike_grad=grad, reset_mechanism=cfg.reset)
                for _ in range(len(self.body)))

    @property
    def names(self) -> list:
        """Layer names as exported: conv1, conv2..., pool1..., fc1..., numbered per kind in order, then out."""
        counts, names = {}, []
        for spec in self.stack:
            prefix = {"conv2d": "conv", "pool": "pool", "dense": "fc"}[spec.kind]
            counts[prefix] = counts.get(prefix, 0) + 1
            names.append(f"{prefix}{counts[prefix]}")
        return names + ["out"]

    def forward(self, x):
        """Logits ``(N, classes)`` from integer-valued maps ``x`` ``(N, C, H, W)``.

        float mode: the readout sum over the steps; qat mode: the integer readout times its scale;
        int mode: the exact integer readout (float64).
        """
        if self.mode == "float":
            return self._forward_float(x.float() / self.config.input_scale)
        if self.mode == "qat":
            layers, scale = self.int_layers(ste=True)
            return integer_forward(layers, x.float(), self.config.time_steps, slope=self.config.slope) * scale
        if self.mode == "int":
            with torch.no_grad():
                layers, _ = self.int_layers(ste=False)
                return integer_forward(layers, x.double(), self.config.time_steps)
        raise ValueError(f"unknown mode {self.mode!r} (float, qat, int)")

    def _rest(self, h, step):
        """The layers after the first on its output ``h``; ``step(j, current)`` makes the activation of body ``j``."""
        j = 1
        for spec in self.stack[1:]:
            if spec.kind == "pool":
                h = F.max_pool2d(h, spec.kernel)
                continue
            h = step(j, self.body[j](h if spec.kind == "conv2d" else h.flatten(1)))
            j += 1
        return h.flatten(1)

    def _forward_float(self, x):
        cfg = self.config
        cur = self.body[0](x if self.stack[0].kind == "conv2d" else x.flatten(1))

        def drop(h):
            return F.dropout(h, cfg.dropout, self.training) if cfg.dropout else h
        if cfg.neuron == "relu":
            return self.out(self._rest(drop(F.relu(cur)), lambda j, c: drop(F.relu(c))))
        mems = [torch.zeros_like(cur)] + [None] * (len(self.body) - 1)

        def lif(j, c):
            if mems[j] is None:
                mems[j] = torch.zeros_like(c)
            spk, mems[j] = self.lifs[j](c, mems[j])
            return drop(spk)
        total = 0
        for _ in range(cfg.time_steps):
            spk, mems[0] = self.lifs[0](cur, mems[0])
            total = total + self.out(self._rest(drop(spk), lif))
        return total

    @classmethod
    def from_model(cls, model) -> "SCNN":
        """The float network of a saved :class:`golden.manifest.Model` made by :meth:`export`.

        Weights and biases are the integers times their scales (``weight_scale`` and the manifest's input scale), the
        float threshold is 1; the network's integer mode then re-quantizes to the same integers.

        Raises
        ------
        ValueError
            When a conv2d's kernel, stride or padding is not square, the LIF layers differ in leak shift or reset
            mode, or a layer lacks a weight scale.
        """
        ls = model.layers
        specs = []
        for l in ls[:-1]:
            if l.type == "conv2d":
                if len({l.kernel[0], l.kernel[1]}) != 1 or len(set(l.stride)) != 1 or len(set(l.padding)) != 1:
                    raise ValueError(f"model {model.name}: layer {l.name} needs a square kernel, stride and padding")
                specs.append(Conv(l.out_channels, l.kernel[0], l.stride[0], l.padding[0]))
            elif l.type == "pool":
                specs.append(Pool(tuple(l.kernel)))
            else:
                specs.append(Dense(l.out_features))
        lifs = [l.neuron for l in ls[:-1] if l.type != "pool"]
        if len({(n.leak_shift, n.reset) for n in lifs}) != 1:
            raise ValueError(f"model {model.name}: SCNN needs one leak shift and reset mode in all LIF layers")
        if any(l.weight_scale is None for l in ls if l.type != "pool"):
            raise ValueError(f"model {model.name}: a layer has no weight_scale")
        scale = float((model.quantization or {}).get("input_scale", 32.0))
        cfg = SCNNConfig(input_shape=tuple(model.input_shape), layers=format_layers(specs),
                         classes=ls[-1].out_features, time_steps=model.time_steps, leak_shift=lifs[0].leak_shift,
                         reset=lifs[0].reset, input_scale=scale,
                         mem_bits=[l.neuron.mem_bits for l in ls if l.type != "pool"])
        net = cls(cfg)
        with torch.no_grad():
            for i, (m, l) in enumerate(zip(net._linear_layers(), [l for l in ls if l.type != "pool"])):
                s = float(l.weight_scale)
                m.weight.copy_(torch.tensor(l.weights.astype(np.float64) * s, dtype=torch.float32).reshape(
                    m.weight.shape))
                m.bias.copy_(torch.tensor(l.bias.astype(np.float64) * (s / scale if i == 0 else s),
                                          dtype=torch.float32))
        return net

    # -- quantization --------------------------------------------------------------------------------------------

    def _linear_layers(self):
        return [*self.body, self.out]

    def scales(self):
        """Per-layer ``(weight scale s_w, current scale S)`` from the current float weights; the first layer reads
        the map ``x_int = input_scale * x``, every other layer spikes."""
        out = []
        for i, m in enumerate(self._linear_layers()):
            s = float(m.weight.detach().abs().max()) / 127.0
            s = s if s > 0 else 1.0 / 127.0
            out.append((s, s / self.config.input_scale if i == 0 else s))
        return out

    def int_layers(self, *, ste: bool):
        """The integer layers of this network and the readout's current scale.

        Parameters
        ----------
        ste : bool
            Keep straight-through gradients to the float weights (qat) or return detached integers.

        Raises
        ------
        ValueError
            When an integer threshold falls outside ``1 ... 2**(mem_bits-1) - 2``.
        """
        cfg = self.config
        rnd = ste_round if ste else (lambda t: torch.round(t.detach()))
        scales = self.scales()
        layers, j = [], 0
        for spec, name in zip((*self.stack, None), self.names):
            if spec is not None and spec.kind == "pool":
                layers.append(IntLayer(name, "pool", kernel=tuple(spec.kernel)))
                continue
            m = self._linear_layers()[j]
            s, S = scales[j]
            w = torch.clamp(rnd(m.weight / s), -127, 127)
            b = rnd(m.bias / S)
            bits = cfg.mem_bits[j]
            j += 1
            if spec is None:
                layers.append(IntLayer(name, "dense", w, b, neuron="integrate", mem_bits=bits))
                return layers, S
            theta = int(round(cfg.threshold / S))
            if not 1 <= theta <= (1 << (bits - 1)) - 2:
                raise ValueError(f"layer {name}: integer threshold {theta} does not fit mem_bits {bits} "
                                 f"(1 ... {(1 << (bits - 1)) - 2}); widen mem_bits")
            kw = dict(neuron="lif", leak_shift=cfg.leak_shift, threshold=theta, reset=cfg.reset, mem_bits=bits)
            if spec.kind == "conv2d":
                layers.append(IntLayer(name, "conv2d", w, b, kernel=(spec.kernel,) * 2, stride=(spec.stride,) * 2,
                                       padding=(spec.padding,) * 2, **kw))
            else:
                layers.append(IntLayer(name, "dense", w, b, **kw))
        raise AssertionError("unreachable")

    def export(self, name="fsdd_scnn", classes=None, features=None, description=""):
        """The :class:`golden.manifest.Model` of this network's integer mode (not yet saved).

        ``acc_bits`` are the smallest widths that cannot overflow (``golden.manifest.required_acc_bits``),
        ``bias_bits`` the smallest that hold the biases.
        """
        import golden.manifest as gm
        if self.config.neuron != "lif":
            raise ValueError("only the spiking network (neuron='lif') can be exported")
        cfg = self.config
        layers, _ = self.int_layers(ste=False)
        scales = self.scales()
        out, k = [], 0
        for l in layers:
            if l.kind == "pool":
                out.append(gm.Pool(name=l.name, kernel=tuple(l.kernel)))
                continue
            w = l.weight.detach().numpy().astype(np.int8)
            b = l.bias.detach().numpy().astype(np.int64)
            big = int(np.abs(b).max()) if b.size else 0
            bias_bits = max(2, (big + 1).bit_length() + 1)
            if bias_bits > 32:
                raise ValueError(f"layer {l.name}: a bias of {big:,} needs {bias_bits} bits; at most 32")
            nr = (gm.LIF(leak_shift=l.leak_shift, threshold=l.threshold, reset=l.reset, mem_bits=l.mem_bits)
                  if l.neuron == "lif" else gm.Integrate(mem_bits=l.mem_bits))
            if l.kind == "conv2d":
                layer = gm.Conv2d(name=l.name, in_channels=w.shape[1], out_channels=w.shape[0],
                                  kernel=tuple(l.kernel), stride=tuple(l.stride), padding=tuple(l.padding),
                                  weights=w, bias=b, bias_bits=bias_bits, acc_bits=64, neuron=nr,
                                  weight_scale=scales[k][0])
            else:
                layer = gm.Dense(name=l.name, in_features=w.shape[1], out_features=w.shape[0], weights=w, bias=b,
                                 bias_bits=bias_bits, acc_bits=64, neuron=nr, weight_scale=scales[k][0])
            out.append(_replace(layer, acc_bits=gm.required_acc_bits(layer, on_map=k == 0)))
            k += 1
        classes = list(classes) if classes is not None else [str(i) for i in range(cfg.classes)]
        return gm.Model(name=name, input_shape=tuple(cfg.input_shape), time_steps=cfg.time_steps, layers=out,
                        classes=classes, features=features, quantization={"input_scale": cfg.input_scale},
                        description=description)


def _replace(layer, **kw):
    import dataclasses
    return dataclasses.replace(layer, **kw)


def bits_for_magnitude(m: int, margin: float = 2.0) -> int:
    """Smallest signed width whose positive bound is at least ``margin * m`` (at least 2)."""
    need = int(math.ceil(margin * max(m, 1)))
    return max(2, need.bit_length() + 1)
