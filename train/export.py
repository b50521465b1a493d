"""Export of a trained network: block-RAM budget check, membrane widths, atomic manifest write.

The target is the iCE40UP5K: 30 embedded block RAMs (EBR) of 4 kbit, 122,880 bits in all, initialized by the
bitstream. Weights and biases live there, beside the FIFOs and spike buffers of the hardware; :func:`check_budget`
refuses a model whose parameters do not fit what is left after a reserve for those. With ``spram=True`` it also
counts the four single-port RAMs (SPRAM, 4 x 256 kbit) that deeper models keep their weights in.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

__all__ = ["BudgetError", "EBR_BITS", "EBR_COUNT", "SPRAM_BITS", "SPRAM_COUNT", "DEFAULT_RESERVE_BITS", "parameter_bits", "check_budget",
           "calibrate_mem_bits", "export_model"]

EBR_BITS = 4096
EBR_COUNT = 30
DEFAULT_RESERVE_BITS = 4 * EBR_BITS
SPRAM_BITS = 16384 * 16
SPRAM_COUNT = 4


class BudgetError(ValueError):
    """The model's parameters do not fit the target's block RAM."""


def parameter_bits(model) -> dict:
    """Bits of weights plus biases of every layer of a :class:`golden.manifest.Model`."""
    out = {}
    for l in model.layers:
        if hasattr(l, "weights"):
            out[l.name] = int(l.weights.size) * 8 + int(l.bias.size) * int(l.bias_bits)
    return out


def check_budget(model, *, reserve_bits: int = DEFAULT_RESERVE_BITS, ebr_count: int = EBR_COUNT,
                 spram: bool = False) -> dict:
    """Check that the weights and biases fit the iCE40UP5K block RAM left after ``reserve_bits``, plus its four
    SPRAMs with ``spram``.

    Returns
    -------
    dict
        ``{"weights", "weight_bits", "parameter_bits", "available_bits", "total_bits", "per_layer"}``.

    Raises
    ------
    BudgetError
        Naming the model's need, its largest layer and the device's capacity.
    """
    per = parameter_bits(model)
    need = sum(per.values())
    total = ebr_count * EBR_BITS + (SPRAM_COUNT * SPRAM_BITS if spram else 0)
    avail = total - reserve_bits
    info = {"weights": int(model.weight_count), "weight_bits": int(model.weight_count) * 8, "parameter_bits": need,
            "available_bits": avail, "total_bits": total, "per_layer": per}
    if need > avail:
        big = max(per, key=per.get)
        where = (f"block RAM and SPRAM for weights and biases (layer {big}: {per[big]:,}); iCE40UP5K has {total:,} "
                 f"({ebr_count} EBR of {EBR_BITS:,} bits and {SPRAM_COUNT} SPRAM of {SPRAM_BITS:,})" if spram else
                 f"block RAM for weights and biases (layer {big}: {per[big]:,}); iCE40UP5K has {total:,} "
                 f"({ebr_count} EBR of {EBR_BITS:,} bits)")
        raise BudgetError(
            f"model {model.name} needs {need:,} bits of {where}, {reserve_bits:,} of which are kept for FIFOs and "
            f"spike buffers, leaving {avail:,}: use fewer weights (smaller hidden layer, fewer channels or a "
            f"coarser pool)" + ("" if spram else ", or --spram to count the four SPRAMs"))
    return info


def calibrate_mem_bits(net, x, *, margin: float = 2.0, batch: int = 500) -> tuple:
    """Choose every layer's ``mem_bits`` from the largest ``|membrane|`` on ``x`` (the training maps).

    The integer mode is run with 32-bit membranes; each width is the smallest signed width whose bound is at least
    ``margin`` times the largest magnitude seen, and that holds the layer's threshold. Saturation is then rare
    (it never happened on ``x``) and defined (arithmetic.md section 6).

    Returns
    -------
    (list of int, dict)
        The widths (every conv2d and dense layer in order, then the readout) and the largest magnitudes by layer name.
    """
    from .model import bits_for_magnitude, integer_forward
    cfg = net.config
    saved = list(cfg.mem_bits)
    cfg.mem_bits = [32] * len(saved)
    stats = {}
    try:
        with torch.no_grad():
            layers, _ = net.int_layers(ste=False)
            for i in range(0, len(x), batch):
                integer_forward(layers, torch.as_tensor(np.asarray(x[i:i + batch]), dtype=torch.float64),
                                cfg.time_steps, stats=stats)
    finally:
        cfg.mem_bits = saved
    bits = []
    for l in layers:
        if l.kind == "pool":
            continue
        b = bits_for_magnitude(stats[l.name][0], margin)
        if l.neuron == "lif":
            while (1 << (b - 1)) - 2 < l.threshold:
                b += 1
        bits.append(min(b, 32))
    return bits, {k: v[0] for k, v in stats.items()}


def export_model(net, out_dir, *, name: str, features: dict | None, description: str = "",
                 reserve_bits: int = DEFAULT_RESERVE_BITS, spram: bool = False):
    """Check the budget and save ``net``'s integer mode as a model directory (atomic).

    Returns
    -------
    (golden.manifest.Model, dict)
        The model as saved and the budget figures.

    Raises
    ------
    BudgetError
        When the parameters do not fit; nothing is written then.
    """
    import golden.manifest as gm
    model = net.export(name=name, features=features, description=description)
    budget = check_budget(model, reserve_bits=reserve_bits, spram=spram)
    gm.save(model, out_dir)
    return gm.load(out_dir), budget


def with_time_steps(model, t: int):
    """A copy of a :class:`golden.manifest.Model` run for ``t`` steps (accuracy against the number of steps)."""
    return dataclasses.replace(model, time_steps=int(t))
