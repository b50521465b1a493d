"""The plan of a step buffer (:class:`hw.stepbuffer.StepBuffer`): the link in front of every buffered kind.

A buffered kind (dense, readout) reads its input a whole time step at a time from a step buffer that holds the
spikes of a sample as words of ``row`` neurons. :func:`buffer_plan` chooses the word (whole rows of the producer's
map when the producer emits rows in any order, else :data:`WORD` neurons, or fewer where that lets a list fit) and
the slot layout (a list of the words with spikes, or a bitmap with a flag per word, whichever costs fewer block RAMs
on the device), and lists the buffer's memories. Pure Python.
"""

import dataclasses
from dataclasses import dataclass

from golden.checks import MAX_TIME_STEPS, check_int

from .memory import memory

__all__ = ["StepBufferPlan", "buffer_plan", "buffer_row", "step_buffer", "logic", "count_bits", "WORD", "MIN_ROW",
           "MAX_ROW"]

#: Neurons per word of a step buffer behind a producer of ascending indices.
WORD = 16
#: Narrowest word :func:`step_buffer` halves a list's word to, to keep it within the block RAMs of a bitmap.
MIN_ROW = 4
#: Widest word of a step buffer: a producer that emits whole rows in any order (an OR-pool with ``Kh > 1``) needs
#: one pooled row per word, so its rows may be at most this wide.
MAX_ROW = 256


def count_bits(n):
    """Bits of a number in ``0 ... n - 1`` (one at least)."""
    return max(1, (n - 1).bit_length())


@dataclass(frozen=True)
class StepBufferPlan:
    """The layout of one step buffer.

    Attributes
    ----------
    name : str
        ``<consumer>.buffer``.
    neurons : int
        Neurons per step (the flat index range).
    row : int
        Neurons per word.
    time_steps : int
        Slots, one per step.
    rows : int
        Words per step, ``ceil(neurons / row)``.
    row_bits : int
        Bits of a row number (0 for a single word).
    lo_bits : int
        Bits of the row number kept beside a listed word (all but the top one).
    listed : bool
        A slot is a list of the words with spikes (else a bitmap with a flag register per word).
    coordinates : bool
        The producer gives each event's row and place in the row beside it (an OR-pool, whose rows fill the words
        whole): the buffer forms the word and the place in it from these instead of dividing the index.
    in_width : int
        With ``coordinates``, the producer's row width; a word holds ``row // in_width`` of its rows (one: the
        producer's rows are the words).
    """
    name: str
    neurons: int
    row: int
    time_steps: int
    rows: int
    row_bits: int
    lo_bits: int
    listed: bool
    coordinates: bool = False
    in_width: int = 0

    @property
    def rows_per_word(self):
        """With ``coordinates``, the producer's rows a word holds."""
        return self.row // self.in_width if self.coordinates else 0

    @property
    def in_rows(self):
        """With ``coordinates``, the producer's rows per step."""
        return -(-self.neurons // self.in_width) if self.coordinates else 0

    @property
    def index_bits(self):
        """Bits of a spike event's index."""
        return count_bits(self.neurons)

    @property
    def word_bits(self):
        """Bits of a block-RAM word: ``row``, and in a list the row number but its top bit."""
        return self.row + (self.lo_bits if self.listed else 0)

    @property
    def depth(self):
        """Block-RAM words: ``time_steps * rows``."""
        return self.time_steps * self.rows

    @property
    def bits(self):
        return self.depth * self.word_bits

    @property
    def register_bits(self):
        """Bits of the per-slot registers: the word counts and flag of a list, or the word flags of a bitmap."""
        if not self.listed:
            return self.time_steps * self.rows
        lower = count_bits((1 << self.lo_bits) + 1) if self.row_bits else 0
        return self.time_steps * (count_bits(self.rows + 1) + 1 + lower)


def logic(plan):
    """Logic cells (coarse, before calibration) of the step buffer in front of the layer plan ``plan`` (a kind
    with ``buffered``): its registers (word flags or list counts) need logic per bit; its control (the word being
    filled and its bit set, the word and place arithmetic, the slot and list counters and the reader) is fitted to
    the eight step buffers of ``fsdd_scnn``, ``fsdd_robust`` and ``fsdd_deep2`` in ``python -m hw.area --board
    icebreaker`` (117 to 242 LUT4s besides the registers; the fit within 30)."""
    return plan.buffer.register_bits + 80 + 13 * plan.buffer.row // 2


def buffer_row(consumer, producer, producer_kind, shape):
    """Neurons per word of the step buffer that takes the spikes of ``producer`` (a layer plan) of ``shape``.

    A producer that emits whole rows in any order (``Kind.emits_rows``) needs whole rows per word: the most rows
    that fit :data:`WORD` bits (at least one). Any other producer (or none: a layer planned alone) emits ascending
    indices: :data:`WORD` neurons a word.

    Raises
    ------
    ValueError
        If such a row is wider than :data:`MAX_ROW`.
    """
    n = 1
    for dim in shape:
        n *= int(dim)
    if producer_kind is not None and producer_kind.emits_rows:
        width = int(shape[-1])
        if width > MAX_ROW:
            raise ValueError(f"layer {consumer}: the rows of {width} neurons that layer {producer.name} emits exceed "
                             f"the step buffer's words of at most {MAX_ROW} neurons; pool to narrower rows (a larger "
                             f"Kw) or pool along the rows only (Kh = 1)")
        return min(width * max(1, WORD // width), max(width, (n // width) * width))
    return min(WORD, n)


def buffer_plan(name, context, *, listed=None):
    """The :class:`StepBufferPlan` in front of the layer called ``name``, and its memories.

    Parameters
    ----------
    name : str
        The consumer's layer name.
    context : hw.plan.Context
    listed : bool, optional
        Force the slot layout; by default the consumer's option ``buffer`` (``"list"`` or ``"bitmap"``), else a
        list where a step has more than two words and the list needs no more block RAM than a bitmap.

    Returns
    -------
    (StepBufferPlan, tuple of hw.plan.Memory)
    """
    neurons = 1
    for dim in context.in_shape:
        neurons *= int(dim)
    if listed is None:
        listed = buffer_option(name, context.options.get("buffer"))
    row = buffer_row(name, context.producer, context.producer_kind, context.in_shape)
    rows_free = context.producer_kind is None or not context.producer_kind.emits_rows
    buf, mems = step_buffer(f"{name}.buffer", neurons, row, context.time_steps, context.device, listed=listed,
                            narrow=rows_free)
    if not rows_free and buf.row % int(context.in_shape[-1]) == 0:
        buf = dataclasses.replace(buf, coordinates=True, in_width=int(context.in_shape[-1]))
    return buf, mems


#: Values of a buffered layer's option ``buffer``: the slot layout of the step buffer in front of it.
BUFFER_LAYOUTS = {"list": True, "bitmap": False}


def buffer_option(name, value):
    """``listed`` for the option ``buffer`` of layer ``name``: ``True`` for ``"list"``, ``False`` for ``"bitmap"``,
    ``None`` (the plan's choice) when absent. A list keeps a count per slot where a bitmap keeps a flag per word
    and slot: in front of a wide layer the bitmap's flags and their scan take far more logic (2,443 LUT4 for the
    128 words x 4 steps of a 16-channel pool's rows) for one block RAM less."""
    if value is None:
        return None
    if value not in BUFFER_LAYOUTS:
        raise ValueError(f"layer {name}: buffer must be 'list' or 'bitmap', not {value!r}")
    return BUFFER_LAYOUTS[value]


def _layout(neurons, row):
    rows = -(-neurons // row)
    row_bits = (rows - 1).bit_length()
    return rows, row_bits, max(row_bits - 1, 0)


def step_buffer(name, neurons, row, time_steps, device, *, listed=None, narrow=False):
    """A :class:`StepBufferPlan` of ``neurons`` per step in words of ``row``, and its memories (see
    :func:`buffer_plan`; also used directly by the step buffer's own tests).

    With ``listed`` left open, a slot is a list where a step has more than two words and the list takes no more
    block RAMs than a bitmap. Where the row number makes the list's words too wide for that (16 neurons and 2 row
    bits: two 256 x 16 blocks where the bitmap takes one) and ``narrow`` allows words of fewer neurons (a producer of
    ascending indices), the word is halved until the list fits the bitmap's blocks: a list costs far less logic
    than a bitmap's flag per word and slot (``models/fsdd_deep2``'s 128-neuron buffer, 4 steps: 163 LUT4 in words
    of 8 against 292 for the bitmap of 16, one block RAM either way), at a fetch cycle per word with spikes."""
    neurons = check_int(f"{name}: neurons", neurons, 1)
    row = check_int(f"{name}: row", row, 1, MAX_ROW)
    time_steps = check_int(f"{name}: time_steps", time_steps, 1, MAX_TIME_STEPS)
    rows, row_bits, lo_bits = _layout(neurons, row)
    ram = device.block_ram
    if listed is None:
        bitmap_blocks = ram.blocks(row, time_steps * rows)
        listed = rows > 2 and ram.blocks(row + lo_bits, time_steps * rows) <= bitmap_blocks
        narrower = row
        while rows > 2 and not listed and narrow and narrower % 2 == 0 and narrower > MIN_ROW:
            narrower //= 2
            n_rows, n_row_bits, n_lo_bits = _layout(neurons, narrower)
            if ram.blocks(narrower + n_lo_bits, time_steps * n_rows) <= bitmap_blocks:
                row, rows, row_bits, lo_bits, listed = narrower, n_rows, n_row_bits, n_lo_bits, True
    depth = time_steps * rows
    buf = StepBufferPlan(name, neurons, row, time_steps, rows, row_bits, lo_bits, bool(listed))
    mems = (memory(device, name, buf.word_bits, depth),
            memory(device, f"{name}_registers", buf.register_bits // time_steps, time_steps, "registers"))
    return buf, mems
