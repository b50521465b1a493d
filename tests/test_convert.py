"""Tests of the CNN-to-SNN initialization (train/convert.py)."""

import dataclasses

import pytest
import torch

from train.convert import activation_scales, init_from_cnn
from train.model import SCNN, SCNNConfig


def _pair(hidden=(12,)):
    cfg = SCNNConfig(input_shape=(1, 16, 48), hidden=hidden)
    torch.manual_seed(0)
    return SCNN(cfg), SCNN(dataclasses.replace(cfg, neuron="relu", mem_bits=None))


def test_weights_are_scaled_layer_by_layer():
    snn, cnn = _pair()
    x = torch.randint(-127, 128, (32, 1, 16, 48)).float()
    lam = activation_scales(cnn, x)
    assert len(lam) == 2 and all(v > 0 for v in lam)
    assert init_from_cnn(snn, cnn, x) == lam
    assert torch.allclose(snn.body[0].weight, cnn.body[0].weight / lam[0])
    assert torch.allclose(snn.body[1].weight, cnn.body[1].weight * lam[0] / lam[1])
    assert torch.allclose(snn.body[1].bias, cnn.body[1].bias / lam[1])
    assert torch.allclose(snn.out.weight, cnn.out.weight * lam[1] / snn.config.time_steps)


def test_the_first_layer_scale_is_the_high_percentile_of_its_activations():
    snn, cnn = _pair()
    x = torch.randint(-127, 128, (32, 1, 16, 48)).float()
    a = torch.relu(cnn.body[0](x / cnn.config.input_scale)).flatten()
    expected = torch.quantile(a[a > 0], 0.999).item()
    assert activation_scales(cnn, x)[0] == pytest.approx(expected, rel=1e-6)


def test_the_layouts_must_match():
    snn, _ = _pair(hidden=(12,))
    _, cnn = _pair(hidden=(8,))
    with pytest.raises(ValueError, match="^the CNN and the spiking network must have the same layer stack$"):
        init_from_cnn(snn, cnn, torch.zeros(2, 1, 16, 48))
