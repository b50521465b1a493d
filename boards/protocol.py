"""The host protocol over the UART: frame format, message payloads, host-side encoder and decoder.

The format is specified in ``docs/protocol.md``; this module is its executable form, used by the host tool
(:mod:`boards.host`), by the testbenches, and by the gateware engine (:mod:`boards.engine`) for its constants.

A frame is ``A5 5A | type | length (u16 LE) | payload | CRC-16 (u16 LE)``. The CRC is CRC-16/CCITT-FALSE (polynomial
0x1021, initial value 0xFFFF, no reflection, no final XOR) over ``type``, ``length`` and ``payload``. All multi-byte
integers are little-endian.
"""

import binascii
import dataclasses
import importlib.metadata
import struct
import time

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from hw.layouts import pack, unpack

__all__ = [
    "SYNC", "PROTOCOL_VERSION", "HEADER_BYTES", "OVERHEAD_BYTES", "MAX_PAYLOAD",
    "IDENTIFY", "INFER", "LOAD", "IDENTIFY_REPLY", "RESULT", "LOADED", "ERROR", "MESSAGE_NAMES",
    "BAD_CRC", "BAD_LENGTH", "UNKNOWN_TYPE", "TIMEOUT", "OVERRUN", "NOT_LOADED", "BAD_SEQUENCE", "BAD_IMAGE",
    "ERROR_NAMES", "LOAD_CHUNK", "LOAD_PAYLOAD", "LoadReply", "image_chunks", "encode_load", "decode_loaded",
    "encode_loaded",
    "ProtocolError", "crc16", "crc16_update", "encode_frame", "decode_frame", "Frame", "FrameDecoder",
    "Identity", "Result", "ErrorReply", "gateware_version",
    "encode_identify", "decode_identify", "encode_infer", "encode_result", "decode_result",
    "encode_error", "decode_error", "decode_reply", "IDENTITY_LAYOUT", "ERROR_LAYOUT", "result_reply_layout",
]

SYNC = b"\xa5\x5a"
PROTOCOL_VERSION = 1
HEADER_BYTES = 5          # sync (2), type (1), length (2)
OVERHEAD_BYTES = 7        # header and CRC
MAX_PAYLOAD = 0xFFFF

# -- message types: requests from the host, replies have the top bit set ---------------------------------------------
IDENTIFY = 0x01
INFER = 0x02
LOAD = 0x03
IDENTIFY_REPLY = 0x81
RESULT = 0x82
LOADED = 0x83
ERROR = 0xEE
MESSAGE_NAMES = {IDENTIFY: "identify", INFER: "infer", LOAD: "load", IDENTIFY_REPLY: "identify reply",
                 RESULT: "result", LOADED: "load reply", ERROR: "error"}

#: Bytes of weight image in one load frame (the last chunk is padded with zeros).
LOAD_CHUNK = 1024
#: Payload of a load frame: the chunk's index (u16) and the chunk.
LOAD_PAYLOAD = 2 + LOAD_CHUNK

# -- error codes -------------------------------------------------------------------------------------------------------
BAD_CRC = 1
BAD_LENGTH = 2
UNKNOWN_TYPE = 3
TIMEOUT = 4
OVERRUN = 5
NOT_LOADED = 6
BAD_SEQUENCE = 7
BAD_IMAGE = 8
ERROR_NAMES = {BAD_CRC: "bad CRC", BAD_LENGTH: "wrong length", UNKNOWN_TYPE: "unknown type",
               TIMEOUT: "timeout inside a frame", OVERRUN: "receive overrun",
               NOT_LOADED: "no weight image loaded", BAD_SEQUENCE: "load chunk out of sequence",
               BAD_IMAGE: "weight image does not match the bitstream (its CRC differs)"}


class ProtocolError(ValueError):
    """A byte string is not a valid frame or message (the text says which field and why)."""


def crc16_update(crc, byte):
    """One byte of CRC-16/CCITT-FALSE (polynomial 0x1021, MSB first).

    Parameters
    ----------
    crc : int
        The 16-bit CRC so far (0xFFFF initially).
    byte : int
        The next byte, 0 ... 255.

    Returns
    -------
    int
    """
    crc ^= (byte & 0xFF) << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        crc &= 0xFFFF
    return crc


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE of ``data`` (``crc16(b"123456789") == 0x29B1``)."""
    for byte in data:
        crc = crc16_update(crc, byte)
    return crc


def encode_frame(msg_type, payload=b""):
    """Encode one frame.

    Parameters
    ----------
    msg_type : int
        Message type, 0 ... 255.
    payload : bytes
        At most 65,535 bytes.

    Returns
    -------
    bytes

    Raises
    ------
    ProtocolError
        If the type or the payload length is out of range.
    """
    if not isinstance(msg_type, int) or not 0 <= msg_type <= 0xFF:
        raise ProtocolError(f"message type must be 0 ... 255, not {msg_type!r}")
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload):,} bytes exceeds the {MAX_PAYLOAD:,} bytes a frame holds")
    body = struct.pack("<BH", msg_type, len(payload)) + payload
    return SYNC + body + struct.pack("<H", crc16(body))


@dataclasses.dataclass(frozen=True)
class Frame:
    """A decoded frame: its type and payload."""

    type: int
    payload: bytes

    @property
    def name(self):
        return MESSAGE_NAMES.get(self.type, f"type 0x{self.type:02x}")


def decode_frame(data):
    """Decode exactly one frame.

    Parameters
    ----------
    data : bytes

    Returns
    -------
    Frame

    Raises
    ------
    ProtocolError
        On a missing sync, a length that does not match the bytes given, or a CRC mismatch.
    """
    data = bytes(data)
    if len(data) < OVERHEAD_BYTES:
        raise ProtocolError(f"a frame has at least {OVERHEAD_BYTES} bytes, got {len(data)}")
    if data[:2] != SYNC:
        raise ProtocolError(f"frame starts with {data[:2].hex()}, not the sync {SYNC.hex()}")
    msg_type, length = struct.unpack_from("<BH", data, 2)
    if len(data) != OVERHEAD_BYTES + length:
        raise ProtocolError(f"frame length field says {length:,} payload bytes, the frame has "
                            f"{len(data) - OVERHEAD_BYTES:,}")
    (crc,) = struct.unpack_from("<H", data, HEADER_BYTES + length)
    expected = crc16(data[2:HEADER_BYTES + length])
    if crc != expected:
        raise ProtocolError(f"frame CRC 0x{crc:04x} does not match 0x{expected:04x}")
    return Frame(msg_type, data[HEADER_BYTES:HEADER_BYTES + length])


class FrameDecoder:
    """Incremental frame decoder for a byte stream (the host's receive side).

    Bytes are fed with :meth:`feed`; complete frames with a good CRC are returned. Bytes before a sync are skipped
    and counted in :attr:`skipped`; a frame with a bad CRC is dropped (counted in :attr:`bad_frames`) and the search
    for a sync restarts at the byte after its first sync byte, so a frame hidden inside garbage is still found.

    The work is bounded: a candidate frame costs one CRC over at most ``max_payload + 3`` bytes (``binascii``'s
    C implementation of the same CRC-16/CCITT-FALSE), and :meth:`feed` stops at its ``deadline``, keeping the
    bytes it has not examined for the next call.

    Parameters
    ----------
    max_payload : int
        Frames announcing a longer payload are treated as garbage (default 65,535). A host that knows the longest
        reply it can get passes that, so a false sync costs little.
    """

    def __init__(self, *, max_payload=MAX_PAYLOAD):
        if not isinstance(max_payload, int) or not 0 <= max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload must be 0 ... {MAX_PAYLOAD}, not {max_payload!r}")
        self._max_payload = max_payload
        self._buffer = bytearray()
        self.skipped = 0
        self.bad_frames = 0

    @property
    def pending(self):
        """Number of bytes held while waiting for the rest of a frame (or for the next :meth:`feed`)."""
        return len(self._buffer)

    def feed(self, data, *, deadline=None):
        """Add received bytes; return the list of complete :class:`Frame` objects.

        Parameters
        ----------
        deadline : float, optional
            A ``time.monotonic()`` instant: past it, the search stops and resumes with the next call.
        """
        self._buffer += bytes(data)
        frames = []
        while deadline is None or time.monotonic() < deadline:
            start = self._buffer.find(SYNC)
            if start < 0:
                keep = 1 if self._buffer[-1:] == SYNC[:1] else 0
                self.skipped += len(self._buffer) - keep
                del self._buffer[:len(self._buffer) - keep]
                return frames
            self.skipped += start
            del self._buffer[:start]
            if len(self._buffer) < HEADER_BYTES:
                return frames
            msg_type, length = struct.unpack_from("<BH", self._buffer, 2)
            if length > self._max_payload:
                self.bad_frames += 1
                self.skipped += 1
                del self._buffer[:1]
                continue
            if len(self._buffer) < OVERHEAD_BYTES + length:
                return frames
            (crc,) = struct.unpack_from("<H", self._buffer, HEADER_BYTES + length)
            if crc != binascii.crc_hqx(memoryview(self._buffer)[2:HEADER_BYTES + length], 0xFFFF):
                self.bad_frames += 1
                self.skipped += 1
                del self._buffer[:1]
                continue
            frames.append(Frame(msg_type, bytes(self._buffer[HEADER_BYTES:HEADER_BYTES + length])))
            del self._buffer[:OVERHEAD_BYTES + length]
        return frames


# -- messages --------------------------------------------------------------------------------------------------------

def gateware_version():
    """The spikesmith version as ``(major, minor, patch)`` (from the installed package metadata; zeros if absent)."""
    try:
        text = importlib.metadata.version("spikesmith")
    except importlib.metadata.PackageNotFoundError:
        return (0, 0, 0)
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit()) or "0"
        parts.append(min(int(digits), 255))
    return tuple(parts + [0] * (3 - len(parts)))


# -- reply payloads as Amaranth layouts: fields from the least significant bit, sent least significant byte first --

#: Payload of an identify reply (58 bytes).
IDENTITY_LAYOUT = data.StructLayout({
    "protocol": unsigned(8),
    "version": data.ArrayLayout(unsigned(8), 3),
    "clock_hz": unsigned(32),
    "baud": unsigned(32),
    "timeout_us": unsigned(32),
    "input_shape": data.ArrayLayout(unsigned(16), 3),
    "time_steps": unsigned(16),
    "n_classes": unsigned(8),
    "readout_bits": unsigned(8),
    "model_hash": data.ArrayLayout(unsigned(8), 32),
})

#: Payload of an error reply (4 bytes).
ERROR_LAYOUT = data.StructLayout({"code": unsigned(8), "msg_type": unsigned(8), "expected_length": unsigned(16)})


def result_reply_layout(n_classes):
    """Payload of a result reply for ``n_classes`` classes: class byte, 32-bit cycle count, 32-bit readout values
    (the network's ``hw.layouts.result_layout`` with every field widened to whole bytes)."""
    return data.StructLayout({"cls": unsigned(8), "cycles": unsigned(32),
                              "readout": data.ArrayLayout(signed(32), n_classes)})


def _encode(layout, fields, what):
    try:
        return pack(layout, fields).to_bytes(layout.size // 8, "little")
    except ValueError as error:
        raise ProtocolError(f"{what} does not fit its reply: {error}") from None


def _decode(layout, payload, what):
    if len(payload) != layout.size // 8:
        raise ProtocolError(f"{what} has {len(payload)} payload bytes, expected {layout.size // 8}")
    return unpack(layout, int.from_bytes(payload, "little"))


@dataclasses.dataclass(frozen=True)
class Identity:
    """Payload of the identify reply: what the board runs.

    Members
    -------
    protocol : int
        Protocol version (:data:`PROTOCOL_VERSION`).
    version : tuple of int
        spikesmith version ``(major, minor, patch)`` the bitstream was built with.
    clock_hz : int
        Clock of the design, in Hz.
    baud : int
        UART bit rate.
    timeout_us : int
        The board drops a frame after this many microseconds without a byte inside it.
    input_shape : tuple of int
        ``(C, H, W)`` of the INT8 input map; an infer payload holds ``C * H * W`` bytes.
    time_steps : int
    n_classes : int
    readout_bits : int
        Width of the readout values (sent sign-extended to 32 bits).
    model_hash : str
        ``golden.manifest.model_hash`` of the model, 64 hex digits.
    """

    protocol: int
    version: tuple
    clock_hz: int
    baud: int
    timeout_us: int
    input_shape: tuple
    time_steps: int
    n_classes: int
    readout_bits: int
    model_hash: str

    @property
    def input_len(self):
        c, h, w = self.input_shape
        return c * h * w

    @classmethod
    def for_model(cls, model, *, clock_hz, baud, timeout_us):
        """The identity of a board running ``model`` (a ``golden.manifest.Model``)."""
        from golden.manifest import model_hash

        return cls(protocol=PROTOCOL_VERSION, version=gateware_version(), clock_hz=int(round(clock_hz)),
                   baud=int(baud), timeout_us=int(timeout_us), input_shape=tuple(model.input_shape),
                   time_steps=model.time_steps, n_classes=model.layers[-1].out_features,
                   readout_bits=model.layers[-1].neuron.mem_bits, model_hash=model_hash(model))


def encode_identify(identity):
    """Payload bytes of an identify reply (:data:`IDENTITY_LAYOUT`)."""
    try:
        digest = bytes.fromhex(identity.model_hash)
    except ValueError:
        raise ProtocolError(f"model hash {identity.model_hash!r} is not hexadecimal") from None
    if len(digest) != 32:
        raise ProtocolError(f"model hash has {len(digest)} bytes, a SHA-256 has 32")
    fields = {name: getattr(identity, name) for name in IDENTITY_LAYOUT.members if name != "model_hash"}
    return _encode(IDENTITY_LAYOUT, fields | {"model_hash": list(digest)}, "identity")


def decode_identify(payload):
    """Decode an identify reply's payload into an :class:`Identity`."""
    fields = _decode(IDENTITY_LAYOUT, payload, "identify reply")
    return Identity(**(fields | {"version": tuple(fields["version"]), "input_shape": tuple(fields["input_shape"]),
                                 "model_hash": bytes(fields["model_hash"]).hex()}))


def encode_infer(features):
    """Frame of an infer request for an INT8 map (any array-like of integers in -128 ... 127, raster order)."""
    values = [int(v) for v in _flat(features)]
    bad = [v for v in values if not -128 <= v <= 127]
    if bad:
        raise ProtocolError(f"feature value {bad[0]} does not fit INT8 (-128 ... 127)")
    return encode_frame(INFER, bytes(v & 0xFF for v in values))


def _flat(values):
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return list(values)
    return np.asarray(values).reshape(-1).tolist()


@dataclasses.dataclass(frozen=True)
class Result:
    """Payload of a result reply: class, cycle count of the inference, readout values."""

    cls: int
    cycles: int
    readout: tuple


def encode_result(result):
    """Payload bytes of a result reply (:func:`result_reply_layout`)."""
    return _encode(result_reply_layout(len(result.readout)), dataclasses.asdict(result), "result")


def decode_result(payload, n_classes=None):
    """Decode a result reply's payload (``1 + 4 + 4 * n_classes`` bytes) into a :class:`Result`."""
    if len(payload) < 5 or (len(payload) - 5) % 4:
        raise ProtocolError(f"result reply of {len(payload)} bytes is not 5 + 4 * n_classes")
    count = (len(payload) - 5) // 4
    if n_classes is not None and count != n_classes:
        raise ProtocolError(f"result reply holds {count} readout values, the model has {n_classes} classes")
    fields = _decode(result_reply_layout(count), payload, "result reply")
    return Result(fields["cls"], fields["cycles"], tuple(fields["readout"]))


@dataclasses.dataclass(frozen=True)
class ErrorReply:
    """Payload of an error reply: the code, the type of the offending frame and the length that type needs."""

    code: int
    msg_type: int
    expected_length: int

    def __str__(self):
        what = ERROR_NAMES.get(self.code, f"error code {self.code}")
        text = f"board reports {what} for a {MESSAGE_NAMES.get(self.msg_type, f'type 0x{self.msg_type:02x}')} frame"
        if self.code == BAD_LENGTH:
            text += f" (it needs {self.expected_length:,} payload bytes)"
        return text


def encode_error(error):
    """Payload bytes of an error reply (:data:`ERROR_LAYOUT`)."""
    return _encode(ERROR_LAYOUT, dataclasses.asdict(error), "error")


def decode_error(payload):
    """Decode an error reply's payload into an :class:`ErrorReply`."""
    return ErrorReply(**_decode(ERROR_LAYOUT, payload, "error reply"))


# -- weight image (docs/protocol.md, "Loading weights") -------------------------------------------------------------

def image_chunks(words):
    """The load frames of a weight image (a list of 16-bit words, :func:`hw.weights.image`): the image's bytes
    (each word least significant byte first) padded with zeros to whole :data:`LOAD_CHUNK`-byte chunks, one frame a
    chunk, numbered from 0."""
    data = bytearray()
    for word in words:
        if not 0 <= int(word) <= 0xFFFF:
            raise ProtocolError(f"image word {word} does not fit 16 bits")
        data += int(word).to_bytes(2, "little")
    data += bytes(-len(data) % LOAD_CHUNK)
    return [encode_load(k, data[k * LOAD_CHUNK:(k + 1) * LOAD_CHUNK]) for k in range(len(data) // LOAD_CHUNK)]


def encode_load(index, chunk):
    """Frame of load chunk ``index`` (0 ... 65,535) holding exactly :data:`LOAD_CHUNK` bytes."""
    if not isinstance(index, int) or not 0 <= index <= 0xFFFF:
        raise ProtocolError(f"chunk index must be 0 ... 65,535, not {index!r}")
    chunk = bytes(chunk)
    if len(chunk) != LOAD_CHUNK:
        raise ProtocolError(f"a load chunk holds {LOAD_CHUNK:,} bytes, not {len(chunk):,}")
    return encode_frame(LOAD, struct.pack("<H", index) + chunk)


@dataclasses.dataclass(frozen=True)
class LoadReply:
    """Payload of a load reply (the error reply's layout): ``complete`` once the whole image is in and its CRC
    matches the bitstream's, and the number of chunks the board's image has."""

    complete: bool
    chunks: int


def encode_loaded(reply):
    """Payload bytes of a load reply (:data:`ERROR_LAYOUT`: status, type ``LOAD``, chunks)."""
    return _encode(ERROR_LAYOUT, {"code": int(reply.complete), "msg_type": LOAD, "expected_length": reply.chunks},
                   "load reply")


def decode_loaded(payload):
    """Decode a load reply's payload into a :class:`LoadReply`."""
    fields = _decode(ERROR_LAYOUT, payload, "load reply")
    if fields["code"] > 1 or fields["msg_type"] != LOAD:
        raise ProtocolError(f"load reply has status {fields['code']} for type 0x{fields['msg_type']:02x}")
    return LoadReply(bool(fields["code"]), fields["expected_length"])


def decode_reply(frame, n_classes=None):
    """Decode a reply frame into :class:`Identity`, :class:`Result`, :class:`LoadReply` or :class:`ErrorReply`.

    Raises
    ------
    ProtocolError
        If the frame is not a reply type.
    """
    if frame.type == IDENTIFY_REPLY:
        return decode_identify(frame.payload)
    if frame.type == RESULT:
        return decode_result(frame.payload, n_classes)
    if frame.type == ERROR:
        return decode_error(frame.payload)
    if frame.type == LOADED:
        return decode_loaded(frame.payload)
    raise ProtocolError(f"frame of type 0x{frame.type:02x} is not a reply")
