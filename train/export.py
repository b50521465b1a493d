"""Export of a trained network: block-RAM budget check, membrane widths, atomic manifest write.

The target is a device of :mod:`hw.device` (the iCE40UP5K: 30 embedded block RAMs of 4 kbit, 122,880 bits in all,
initialized by the bitstream). Weights and biases live there, beside the step buffers and spike bitmaps of the
hardware; :func:`check_budget` refuses a model whose parameters do not fit what is left after a reserve for those,
counted in bits and in the block RAMs of the ROMs of its hardware plan (:func:`hw.plan.plan`). With ``spram=True``
it counts the four single-port RAMs (SPRAM, 4 x 256 kbit) that deeper models keep their weights in, in bits only
(the hardware plan does not place weights in SPRAM yet).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

__all__ = ["BudgetError", "EBR_BITS", "EBR_COUNT", "SPRAM_BITS", "SPRAM_COUNT", "DEFAULT_RESERVE_BITS", "parameter_bits", "check_budget",
           "calibrate_mem_bits", "membrane_peaks", "export_model"]

def _device(device=None):
    from hw.device import get
    return get(device or "iCE40UP5K")


#: Bits of one block RAM and block RAMs of the default device.
EBR_BITS = _device().block_ram.bits
EBR_COUNT = _device().block_ram.count
DEFAULT_RESERVE_BITS = 4 * EBR_BITS
#: Bits of one SPRAM (16K x 16) and SPRAMs of the iCE40UP5K.
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


def check_budget(model, *, reserve_bits: int = DEFAULT_RESERVE_BITS, device=None, spram: bool = False) -> dict:
    """Check that the weights and biases fit the device's block RAM left after ``reserve_bits``, in bits and in the
    block RAMs of the hardware plan's ROMs.

    Parameters
    ----------
    model : golden.manifest.Model
    reserve_bits : int
        Block-RAM bits kept for the step buffers and spike bitmaps in the first check.
    device : hw.device.Device or str, optional
        Default: the iCE40UP5K.
    spram : bool
        Also count the iCE40UP5K's four SPRAMs, in bits. The plan's block-RAM check is skipped then, and for a
        stacked network of manifest version 2: the hardware plan does not handle either yet.

    Returns
    -------
    dict
        ``{"weights", "weight_bits", "parameter_bits", "available_bits", "total_bits", "per_layer",
        "rom_blocks"}`` (``rom_blocks``: the block RAMs of the plan's weight and bias ROMs).

    Raises
    ------
    BudgetError
        Naming the model's need, its largest layer and the device's capacity.
    """
    from hw.plan import plan

    device = _device(device) if not hasattr(device, "block_ram") else device
    ram = device.block_ram
    per = parameter_bits(model)
    need = sum(per.values())
    total = ram.count * ram.bits + (SPRAM_COUNT * SPRAM_BITS if spram else 0)
    avail = total - reserve_bits
    info = {"weights": int(model.weight_count), "weight_bits": int(model.weight_count) * 8, "parameter_bits": need,
            "available_bits": avail, "total_bits": total, "per_layer": per}
    if need > avail:
        big = max(per, key=per.get)
        where = (f"block RAM and SPRAM for weights and biases (layer {big}: {per[big]:,}); {device.name} has "
                 f"{total:,} ({ram.count} EBR of {ram.bits:,} bits and {SPRAM_COUNT} SPRAM of {SPRAM_BITS:,})"
                 if spram else
                 f"block RAM for weights and biases (layer {big}: {per[big]:,}); {device.name} has {total:,} "
                 f"({ram.count} EBR of {ram.bits:,} bits)")
        raise BudgetError(
            f"model {model.name} needs {need:,} bits of {where}, {reserve_bits:,} of which are kept for FIFOs and "
            f"spike buffers, leaving {avail:,}: use fewer weights (smaller hidden layer, fewer channels or a "
            f"coarser pool)" + ("" if spram else ", or --spram to count the four SPRAMs"))
    from golden.manifest import manifest_version
    if spram or manifest_version(model) > 1:
        return info  # SPRAM counted in bits only; the plan does not build the stacked layers of version 2 yet
    # The same in the plan's terms: the ROMs of weights and biases in their block RAMs, as the hardware lays them
    # out (lanes, row strides, aspect ratios), within the blocks left after the reserve. The other memories depend
    # on the membrane widths, which are calibrated after training.
    # (every weight ROM in block RAM: the plan would move one into SPRAM by itself when the block RAMs overflow)
    hardware = plan(model, device=device,
                    params={layer.name: {"weights": "bram"} for layer in model.layers if layer.type == "dense"})
    roms = {lp.name: sum(mem.blocks for mem in lp.memories if mem.kind == "rom") for lp in hardware.layers}
    left = ram.count - -(-reserve_bits // ram.bits)
    info["rom_blocks"] = sum(roms.values())
    if info["rom_blocks"] > left:
        big = max(roms, key=roms.get)
        raise BudgetError(
            f"model {model.name}: its weight and bias ROMs take {info['rom_blocks']} block RAMs (layer {big}: "
            f"{roms[big]}); {device.name} has {ram.count}, {ram.count - left} of which are kept for step buffers and "
            f"spike bitmaps, leaving {left}: use fewer weights (smaller hidden layer, fewer channels or a coarser "
            f"pool)")
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
    from .model import bits_for_magnitude
    cfg = net.config
    saved = list(cfg.mem_bits)
    cfg.mem_bits = [32] * len(saved)
    try:
        with torch.no_grad():
            layers, _ = net.int_layers(ste=False)
            stats = membrane_peaks(layers, x, cfg.time_steps, batch=batch)
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


def membrane_peaks(layers, x, time_steps: int, *, batch: int = 500) -> dict:
    """``{name: (largest |membrane|, saturated updates)}`` of every neuron layer of the integer layers ``layers``
    (:class:`train.model.IntLayer`) run on the INT8 maps ``x``."""
    from .model import integer_forward
    stats = {}
    with torch.no_grad():
        for i in range(0, len(x), batch):
            integer_forward(layers, torch.as_tensor(np.asarray(x[i:i + batch]), dtype=torch.float64), time_steps,
                            stats=stats)
    return stats


def export_model(net, out_dir, *, name: str, features: dict | None, description: str = "",
                 training: dict | None = None, reserve_bits: int = DEFAULT_RESERVE_BITS, spram: bool = False):
    """Check the budget and save ``net``'s integer mode as a model directory (atomic).

    ``training`` is the manifest's record of the data the model was trained on
    (:func:`train.fsdd.training_record`), which ``python -m train.evaluate`` checks its test split against.

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
    model = dataclasses.replace(net.export(name=name, features=features, description=description), training=training)
    budget = check_budget(model, reserve_bits=reserve_bits, spram=spram)
    gm.save(model, out_dir)
    return gm.load(out_dir), budget


def with_time_steps(model, t: int):
    """A copy of a :class:`golden.manifest.Model` run for ``t`` steps (accuracy against the number of steps)."""
    return dataclasses.replace(model, time_steps=int(t))
