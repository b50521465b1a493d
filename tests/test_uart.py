"""Tests of boards.uart: divisor computation, bit-level TX waveform, RX sampling, framing errors, loopback."""

import random

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.sim import Simulator

from boards.uart import UARTReceiver, UARTTransmitter, uart_divisor


def _run(dut, *testbenches, background=(), deadline=None):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in background:
        sim.add_testbench(bench, background=True)
    for bench in testbenches:
        sim.add_testbench(bench)
    sim.run()


# -- divisor -------------------------------------------------------------------------------------------------------

def test_divisor_exact_and_rounded():
    assert uart_divisor(24_000_000, 1_000_000) == 24
    assert uart_divisor(12_000_000, 115_200) == 104  # 0.16% off


def test_divisor_refuses_too_few_cycles():
    with pytest.raises(ValueError, match=r"at least 4 clock cycles per bit; a 12 MHz clock gives 3\.00"):
        uart_divisor(12_000_000, 4_000_000)


def test_divisor_refuses_large_rate_error():
    with pytest.raises(ValueError, match=r"divisor 5 gives 2,400,000 baud, 4\.3% off"):
        uart_divisor(12_000_000, 2_300_000)


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_divisor_refuses_bad_baud(bad):
    with pytest.raises(ValueError, match="baud rate must be a positive integer"):
        uart_divisor(12e6, bad)


@pytest.mark.parametrize("cls", [UARTReceiver, UARTTransmitter])
def test_component_refuses_small_divisor(cls):
    with pytest.raises(ValueError, match="UART divisor must be an integer of at least 4, not 3"):
        cls(divisor=3)


# -- transmitter -----------------------------------------------------------------------------------------------------

def test_tx_waveform():
    div = 7
    dut = UARTTransmitter(divisor=div)
    sent = [0x00, 0xFF, 0xA5, 0x3C]
    seen = []

    async def producer(ctx):
        for value in sent:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, value)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def line(ctx):
        assert ctx.get(dut.tx) == 1
        for _ in sent:
            while ctx.get(dut.tx) == 1:
                await ctx.tick()
            # now in the first cycle of the start bit: sample every bit in its middle
            await ctx.tick().repeat(div // 2)
            bits = [ctx.get(dut.tx)]
            for _ in range(9):
                await ctx.tick().repeat(div)
                bits.append(ctx.get(dut.tx))
            assert bits[0] == 0 and bits[9] == 1, bits
            seen.append(sum(b << n for n, b in enumerate(bits[1:9])))

    _run(dut, line, background=[producer])
    assert seen == sent


# -- receiver --------------------------------------------------------------------------------------------------------

async def _drive(ctx, rx, div, value, stop=1, jitter=0):
    bits = [0] + [(value >> n) & 1 for n in range(8)] + [stop]
    for bit in bits:
        ctx.set(rx, bit)
        await ctx.tick().repeat(div + jitter)
    ctx.set(rx, 1)


def _receiver_bench(dut, div, frames, expect, errors_expected, idle=3, jitter=0):
    got = []
    errors = []

    async def monitor(ctx):
        ctx.set(dut.o.ready, 1)
        async for clk_edge, rst, valid, payload, frame_error in ctx.tick().sample(
                dut.o.valid, dut.o.payload, dut.frame_error):
            if valid:
                got.append(payload)
            if frame_error:
                errors.append(1)

    async def driver(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(5)
        for value, stop in frames:
            await _drive(ctx, dut.rx, div, value, stop, jitter)
            await ctx.tick().repeat(idle)
        await ctx.tick().repeat(3 * div)

    _run(dut, driver, background=[monitor])
    assert got == expect
    assert len(errors) == errors_expected


def test_rx_bytes():
    div = 8
    values = [0x55, 0x00, 0xFF, 0x81, 0x7E]
    _receiver_bench(UARTReceiver(divisor=div), div, [(v, 1) for v in values], values, 0)


def test_rx_tolerates_rate_error():
    # the sender's bits are 1 cycle (3%) longer than the receiver expects: sampled in the middle, the stop bit is
    # still hit after 9.5 bits
    div = 32
    values = [0xA5, 0x5A, 0x13]
    _receiver_bench(UARTReceiver(divisor=div), div, [(v, 1) for v in values], values, 0, jitter=1)


def test_rx_framing_error_drops_byte_and_recovers():
    div = 8
    frames = [(0x12, 1), (0x34, 0), (0x56, 1)]
    _receiver_bench(UARTReceiver(divisor=div), div, frames, [0x12, 0x56], 1, idle=div)


def test_rx_ignores_short_glitch():
    div = 8
    dut = UARTReceiver(divisor=div)
    got = []

    async def monitor(ctx):
        ctx.set(dut.o.ready, 1)
        async for _, _, valid, payload in ctx.tick().sample(dut.o.valid, dut.o.payload):
            if valid:
                got.append(payload)

    async def driver(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(4)
        ctx.set(dut.rx, 0)
        await ctx.tick().repeat(2)  # shorter than half a bit
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3 * div)
        await _drive(ctx, dut.rx, div, 0x99)
        await ctx.tick().repeat(2 * div)

    _run(dut, driver, background=[monitor])
    assert got == [0x99]


def test_rx_overrun_keeps_first_byte():
    div = 6
    dut = UARTReceiver(divisor=div)
    overruns = []

    async def monitor(ctx):
        async for _, _, overrun in ctx.tick().sample(dut.overrun):
            if overrun:
                overruns.append(1)

    async def driver(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3)
        await _drive(ctx, dut.rx, div, 0x11)
        await ctx.tick().repeat(2)
        await _drive(ctx, dut.rx, div, 0x22)
        await ctx.tick().repeat(2 * div)
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 0x11

    _run(dut, driver, background=[monitor])
    assert overruns == [1]


# -- loopback --------------------------------------------------------------------------------------------------------

class _Loopback(Elaboratable):
    def __init__(self, div):
        self.tx = UARTTransmitter(divisor=div)
        self.rx = UARTReceiver(divisor=div)

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx = self.tx
        m.submodules.rx = self.rx
        m.d.comb += self.rx.rx.eq(self.tx.tx)
        return m


def test_loopback_random_bytes():
    rng = random.Random(6)
    values = [rng.randrange(256) for _ in range(40)]
    dut = _Loopback(5)
    got = []

    async def producer(ctx):
        for value in values:
            ctx.set(dut.tx.i.valid, 1)
            ctx.set(dut.tx.i.payload, value)
            await ctx.tick().until(dut.tx.i.ready)
            ctx.set(dut.tx.i.valid, 0)
            await ctx.tick().repeat(1 + rng.randrange(3))

    async def consumer(ctx):
        ctx.set(dut.rx.o.ready, 1)
        while len(got) < len(values):
            await ctx.tick().until(dut.rx.o.valid)
            got.append(ctx.get(dut.rx.o.payload))
            await ctx.tick()

    _run(dut, consumer, background=[producer])
    assert got == values
