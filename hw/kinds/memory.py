"""A memory of the plan and what it costs on a device: the one place that counts block RAMs; and the option
``state`` (where a sweeping core keeps its membranes). Pure Python."""

from dataclasses import dataclass

__all__ = ["Memory", "memory", "SPRAM_KINDS", "STATE_PLACES", "state_option", "state_of"]


@dataclass(frozen=True)
class Memory:
    """One memory (or register file) of the design: ``width`` bits x ``depth`` words.

    Attributes
    ----------
    name : str
        ``<layer>.<what>``.
    width, depth : int
    kind : str
        ``"rom"`` (initialized by the bitstream), ``"ram"``, ``"spram"`` (the device's large single-port RAM,
        written by the design), ``"spram_rom"`` (constants in SPRAM, loaded at start-up: :mod:`hw.weights`) or
        ``"registers"``.
    blocks : int
        The device's block RAMs it takes in their best aspect ratio: 0 for registers and SPRAM, and for ROMs small
        enough that synthesis builds them from logic (``Device.small_rom_words``).
    sprams : int
        The device's SPRAMs it takes: banks side by side for the width, stacked for the depth (0 elsewhere).
    """
    name: str
    width: int
    depth: int
    kind: str = "ram"
    blocks: int = 0
    sprams: int = 0

    @property
    def bits(self):
        return self.width * self.depth

    @property
    def ebr(self):
        """:attr:`blocks` (the name of an iCE40 block RAM)."""
        return self.blocks


#: Memory kinds that live in the device's SPRAM.
SPRAM_KINDS = ("spram", "spram_rom")

#: Where a sweeping core (:mod:`hw.sweep`) may keep its membranes: option ``state`` of the kinds that have one.
STATE_PLACES = ("bram", "spram")


def memory(device, name, width, depth, kind="ram"):
    """A :class:`Memory` of ``kind`` with its block and SPRAM counts on ``device`` (a :class:`hw.device.Device`).

    Raises
    ------
    ValueError
        If ``kind`` is an SPRAM kind and the device has no SPRAM.
    """
    sprams = 0
    if kind in SPRAM_KINDS:
        if device.wide_ram is None:
            raise ValueError(f"memory {name} is placed in SPRAM; the {device.name} has none")
        sprams = device.wide_ram.blocks(width, depth)
    if kind in ("registers",) + SPRAM_KINDS or (kind == "rom" and depth <= device.small_rom_words):
        blocks = 0
    else:
        blocks = device.block_ram.blocks(width, depth)
    return Memory(name, int(width), int(depth), kind, blocks, sprams)


def state_option(name, ctx):
    """The option ``state`` of layer ``name`` in context ``ctx`` (default ``"bram"``), checked: one of
    :data:`STATE_PLACES`, and ``"spram"`` only on a device with SPRAM.

    Raises
    ------
    ValueError
        Naming the layer, the option and the allowed values (or the device).
    """
    state = ctx.options.get("state", "bram")
    if not isinstance(state, str) or state not in STATE_PLACES:
        raise ValueError(f"layer {name}: state must be 'bram' or 'spram', not {state!r}")
    if state == "spram" and ctx.device.wide_ram is None:
        raise ValueError(f"layer {name}: state 'spram' needs a device with SPRAM; the {ctx.device.name} has none "
                         f"(use 'bram')")
    return state


def state_of(plan):
    """Where a sweeping core's membranes live, from its memory ``<layer>.membranes``: ``"bram"`` or ``"spram"``."""
    mem = next(mem for mem in plan.memories if mem.name == f"{plan.name}.membranes")
    return "spram" if mem.kind in SPRAM_KINDS else "bram"
