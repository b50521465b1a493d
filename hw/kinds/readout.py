"""Layer kind ``readout``: the last layer, a dense layer of integrating neurons and the argmax (core
:class:`hw.readout.Readout`).

Its plan is a :class:`hw.kinds.dense.DensePlan` (the same zero-skipping accumulator and step buffer as a dense
layer) with the readout values in registers; its timeline (:func:`hw.readout.timeline`) ends with the result
transfer, which gives the inference's cycle count. Pure Python.
"""

from . import Kind, register
from .dense import OPTIONS, logic, plan_dense, random_options, rom_words, work

__all__ = ["plan_layer"]


def plan_layer(layer, ctx):
    """The :class:`hw.kinds.dense.DensePlan` of the readout layer (the readout values in registers)."""
    return plan_dense(layer, ctx, "readout", ("readout", "registers"))


def _core(plan):
    from hw.readout import Readout
    return Readout(plan)


def _timeline(*args, **kwargs):
    from hw.readout import timeline
    return timeline(*args, **kwargs)


KIND = register(Kind(
    name="readout", manifest_type="dense", neuron="integrate", options=OPTIONS, takes_map=False, buffered=True,
    final=True, emits_rows=False, spiking=False, plan_layer=plan_layer, core=_core, timeline=_timeline, work=work,
    logic=logic, random_options=random_options, rom_words=rom_words))
