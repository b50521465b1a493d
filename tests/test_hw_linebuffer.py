# amaranth: UnusedElaboratable=no
"""LineBuffer: every window of a raster scan equals the NumPy slice of the grid."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.linebuffer import LineBuffer


def _scan(channels, kernel, rows, width, seed, gaps):
    rng = np.random.default_rng(seed)
    grid = rng.integers(-128, 128, size=(rows, width, channels))
    kh, kw = kernel
    dut = LineBuffer(channels=channels, kernel=kernel, width=width)
    cells = [(y, x) for y in range(rows) for x in range(width)]
    seen = []

    async def testbench(ctx):
        # Cell n is announced (next_x) at the cycle its predecessor's pixel is presented.
        pending = None
        for cell in cells + [None]:
            while gaps and rng.random() < 0.3:
                ctx.set(dut.next_en, 0)
                ctx.set(dut.en, 0)
                await ctx.tick()
            if cell is not None:
                ctx.set(dut.next_x, cell[1])
                ctx.set(dut.next_en, 1)
            else:
                ctx.set(dut.next_en, 0)
            if pending is not None:
                y, x = pending
                ctx.set(dut.pixel, [int(v) for v in grid[y, x]])
                ctx.set(dut.en, 1)
            else:
                ctx.set(dut.en, 0)
            await ctx.tick()
            if pending is not None:
                y, x = pending
                if y >= kh - 1 and x >= kw - 1:
                    window = ctx.get(dut.window)
                    got = np.array([[[int(window[i][j][c]) for c in range(channels)] for j in range(kw)]
                                    for i in range(kh)])
                    seen.append(((y, x), got))
            pending = cell
            ctx.set(dut.next_en, 0)
        ctx.set(dut.en, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert len(seen) == (rows - kh + 1) * (width - kw + 1)
    for (y, x), got in seen:
        want = grid[y - kh + 1:y + 1, x - kw + 1:x + 1, :]
        assert np.array_equal(got, want), f"window at ({y}, {x})"


@pytest.mark.parametrize("channels,kernel,rows,width,gaps", [
    (1, (3, 3), 6, 9, False),
    (1, (3, 3), 6, 9, True),
    (2, (2, 3), 5, 4, True),
    (3, (1, 2), 3, 5, False),
    (1, (4, 1), 7, 1, True),
    (2, (3, 1), 5, 1, False),
    (1, (1, 1), 2, 3, True),
])
def test_windows(channels, kernel, rows, width, gaps):
    _scan(channels, kernel, rows, width, seed=rows * 31 + width, gaps=gaps)


def test_refuses_narrow_grid():
    with pytest.raises(ValueError, match="line buffer width 2 is smaller than the kernel width 3"):
        LineBuffer(channels=1, kernel=(3, 3), width=2)
