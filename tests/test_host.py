"""The host tool against hostile input: arguments checked before the port, bounded decoding, a 0 Hz identity."""

import binascii
import os
import time

import numpy as np
import pytest
import scipy.io.wavfile

from boards import host
from boards import protocol as P
from golden.cli import EXIT_BAD_INPUT, EXIT_FAILURE, run_main
from golden.manifest import load
from flow.build import default_model_dir

MODEL = "models/fsdd_scnn"
FALSE_SYNCS = b"\xa5\x5a\x81\xff\xff" * 2_000  # every one announces a 65,535-byte payload


def _wav(path, seconds=0.4):
    t = np.arange(int(8000 * seconds)) / 8000
    x = 0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t)
    scipy.io.wavfile.write(path, 8000, np.round(x * 32767).astype(np.int16))
    return str(path)


class ScriptedSerial:
    """A ``serial.Serial`` stand-in that answers each write with the next scripted reply."""

    opened = []

    def __init__(self, replies):
        self.replies, self.pending = list(replies), b""

    def __call__(self, port, baud, timeout):
        ScriptedSerial.opened.append((port, baud))
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, data):
        self.pending += self.replies.pop(0) if self.replies else b""

    def read(self, n):
        data, self.pending = self.pending[:n], self.pending[n:]
        return data


@pytest.fixture
def serial_port(monkeypatch):
    serial = pytest.importorskip("serial")
    ScriptedSerial.opened = []

    def install(replies):
        monkeypatch.setattr(serial, "Serial", ScriptedSerial(replies))
    return install


def test_the_decoder_crc_is_the_protocol_crc():
    for n in (0, 1, 7, 300):
        data = os.urandom(n)
        assert binascii.crc_hqx(data, 0xFFFF) == P.crc16(data)


def test_a_false_sync_costs_little_and_the_frame_behind_it_is_found():
    frame = P.encode_frame(P.RESULT, P.encode_result(P.Result(1, 5, (1, 2, 3))))
    decoder = P.FrameDecoder()
    started = time.process_time()
    frames = decoder.feed(b"\xa5\x5a\x81\xff\xff" + bytes(65_540) + frame)
    assert time.process_time() - started < 0.05  # was 0.16 s per false sync
    assert [f.type for f in frames] == [P.RESULT]


def test_feed_stops_at_its_deadline_and_resumes():
    frame = P.encode_frame(P.IDENTIFY, b"")
    decoder = P.FrameDecoder()
    started = time.monotonic()
    frames = decoder.feed(FALSE_SYNCS + bytes(70_000) + frame, deadline=started + 0.02)
    assert time.monotonic() - started < 0.5 and decoder.pending > 0
    before = None
    while decoder.pending != before:  # until a call makes no progress (a false sync may wait for more bytes)
        before = decoder.pending
        frames += decoder.feed(b"", deadline=time.monotonic() + 0.5)
    # among 2,000 false syncs a few may pass the 16-bit CRC by chance; the real frame behind them is still found
    assert P.IDENTIFY in [f.type for f in frames] and len(frames) < 10


def test_the_client_timeout_bounds_the_decoder(serial_port):
    class Flood:
        def write(self, data):
            pass

        def read(self, n):
            return FALSE_SYNCS

    client = host.BoardClient(Flood(), timeout=0.2, retries=0, idle=0)
    started = time.monotonic()
    with pytest.raises(host.BoardError, match=r"no reply within 0.2 s \(after 1 attempts\)"):
        client.identify()
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("args,msg", [
    (["--baud", "0"], "argument --baud: 0 is out of range: a bit rate in baud from 300 to 12,000,000"),
    (["--baud", "fast"], "argument --baud: 'fast' is not a bit rate in baud"),
    (["--timeout", "nan"], "argument --timeout: nan is out of range"),
    (["--timeout", "-1"], "argument --timeout: -1 is out of range"),
    (["--port", " "], "--port is empty"),
])
def test_bad_arguments_are_refused_before_the_port_is_opened(serial_port, tmp_path, capsys, args, msg):
    serial_port([])
    argv = ["--port", "/dev/null", *args, _wav(tmp_path / "a.wav")]
    assert run_main(host.main, argv) == EXIT_BAD_INPUT
    assert msg in capsys.readouterr().err and ScriptedSerial.opened == []


def test_a_missing_wav_is_reported_before_the_port_is_opened(serial_port, tmp_path, capsys):
    serial_port([])
    missing = str(tmp_path / "missing.wav")
    assert run_main(host.main, ["--port", "/dev/null", _wav(tmp_path / "a.wav"), missing]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err == (f"error: {missing}: no such file\n"
                   f"error: 1 of 2 WAV file(s) refused; nothing was sent\n")
    assert ScriptedSerial.opened == []


def _identity(clock_hz):
    """The identify reply of a board running the model the host assumes without --model."""
    return P.Identity.for_model(load(default_model_dir()), clock_hz=clock_hz, baud=1_000_000, timeout_us=1000)


def test_a_0_hz_identity_is_refused_and_with_force_prints_no_latency(serial_port, tmp_path, capsys):
    identity = P.encode_frame(P.IDENTIFY_REPLY, P.encode_identify(_identity(0)))
    result = P.encode_frame(P.RESULT, P.encode_result(P.Result(3, 4096, tuple(range(10)))))
    wav = _wav(tmp_path / "a.wav")
    serial_port([identity])
    assert run_main(host.main, ["--port", "/dev/fake", wav]) == EXIT_FAILURE
    assert "error: board reports a clock of 0 Hz: its identify reply is corrupt" in capsys.readouterr().err
    serial_port([identity, result])
    assert run_main(host.main, ["--port", "/dev/fake", "--force", wav]) == 0
    out = capsys.readouterr().out
    assert "a.wav: class 3 (3), 4,096 cycles = latency unknown (0 Hz clock)" in out


def test_a_board_at_12_mhz_reports_its_latency(serial_port, tmp_path, capsys):
    serial_port([P.encode_frame(P.IDENTIFY_REPLY, P.encode_identify(_identity(12_000_000))),
                 P.encode_frame(P.RESULT, P.encode_result(P.Result(3, 12_000, tuple(range(10)))))])
    assert run_main(host.main, ["--port", "/dev/fake", "--baud", "115200", _wav(tmp_path / "a.wav")]) == 0
    assert "12,000 cycles = 1000.0 us at 12 MHz" in capsys.readouterr().out
    assert ScriptedSerial.opened == [("/dev/fake", 115200)]
