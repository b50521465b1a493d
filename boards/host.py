"""Host tool: classify a WAV file on a board over its UART.

    python -m boards.host --port /dev/ttyUSB1 recording.wav
    python -m boards.host --port /dev/ttyUSB1 --model models/fsdd_scnn --json a.wav b.wav

The features are made exactly as the trainer makes them (``train.features.extract`` with the ``features`` object of
the model's manifest); the board's identify reply is checked against the model (hash, input shape) before anything
is sent. A board whose plan keeps weights in SPRAM answers an infer with *no weight image loaded* until it has been
sent its weight image; the tool then loads it (from ``--weights FILE``, the ``weights.bin`` that ``hw.build`` writes
beside the bitstream, or else made from the model directory with the build's ``--params``) and classifies again. For every file it prints the class, the readout values, the board's cycle count and the latency in
microseconds at the board's clock, and the round trip measured on the host (dominated by the serial transfer).

:class:`BoardClient` is the reusable part: it works with any object with ``write(bytes)`` and ``read(n)`` (a
``serial.Serial`` with a read timeout), retries after an error reply or a silence, and never trusts a reply it
cannot decode.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from golden.checks import check_int
from golden.cli import EXIT_BAD_INPUT, EXIT_FAILURE, run_main

from . import protocol as P

__all__ = ["BoardClient", "BoardError", "image_source", "main"]


#: The longest reply payload a board sends: a result for 255 classes (an identify reply is 58 bytes).
MAX_REPLY_PAYLOAD = 5 + 4 * 255


class BoardError(RuntimeError):
    """The board did not answer as the protocol says (after the retries); ``reply`` is the last error reply, if
    any."""

    def __init__(self, message, reply=None):
        super().__init__(message)
        self.reply = reply


def _seconds(name, value, *, zero=False, high=3600.0):
    """``value`` as a float of seconds in ``(0, high]`` (``[0, high]`` with ``zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            (0 <= value if zero else 0 < value) and value <= high):
        raise ValueError(f"{name} must be a number of seconds in {'[' if zero else '('}0, {high:g}], not {value!r}")
    return float(value)


class BoardClient:
    """Requests to a board over a serial port.

    Parameters
    ----------
    port : object
        Has ``write(bytes)`` and ``read(n) -> bytes`` returning early (possibly empty) after its read timeout.
    timeout : float
        Seconds to wait for a reply.
    retries : int
        How often a request is sent again after an error reply or no reply.
    idle : float
        Seconds of silence before a retry (longer than the board's inter-byte timeout).
    image : callable, optional
        Returns the weight image (a list of 16-bit words) when the board says it has none; :meth:`infer` then
        loads it and asks again.
    """

    def __init__(self, port, *, timeout=2.0, retries=2, idle=0.05, image=None):
        self._port = port
        self._timeout = _seconds("timeout", timeout)
        self._retries = check_int("retries", retries, 0, 100)
        self._idle = _seconds("idle", idle, zero=True)
        self._decoder = P.FrameDecoder(max_payload=MAX_REPLY_PAYLOAD)
        self._image = image
        self.identity = None
        self.loads = 0

    def _reply(self):
        """The first good frame before the timeout; the decoder's work counts against the timeout too."""
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            frames = self._decoder.feed(self._port.read(256), deadline=deadline)
            if frames:
                return frames[0]
        return None

    def request(self, frame, expect):
        """Send ``frame`` and return the decoded reply of type ``expect`` (retrying as configured).

        Raises
        ------
        BoardError
            With the last error reply, or when the board stays silent.
        """
        last, last_error = "no reply", None
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(self._idle)
                self._decoder = P.FrameDecoder(max_payload=MAX_REPLY_PAYLOAD)
            self._port.write(frame)
            reply = self._reply()
            if reply is None:
                last = f"no reply within {self._timeout:g} s"
                continue
            n_classes = self.identity.n_classes if self.identity is not None else None
            try:
                decoded = P.decode_reply(reply, n_classes)
            except P.ProtocolError as error:
                last = str(error)
                continue
            if reply.type == expect:
                return decoded
            if isinstance(decoded, P.ErrorReply) and decoded.code in (P.NOT_LOADED, P.BAD_IMAGE,
                                                                      P.BAD_SEQUENCE):
                raise BoardError(str(decoded), decoded)  # sending the same frame again cannot help
            last_error = decoded if isinstance(decoded, P.ErrorReply) else None
            last = str(decoded) if last_error is not None else f"unexpected {reply.name}"
        raise BoardError(f"{last} (after {self._retries + 1} attempts)", last_error)

    def identify(self):
        """Ask the board what it runs; returns and remembers a :class:`boards.protocol.Identity`."""
        self.identity = self.request(P.encode_frame(P.IDENTIFY), P.IDENTIFY_REPLY)
        return self.identity

    def infer(self, x):
        """Classify one INT8 input map; returns a :class:`boards.protocol.Result`. A board without its weight
        image is loaded first (with the ``image`` given to the constructor) and asked again."""
        frame = P.encode_infer(x)
        try:
            return self.request(frame, P.RESULT)
        except BoardError as error:
            if self._image is None or error.reply is None or error.reply.code != P.NOT_LOADED:
                raise
        self.load(self._image())
        return self.request(frame, P.RESULT)

    def load(self, words):
        """Send a weight image (16-bit words, :func:`hw.weights.image`) in load chunks; returns the number of
        chunks.

        Raises
        ------
        BoardError
            If the board refuses a chunk, expects another number of chunks (the image is for another build), or
            does not report the image complete and matching after the last chunk.
        """
        frames = P.image_chunks(words)
        if not frames:
            raise BoardError("the board needs a weight image, but this plan of the model keeps every weight in "
                             "block RAM: pass the build's --params, or its weights.bin with --weights")
        for index, frame in enumerate(frames):
            reply = self.request(frame, P.LOADED)
            if reply.chunks != len(frames):
                raise BoardError(f"the board's weight image has {reply.chunks:,} chunks of {P.LOAD_CHUNK:,} bytes, "
                                 f"this one {len(frames):,} ({2 * len(words):,} bytes): it was made for another "
                                 f"build (pass the build's --params, or its weights.bin with --weights)")
            if reply.complete != (index == len(frames) - 1):
                raise BoardError(f"the board reports the weight image {'complete' if reply.complete else 'incomplete'}"
                                 f" after chunk {index + 1} of {len(frames)}")
        self.loads += 1
        return len(frames)


def _check_identity(identity, model):
    from golden.manifest import model_hash

    problems = []
    if identity.protocol != P.PROTOCOL_VERSION:
        problems.append(f"board speaks protocol {identity.protocol}, this tool {P.PROTOCOL_VERSION}")
    if tuple(identity.input_shape) != tuple(model.input_shape):
        problems.append(f"board expects input {identity.input_shape}, model {model.name} has {model.input_shape}")
    if identity.clock_hz < 1:
        problems.append(f"board reports a clock of {identity.clock_hz} Hz: its identify reply is corrupt")
    if identity.model_hash != model_hash(model):
        shipped = _shipped_model(identity.model_hash)
        hint = (f"the board runs the shipped model {shipped.name}: pass --model {shipped}" if shipped else
                "rebuild the bitstream or pass the board's --model")
        problems.append(f"board runs model {identity.model_hash[:12]}..., not {model.name} "
                        f"({model_hash(model)[:12]}...): {hint}")
    return problems


def _shipped_model(digest):
    """The directory of the model in the repository's ``models/`` whose hash is ``digest``, else None (a board built
    with the default model of another board, or another model's, tells the user which ``--model`` it needs)."""
    from flow.build import REPO
    from golden.manifest import ManifestError, load, model_hash

    for path in sorted((REPO / "models").glob("*/manifest.json")):
        try:
            if model_hash(load(path.parent)) == digest:
                return path.parent
        except (ManifestError, OSError):
            continue
    return None


def _argument(kind, low, high, what):
    """An argparse type: ``kind`` (int or float) in ``low ... high``; refused with the bound otherwise."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not (low <= value <= high):  # also refuses NaN
            raise argparse.ArgumentTypeError(f"{text} is out of range: {what} from {low:,} to {high:,}")
        return value
    return parse


def _features_of(wavs, features):
    """The input map of every WAV file, before any port is opened; refusals as ``(wav, error)`` pairs."""
    from train.features import FeatureError, extract, warnings_to_stderr

    maps, refused = {}, []
    with warnings_to_stderr():
        for wav in wavs:
            try:
                maps[wav] = extract(wav, features)
            except FeatureError as error:
                refused.append(error)
    return maps, refused


def image_source(model, *, weights=None, params=None):
    """A function returning the weight image for :class:`BoardClient`: the words of ``weights`` (a file of 16-bit
    little-endian words, as ``hw.build`` writes it), or :func:`hw.weights.image` of the model's plan."""
    def words():
        if weights is not None:
            data = Path(weights).read_bytes()
            if len(data) % 2:
                raise BoardError(f"weight image {weights} has {len(data):,} bytes, not a whole number of 16-bit "
                                 f"words")
            return [int.from_bytes(data[k:k + 2], "little") for k in range(0, len(data), 2)]
        from hw.plan import plan
        from hw.weights import image
        return image(plan(model, params=params))
    return words


def main(argv=None):
    from hw.build import default_model_dir
    from hw.params import ParamsError, add_params_argument, parse_params

    parser = argparse.ArgumentParser(
        prog="python -m boards.host",
        description="Classify WAV files on a spikesmith board: makes the input map as the trainer does, sends it "
                    "over the UART (docs/protocol.md) and prints the class and the latency; with --verify, replays "
                    "test vectors and checks every reply against the golden and cycle models. Every input is read "
                    "before the port is opened. Exit codes: 0 all classified (or all replies equal), 1 the board "
                    "failed, runs another model or differs, 2 bad input (arguments, model, WAV files, vectors, "
                    "port), 3 internal error.")
    parser.add_argument("wav", nargs="*", help="WAV file(s) to classify (with --verify: .npy input maps)")
    parser.add_argument("--port", required=True, help="serial port of the board (e.g. /dev/ttyUSB1, COM5)")
    parser.add_argument("--model", metavar="DIR", help=f"the model the board runs (default: {default_model_dir()})")
    parser.add_argument("--baud", type=_argument(int, 300, 12_000_000, "a bit rate in baud"),
                        help="UART rate, 300 ... 12,000,000 (default: the board default, 1,000,000)")
    parser.add_argument("--timeout", type=_argument(float, 0.001, 3600.0, "a number of seconds"), default=2.0,
                        help="seconds to wait for a reply, 0.001 ... 3600 (default 2)")
    parser.add_argument("--force", action="store_true", help="send even if the board runs another model")
    parser.add_argument("--weights", metavar="FILE",
                        help="the weight image to load when the board has none (the weights.bin that hw.build "
                             "writes beside the bitstream; default: made from --model and --params)")
    add_params_argument(parser, help_suffix=" (the build's: they decide the weight image the board loads)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    parser.add_argument("--verify", action="store_true",
                        help="replay test vectors (the FSDD test split from --data, or .npy input maps) and check "
                             "class, readout values and cycle count of every reply (see boards.replay)")
    parser.add_argument("--data", metavar="DIR", help="with --verify: the FSDD recordings directory")
    args = parser.parse_args(argv)
    if not args.port.strip():
        parser.error("--port is empty")
    if not args.wav and not args.verify:
        parser.error("give WAV file(s), or --verify")
    try:
        params = parse_params(args.params)
    except ParamsError as error:
        parser.error(str(error))
    if args.weights is not None and not Path(args.weights).is_file():
        parser.error(f"--weights {args.weights}: no such file")

    from golden.manifest import load
    from train.features import FeatureParams

    model = load(args.model or default_model_dir())
    if args.verify:
        from .replay import load_vectors
        vectors = load_vectors(model, data=args.data, files=args.wav, progress=sys.stderr.isatty())
        print(f"replaying {len(vectors.names)} {vectors.source}", file=sys.stderr)
        refused = []
    else:
        features = FeatureParams.from_dict(model.features)
        maps, refused = _features_of(args.wav, features)
    for error in refused:
        print(f"error: {error}", file=sys.stderr)
    if refused:
        print(f"error: {len(refused)} of {len(args.wav)} WAV file(s) refused; nothing was sent", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        import serial
    except ImportError:
        print("error: pyserial is not installed (pip install pyserial)", file=sys.stderr)
        return EXIT_FAILURE
    try:
        port = serial.Serial(args.port, args.baud or 1_000_000, timeout=0.05)
    except (serial.SerialException, ValueError) as error:
        print(f"error: cannot open {args.port}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with port:
        client = BoardClient(port, timeout=args.timeout,
                             image=image_source(model, weights=args.weights, params=params))
        try:
            identity = client.identify()
        except BoardError as error:
            print(f"error: board on {args.port} does not identify itself: {error}", file=sys.stderr)
            return EXIT_FAILURE
        problems = _check_identity(identity, model)
        for problem in problems:
            print(f"{'warning' if args.force else 'error'}: {problem}", file=sys.stderr)
        if problems and not args.force:
            return EXIT_FAILURE
        if args.verify:
            from .replay import replay
            try:
                report = replay(client, model, vectors.x, vectors.names, params=params)
            except BoardError as error:
                print(f"error: {error}", file=sys.stderr)
                return EXIT_FAILURE
            return EXIT_FAILURE if report.mismatches else 0
        status = 0
        for wav, x in maps.items():
            started = time.perf_counter()
            try:
                result = client.infer(x)
            except BoardError as error:
                print(f"error: {wav}: {error}", file=sys.stderr)
                status = EXIT_FAILURE
                continue
            round_trip = time.perf_counter() - started
            label = model.classes[result.cls] if result.cls < len(model.classes) else str(result.cls)
            latency_us = result.cycles / identity.clock_hz * 1e6 if identity.clock_hz > 0 else None
            if args.json:
                print(json.dumps({"file": str(wav), "class": result.cls, "label": label,
                                  "readout": list(result.readout), "cycles": result.cycles,
                                  "latency_us": latency_us, "round_trip_ms": round_trip * 1e3}))
            else:
                latency = (f"{latency_us:.1f} us at {identity.clock_hz / 1e6:g} MHz" if latency_us is not None
                           else "latency unknown (0 Hz clock)")
                print(f"{Path(wav).name}: class {result.cls} ({label}), {result.cycles:,} cycles = {latency}; "
                      f"round trip {round_trip * 1e3:.1f} ms; readout {list(result.readout)}")
    return status


if __name__ == "__main__":
    sys.exit(run_main(main))
