"""Line buffer and ``Kh x Kw`` window over a raster scan of multi-channel pixels.

A raster scan visits the cells of a grid row by row, ``width`` cells per row. :class:`LineBuffer` keeps the last
``Kh - 1`` rows in one line memory (``width`` words of ``(Kh - 1) * channels`` bytes: each word holds one column of
the last ``Kh - 1`` rows, so one block RAM read and one write per cell serve all rows) and a ``Kh x Kw`` window of
registers. After the cell at ``(y, x)`` has been presented, ``window[i][j]`` holds the cell at
``(y - Kh + 1 + i, x - Kw + 1 + j)``: row 0 is the top of the window, column 0 its left edge. The window is
meaningful once ``y >= Kh - 1`` and ``x >= Kw - 1``; the owner decides which positions are outputs (stride) and
injects the zeros of the padding as ordinary cells, so the line buffer itself knows neither.

The line memory has a synchronous read port, so a cell is presented in two halves one cycle apart:

- cycle ``n``: ``next_en`` = 1 and ``next_x`` = the column of the cell that will arrive at cycle ``n + 1``
  (the line memory is read);
- cycle ``n + 1``: ``en`` = 1 and ``pixel`` = its value (the column is shifted into the window, and the new column
  written back into the line memory); ``window`` shows the result from cycle ``n + 2``.

Both halves may be pipelined (one cell per cycle) and may pause for any number of cycles between cells. The reads
are transparent to the writes, so a grid one column wide works as well.
"""

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.checks import check_int

__all__ = ["LineBuffer", "window_layout"]


def window_layout(channels, kernel):
    """Layout of a window: ``window[i][j][c]``, signed 8-bit, ``kernel = (Kh, Kw)``."""
    kh, kw = kernel
    return data.ArrayLayout(data.ArrayLayout(data.ArrayLayout(signed(8), channels), kw), kh)


class LineBuffer(wiring.Component):
    """Raster line buffer with a ``Kh x Kw`` window of ``channels``-byte pixels.

    Parameters
    ----------
    channels : int
        Bytes per pixel (input channels of the convolution).
    kernel : (int, int)
        Window height and width ``(Kh, Kw)``.
    width : int
        Cells per row of the scanned grid (at least ``Kw``).

    Members
    -------
    next_x : In(unsigned)
        Column of the cell presented at the next cycle.
    next_en : In(1)
        ``next_x`` is meaningful (read the line memory).
    pixel : In(ArrayLayout(signed(8), channels))
        Value of the cell announced at the previous ``next_en``.
    en : In(1)
        ``pixel`` is meaningful (shift it in).
    window : Out(window_layout(channels, kernel))
        The window ending at the last cell shifted in.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is not positive or ``width < Kw``.
    """

    def __init__(self, *, channels, kernel, width):
        self._channels = check_int("line buffer channels", channels, 1)
        kh, kw = kernel
        self._kernel = (check_int("line buffer kernel height", kh, 1), check_int("line buffer kernel width", kw, 1))
        self._width = check_int("line buffer width", width, 1)
        if width < kw:
            raise ValueError(f"line buffer width {width} is smaller than the kernel width {kw}")
        super().__init__({
            "next_x": In(unsigned(max(1, (width - 1).bit_length()))),
            "next_en": In(1),
            "pixel": In(data.ArrayLayout(signed(8), channels)),
            "en": In(1),
            "window": Out(window_layout(channels, self._kernel)),
        })

    @property
    def line_bits(self):
        """Bits of the line memory."""
        return (self._kernel[0] - 1) * self._width * self._channels * 8

    def elaborate(self, platform):
        m = Module()
        kh, kw = self._kernel

        # -- line memory: one word per column, slot k holds row y - 1 - k ------------------------------------------
        x_q = Signal.like(self.next_x)
        with m.If(self.next_en):
            m.d.sync += x_q.eq(self.next_x)

        pixel_bits = 8 * self._channels
        column = [None] * kh            # column[i]: the cell of window row i in the incoming column
        column[kh - 1] = self.pixel.as_value()
        if kh > 1:
            lines = Memory(shape=unsigned(pixel_bits * (kh - 1)), depth=self._width, init=[])
            m.submodules.lines = lines
            wr = lines.write_port()
            rd = lines.read_port(transparent_for=(wr,))
            slots = [rd.data[k * pixel_bits:(k + 1) * pixel_bits] for k in range(kh - 1)]
            m.d.comb += [
                rd.addr.eq(self.next_x),
                rd.en.eq(self.next_en),
                wr.addr.eq(x_q),
                wr.en.eq(self.en),
                # The new pixel goes into slot 0, every other row moves one slot down.
                wr.data.eq(Cat(self.pixel.as_value(), *slots[:-1])),
            ]
            for k in range(kh - 1):
                column[kh - 2 - k] = slots[k]

        # -- window registers, shifting left --------------------------------------------------------------------
        with m.If(self.en):
            for i in range(kh):
                for j in range(kw - 1):
                    m.d.sync += self.window[i][j].eq(self.window[i][j + 1])
                m.d.sync += self.window[i][kw - 1].eq(column[i])
        return m
