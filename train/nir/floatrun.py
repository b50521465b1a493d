"""The imported NIR graph run in float with snnTorch's neurons: the reference accuracy beside the bit-true one.

:class:`FloatRunner` builds, from a :class:`train.nir.graph.FloatNet` (the graph as read, before any quantization),
``torch.nn.Conv2d``/``Linear`` layers with the graph's float weights and an ``snntorch.Leaky`` per spiking layer with
the graph's own ``beta`` (not the nearest ``1 - 2**-k``), threshold 1 (the graph's thresholds are folded into the
weights, which changes no spike) and a reset to zero, as NIR's LIF defines it. A SumPool2d + Threshold pair is the
max-pooling of spikes (an OR). The readout sums its current over the ``T`` steps (``I``), or leaks it by ``beta``
(``LI``). The input is the float map ``x_int / input_scale``, presented at every step.

snnTorch's own ``import_from_nir`` cannot run these graphs: it has no ``SumPool2d``, ``Threshold``, ``I`` or ``LI``
(snnTorch 1.0.0), and it treats an ``IF`` as a ``Leaky`` with ``beta = 0.9``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["FloatRunner", "float_accuracy"]


class FloatRunner(nn.Module):
    """The float network of a :class:`train.nir.graph.FloatNet`.

    Parameters
    ----------
    net : train.nir.graph.FloatNet
    time_steps : int
    input_scale : float
    """

    def __init__(self, net, *, time_steps: int, input_scale: float):
        super().__init__()
        import snntorch as snn
        self.time_steps, self.input_scale, self.specs = int(time_steps), float(input_scale), net.layers
        self.synapses, self.neurons = nn.ModuleList(), nn.ModuleList()
        for l in net.layers:
            if l.kind == "pool":
                continue
            w = torch.tensor(l.weight, dtype=torch.float32)
            if l.kind == "conv2d":
                m = nn.Conv2d(w.shape[1], w.shape[0], tuple(l.kernel), stride=tuple(l.stride),
                              padding=tuple(l.padding))
            else:
                m = nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                m.weight.copy_(w)
                m.bias.copy_(torch.tensor(l.bias, dtype=torch.float32))
            self.synapses.append(m)
            if l.neuron == "lif":
                self.neurons.append(snn.Leaky(beta=float(l.beta), threshold=1.0, reset_mechanism="zero",
                                              reset_delay=False))

    def forward(self, x_int, record=False):
        """Readout ``(N, classes)`` of integer-valued maps ``x_int``; with ``record`` also the spike trains
        ``[(N, T, n) bool per spiking or pool layer]`` in layer order."""
        x = x_int.float() / self.input_scale
        n = x.shape[0]
        mems = [None] * len(self.neurons)
        readout, trains = None, []
        for t in range(self.time_steps):
            h, j, k, step = x, 0, 0, []
            for l in self.specs:
                if l.kind == "pool":
                    h = F.max_pool2d(h, tuple(l.kernel))
                    step.append(h.reshape(n, -1) > 0)
                    continue
                cur = self.synapses[j](h if l.kind == "conv2d" else h.reshape(n, -1))
                j += 1
                if l.neuron == "integrate":
                    readout = cur if readout is None else l.beta * readout + cur
                    break
                if mems[k] is None:
                    mems[k] = torch.zeros_like(cur)
                h, mems[k] = self.neurons[k](cur, mems[k])
                step.append(h.reshape(n, -1) > 0)
                k += 1
            trains.append(step)
        if record:
            return readout, [torch.stack([s[i] for s in trains], dim=1) for i in range(len(trains[0]))]
        return readout


def float_accuracy(runner, x, y, *, batch: int = 300) -> tuple:
    """``(accuracy, predictions)`` of the float runner on INT8 maps ``x`` with labels ``y``."""
    preds = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = runner(torch.as_tensor(np.asarray(x[i:i + batch])))
            preds.append(out.argmax(1).numpy())
    p = np.concatenate(preds)
    return float(np.mean(p == np.asarray(y))), p
