"""cocotb bus-functional models for Amaranth ``stream.Signature`` ports.

Amaranth's Verilog names the members of a stream port ``NAME__payload``, ``NAME__valid`` and ``NAME__ready``; a
:class:`StreamPort` finds the three handles for any prefix. Three endpoints work on such a port:

- :class:`StreamDriver` sends payloads into an input port, with random gaps in ``valid``;
- :class:`StreamSink` accepts payloads from an output port, with random backpressure on ``ready``;
- :class:`StreamMonitor` only watches a port (driven by someone else) and records its transfers.

Gaps and backpressure are pseudo-random functions of the clock cycle number (:class:`Pauses`), not of how many
times an endpoint asked: a run that is repeated with the same seed, or cut short after some samples to record a
waveform, sees exactly the same pauses in the same cycles.

All of them obey, and check, the stream rules of ``amaranth.lib.stream``: a transfer happens at a rising clock edge
where ``valid`` and ``ready`` are both high; once ``valid`` is high it stays high, and the payload stays the same,
until the transfer (``valid`` never waits for ``ready``). The sink and the monitor report a producer that breaks
these rules as a :class:`ProtocolError` entry.

Endpoints do not start coroutines of their own: a :class:`ClockLoop` runs one coroutine per clock that, every cycle,
lets every endpoint drive its signals just after the rising edge and then samples all of them in the read-only
phase, when the values that the next edge will see are settled. One loop with two triggers per cycle, instead of two
triggers per endpoint, makes the Python side of a long simulation several times cheaper.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Callable

__all__ = ["Pauses", "StreamPort", "ClockLoop", "StreamDriver", "StreamSink", "StreamMonitor", "ProtocolError"]


@dataclass(frozen=True)
class ProtocolError:
    """A stream rule that the producer of a port broke.

    Members
    -------
    port : str
        Prefix of the port.
    cycle : int
        Clock cycle (counted by the :class:`ClockLoop`) at which it was seen.
    message : str
        What happened.
    """

    port: str
    cycle: int
    message: str

    def __str__(self):
        return f"port {self.port}, cycle {self.cycle}: {self.message}"


def _level(handle, errors, port: str, cycle: int) -> bool:
    """The value of a 1-bit control signal; an X or Z (possible on four-state simulators) is reported and read
    as 0."""
    value = handle.value
    try:
        return bool(value)
    except ValueError:
        if errors is not None and (not errors or errors[-1].message.split(" ")[0] != handle._name):
            errors.append(ProtocolError(port, cycle, f"{handle._name} is {value} (not 0 or 1)"))
        return False


class Pauses:
    """A reproducible pseudo-random pause pattern: ``pauses(cycle)`` is ``True`` in the cycles to pause.

    The pattern is a table of 65,521 (a prime) decisions drawn once from ``seed``, indexed by the cycle number.

    Parameters
    ----------
    probability : float
        Fraction of cycles paused, in [0, 1).
    seed : int
        Seed of the table.
    """

    _LENGTH = 65521

    def __init__(self, probability: float, seed: int):
        probability = float(probability)
        if not 0.0 <= probability < 1.0:
            raise ValueError(f"pause probability must be in [0, 1), not {probability}")
        self.probability = probability
        rng = random.Random(seed)
        self._table = bytes(rng.random() < probability for _ in range(self._LENGTH)) if probability else b""

    def __bool__(self):
        return self.probability > 0.0

    def __call__(self, cycle: int) -> bool:
        return bool(self._table) and bool(self._table[cycle % self._LENGTH])


class StreamPort:
    """The three signals of one stream port of a cocotb DUT.

    Parameters
    ----------
    dut : cocotb handle
        The top-level module.
    prefix : str
        Name of the port in the component's signature (``"i"``, ``"o"``, ``"events"``).

    Raises
    ------
    AttributeError
        When the DUT has no such port; the message lists the stream ports it has.
    """

    def __init__(self, dut, prefix: str):
        self.prefix = prefix
        try:
            self.payload = getattr(dut, f"{prefix}__payload")
            self.valid = getattr(dut, f"{prefix}__valid")
            self.ready = getattr(dut, f"{prefix}__ready")
        except AttributeError:
            raise AttributeError(
                f"the DUT has no stream port {prefix!r} (signals {prefix}__payload, {prefix}__valid, "
                f"{prefix}__ready)") from None
        self.width = len(self.payload)
        self.mask = (1 << self.width) - 1


class ClockLoop:
    """Runs the endpoints of one clock domain, one coroutine for all of them.

    Every cycle: wait for the rising edge, call ``drive(cycle)`` of every endpoint (they write their outputs for the new
    cycle), wait for the read-only phase, call ``sample(cycle)`` of every endpoint (they read the settled values and
    record the transfers that the next rising edge performs).

    Idle cycles are skipped: after sampling, every endpoint says through ``waits()`` whether it needs the next
    cycle (``None``) or only the next rising edge of some of the DUT's signals (a list of handles: a sink whose
    ``valid`` is low, a driver holding a payload while ``ready`` is low, a driver with nothing to send). When no
    endpoint needs the next cycle, the loop sleeps until one of those signals rises, which the simulator finds
    without running Python every cycle. The DUT's outputs change only at clock edges, so the loop wakes in the
    time step of the edge that raised the signal; in that cycle the endpoints keep the levels they held while
    idle and only sample, and from the next edge on the loop goes on cycle by cycle. Skipping changes no transfer;
    it can shift a random pause by a cycle (the levels held in a woken cycle are not re-drawn).

    Parameters
    ----------
    clk : cocotb handle
        The clock signal (started elsewhere, e.g. by ``cocotb.clock.Clock``).
    period_ns : float
        Clock period; cycles are counted from the simulation time.
    skip_idle : bool
        Sleep through idle cycles (``False`` samples every cycle; slower, same transfers).

    Members
    -------
    cycle : int
        The current clock cycle, counted from time zero.
    """

    def __init__(self, clk, *, period_ns: float = 10.0, skip_idle: bool = True):
        self.clk = clk
        self.period_ns = float(period_ns)
        self.skip_idle = skip_idle
        self.cycle = 0
        self.wakeups = 0
        self._endpoints = []
        self._hooks = []
        self._task = None
        self._running = False

    def add(self, endpoint):
        """Attach an endpoint (``drive(cycle)``, ``sample(cycle)``, ``waits()``) and return it."""
        self._endpoints.append(endpoint)
        return endpoint

    def on_cycle(self, hook: Callable[[int], None]):
        """Call ``hook(cycle)`` after the endpoints sampled, in every cycle that the loop does not skip."""
        self._hooks.append(hook)

    def start(self):
        """Start the loop coroutine (``cocotb.start_soon``)."""
        import cocotb
        self._running = True
        self._task = cocotb.start_soon(self._run())
        return self._task

    def stop(self):
        """Stop after the current cycle."""
        self._running = False

    def now(self) -> int:
        """The current clock cycle from the simulation time."""
        from cocotb.utils import get_sim_time
        return int(get_sim_time("ns") // self.period_ns)

    async def _run(self):
        from cocotb.triggers import First, ReadOnly, RisingEdge
        edge = RisingEdge(self.clk)
        readonly = ReadOnly()
        endpoints = self._endpoints
        hooks = self._hooks
        rising = {}
        wait = None
        while self._running:
            if wait is None:
                await edge
                self.cycle = cycle = self.now()
                for endpoint in endpoints:
                    endpoint.drive(cycle)
            else:
                # Woken from inside the evaluation of an edge by a DUT output: in this cycle the endpoints keep
                # the levels they held while idle (no writes from inside the DUT's evaluation) and only sample.
                self.wakeups += 1
                await First(*wait)
                self.cycle = cycle = self.now()
            await readonly
            for endpoint in endpoints:
                endpoint.sample(cycle)
            for hook in hooks:
                hook(cycle)
            wait = None
            if self.skip_idle:
                handles = []
                for endpoint in endpoints:
                    signals = endpoint.waits()
                    if signals is None:
                        handles = None
                        break
                    handles.extend(signals)
                if handles:
                    wait = []
                    for handle in handles:
                        trigger = rising.get(id(handle))
                        if trigger is None:
                            trigger = rising[id(handle)] = RisingEdge(handle)
                        wait.append(trigger)


class StreamDriver:
    """Sends payloads into an input stream port, with random gaps in ``valid``.

    Parameters
    ----------
    port : StreamPort
        The DUT's input port.
    gap : float
        Probability that ``valid`` stays low in a cycle where a payload is waiting (0 sends back to back).
    seed : int
        Seed of the gap pattern (:class:`Pauses`).
    on_transfer : callable, optional
        ``on_transfer(payload, cycle)`` after each transfer.

    Members
    -------
    sent : int
        Number of transfers so far.
    errors : list of ProtocolError
        An X or Z seen on ``ready``.
    """

    def __init__(self, port: StreamPort, *, gap: float = 0.0, seed: int = 0,
                 on_transfer: Callable[[int, int], None] | None = None):
        self.port = port
        self.gap = Pauses(gap, seed)
        self.on_transfer = on_transfer
        self.queue: deque[int] = deque()
        self.sent = 0
        self._current = None
        self._valid = False
        self._ready_seen = False
        self.errors: list[ProtocolError] = []
        port.valid.value = 0
        port.payload.value = 0  # defined while idle: a four-state simulator would otherwise start with X

    def send(self, payloads):
        """Queue payloads (ints; negative values are sent in two's complement of the port's width)."""
        mask = self.port.mask
        self.queue.extend(int(p) & mask for p in payloads)

    @property
    def idle(self) -> bool:
        """Whether every queued payload has been transferred."""
        return not self.queue and self._current is None

    def drive(self, cycle: int):
        if self._current is not None:
            return  # hold valid and payload until the transfer
        if self.queue and not self.gap(cycle):
            self._current = self.queue.popleft()
            self.port.payload.value = self._current
            if not self._valid:
                self.port.valid.value = 1
                self._valid = True
        elif self._valid:
            self.port.valid.value = 0
            self._valid = False

    def waits(self):
        if self._current is None:
            # Idle only once valid is low again (dropping it takes one more cycle after the last transfer).
            return [] if not self.queue and not self._valid else None
        return None if self._ready_seen else [self.port.ready]

    def sample(self, cycle: int):
        self._ready_seen = _level(self.port.ready, self.errors, self.port.prefix, cycle)
        if self._current is not None and self._ready_seen:
            payload = self._current
            self._current = None
            self.sent += 1
            if self.on_transfer is not None:
                self.on_transfer(payload, cycle)


class _Observer:
    """Shared part of the sink and the monitor: record transfers and check the producer's rules."""

    def __init__(self, port: StreamPort, on_transfer, describe=None):
        self.port = port
        self.on_transfer = on_transfer
        self.describe = describe or (lambda bits: f"{bits:#x}")
        self.received = 0
        self.errors: list[ProtocolError] = []
        self._pending = None  # payload offered (valid, not taken) at the last sample
        self._valid_seen = False

    def _observe(self, cycle: int, ready: bool):
        port = self.port
        self._valid_seen = valid = _level(port.valid, self.errors, port.prefix, cycle)
        if not valid:
            if self._pending is not None:
                self.errors.append(ProtocolError(port.prefix, cycle, "valid fell before the transfer"))
                self._pending = None
            return
        value = port.payload.value
        try:
            payload = value.to_unsigned()
        except ValueError:  # X or Z bits (four-state simulators): report, read them as 0
            self.errors.append(ProtocolError(port.prefix, cycle, f"{port.payload._name} is {value} while valid "
                                                                 f"(not 0 or 1)"))
            payload = int(str(value).lower().replace("x", "0").replace("z", "0"), 2)
        if self._pending is not None and payload != self._pending:
            self.errors.append(ProtocolError(
                port.prefix, cycle, f"payload changed from {self.describe(self._pending)} to "
                                    f"{self.describe(payload)} before the transfer"))
        if ready:
            self._pending = None
            self.received += 1
            if self.on_transfer is not None:
                self.on_transfer(payload, cycle)
        else:
            self._pending = payload


class StreamSink(_Observer):
    """Accepts payloads from an output stream port, with random backpressure on ``ready``.

    Parameters
    ----------
    port : StreamPort
        The DUT's output port.
    stall : float
        Probability that ``ready`` is low in a cycle (0 is always ready).
    seed : int
        Seed of the stall pattern (:class:`Pauses`).
    on_transfer : callable, optional
        ``on_transfer(payload, cycle)`` for each transfer (payload as an unsigned int of the port's width).
    describe : callable, optional
        ``describe(payload) -> str`` for messages (default: hexadecimal).

    Members
    -------
    received : int
        Number of transfers so far.
    errors : list of ProtocolError
        Rules the DUT broke on this port.
    """

    def __init__(self, port: StreamPort, *, stall: float = 0.0, seed: int = 0,
                 on_transfer: Callable[[int, int], None] | None = None, describe=None):
        super().__init__(port, on_transfer, describe)
        self.stall = Pauses(stall, seed)
        self._ready = not self.stall
        port.ready.value = int(self._ready)

    def drive(self, cycle: int):
        if not self.stall:
            return
        ready = not self.stall(cycle)
        if ready != self._ready:
            self.port.ready.value = int(ready)
            self._ready = ready

    def sample(self, cycle: int):
        self._observe(cycle, self._ready)

    def waits(self):
        return [self.port.valid] if not self._valid_seen else None


class StreamMonitor(_Observer):
    """Records the transfers of a stream port that other code drives (it writes nothing).

    Parameters
    ----------
    port : StreamPort
        The port to watch.
    on_transfer : callable, optional
        ``on_transfer(payload, cycle)`` for each transfer.
    """

    def __init__(self, port: StreamPort, *, on_transfer: Callable[[int, int], None] | None = None,
                 describe=None):
        super().__init__(port, on_transfer, describe)

    def drive(self, cycle: int):
        pass

    def sample(self, cycle: int):
        self._ready_seen = _level(self.port.ready, self.errors, self.port.prefix, cycle)
        self._observe(cycle, self._ready_seen)

    def waits(self):
        if not self._valid_seen:
            return [self.port.valid]
        return None if self._ready_seen else [self.port.ready]
