"""A memory of the plan and what it costs on a device: the one place that counts block RAMs. Pure Python."""

from dataclasses import dataclass

__all__ = ["Memory", "memory"]


@dataclass(frozen=True)
class Memory:
    """One memory (or register file) of the design: ``width`` bits x ``depth`` words.

    Attributes
    ----------
    name : str
        ``<layer>.<what>``.
    width, depth : int
    kind : str
        ``"rom"`` (initialized), ``"ram"``, ``"spram"`` (the device's large single-port RAM) or ``"registers"``.
    blocks : int
        The device's block RAMs it takes in their best aspect ratio: 0 for registers and SPRAM, and for ROMs small
        enough that synthesis builds them from logic (``Device.small_rom_words``).
    """
    name: str
    width: int
    depth: int
    kind: str = "ram"
    blocks: int = 0

    @property
    def bits(self):
        return self.width * self.depth

    @property
    def ebr(self):
        """:attr:`blocks` (the name of an iCE40 block RAM)."""
        return self.blocks


def memory(device, name, width, depth, kind="ram"):
    """A :class:`Memory` of ``kind`` with its block count on ``device`` (a :class:`hw.device.Device`)."""
    if kind in ("registers", "spram") or (kind == "rom" and depth <= device.small_rom_words):
        blocks = 0
    else:
        blocks = device.block_ram.blocks(width, depth)
    return Memory(name, int(width), int(depth), kind, blocks)
