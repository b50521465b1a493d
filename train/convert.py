"""CNN-to-SNN initialization: the spiking network starts from the weights of the non-spiking CNN of its layout.

The approach of the seed project (``--init-from-cnn``): train the CNN (ReLU in place of every LIF neuron, max-pool
in place of the OR-pool, same layers) first, then copy its weights into the spiking network with data-based
layer-wise normalization (Diehl et al., 2015), so that a ReLU activation ``a`` of layer ``j`` becomes a firing
probability of about ``a / lambda_j``, ``lambda_j`` being the 99.9th percentile of that layer's activations on
training maps:

* body layer ``j``: ``W' = theta W lambda_{j-1} / lambda_j``, ``b' = theta b / lambda_j`` (``lambda_{-1} = 1``: the
  first layer sees the map itself; ``theta`` the float threshold);
* readout, integrated over ``T`` steps: ``W' = W lambda_last / T``, ``b' = b / T``, so that its sum over the steps
  approximates the CNN's logits.

Surrogate-gradient training then fine-tunes the spiking network from there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["activation_scales", "init_from_cnn"]

#: Percentile of the activations taken as a layer's full scale.
PERCENTILE = 99.9


def activation_scales(cnn, x, percentile: float = PERCENTILE) -> list:
    """``lambda_j`` of every body layer of the ReLU network ``cnn`` on the integer maps ``x``."""
    cfg = cnn.config
    scales = []
    cnn.eval()
    with torch.no_grad():
        h = x.float() / cfg.input_scale
        j = 0
        for spec in cnn.stack:
            if spec.kind == "pool":
                h = F.max_pool2d(h, spec.kernel)
                continue
            h = F.relu(cnn.body[j](h if spec.kind == "conv2d" else h.flatten(1)))
            flat = h.flatten()
            positive = flat[flat > 0]
            scale = float(torch.quantile(positive[:1_000_000], percentile / 100.0)) if positive.numel() else 1.0
            scales.append(max(scale, 1e-6))
            j += 1
    return scales


def init_from_cnn(snn, cnn, x) -> list:
    """Load the weights of the trained ReLU network ``cnn`` into the spiking network ``snn`` (same layer stack),
    normalized layer by layer on the integer maps ``x``; returns the scales ``lambda_j``.

    Raises
    ------
    ValueError
        When the two networks do not have the same layer stack.
    """
    if snn.stack != cnn.stack:
        raise ValueError("the CNN and the spiking network must have the same layer stack")
    scales = activation_scales(cnn, x)
    theta, steps = snn.config.threshold, snn.config.time_steps
    previous = 1.0
    with torch.no_grad():
        for j, (dst, src) in enumerate(zip(snn.body, cnn.body)):
            dst.weight.copy_(theta * src.weight * previous / scales[j])
            dst.bias.copy_(theta * src.bias / scales[j])
            previous = scales[j]
        snn.out.weight.copy_(cnn.out.weight * previous / steps)
        snn.out.bias.copy_(cnn.out.bias / steps)
    return scales
