"""The strict ROM file format: exactly one reading per file, every deviation refused with its line and reason."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.rom import RomError, digits, parse_rom, rom_size, rom_text


def test_the_format_is_ceil_bits_over_4_digits_per_line():
    assert rom_text([-1, 0, 127, -128], 8) == "ff\n00\n7f\n80\n"
    assert rom_text([-1, 5], 20) == "fffff\n00005\n"
    assert rom_text([-2, 1], 3) == "6\n1\n"
    assert [digits(b) for b in (2, 4, 5, 8, 9, 32, 48)] == [1, 1, 2, 2, 3, 8, 12]
    assert rom_size(3, 10) == 12


def test_upper_case_and_a_missing_final_newline_are_accepted():
    assert parse_rom(b"FF\n7f\n80", 8, 3).tolist() == [-1, 127, -128]
    assert parse_rom(b"3fF\n200\n1ff\n", 10, 3).tolist() == [-1, -512, 511]


@pytest.mark.parametrize("data,bits,count,msg", [
    (b"ffff\n", 20, 1, "line 1: 'ffff' has 4 digits; 20-bit values have exactly 5"),        # was +65535
    (b"200\n", 32, 1, "line 1: '200' has 3 digits; 32-bit values have exactly 8"),         # was -512 -> +512
    (b"0ff\n", 8, 1, "line 1: '0ff' has 3 digits; 8-bit values have exactly 2"),           # was "does not fit"
    (b"f\n", 8, 1, "line 1: 'f' has 1 digits; 8-bit values have exactly 2"),
    (b"+f\n", 8, 1, r"line 1: '\+f' holds '\+'; a value is ASCII hexadecimal digits only"),
    (b"f_f\n", 8, 1, "line 1: 'f_f' holds '_'"),
    (b"ff ff\n", 8, 2, r"line 1: 'ff ff' holds U\+0020 \(SPACE\)"),
    (b"ff\n\nff\n", 8, 2, "line 2: blank line"),
    (b"ff\nff\n\n", 8, 2, "line 3: blank line"),
    ("١٢\n".encode(), 8, 1, r"line 1: '\\u0661\\u0662' holds U\+0661 \(ARABIC-INDIC DIGIT ONE\)"),                     # Arabic-Indic digits
    ("１２\n".encode(), 8, 1, r"holds U\+FF11 \(FULLWIDTH DIGIT ONE\)"),                   # full-width digits
    ("ff\u2028ff\n".encode(), 8, 2, r"line 1: 'ff\\u2028ff' holds U\+2028 \(LINE SEPARATOR\)"),
    ("ff\u00a0\n".encode(), 8, 1, r"holds U\+00A0 \(NO-BREAK SPACE\)"),
    (b"ff\r\n", 8, 1, "line 1: ends with a carriage return"),
    (b"0x7f\n", 8, 1, "line 1: '0x7f' holds 'x'"),
    (b"7ff\n", 10, 1, "line 1: value 0x7ff does not fit 10 bits"),
    (b"\xff\xfe\n", 8, 1, r"line 1: b'\\xff\\xfe' holds byte 0xff, which is not UTF-8 text"),
    (b"ff\nff\n", 8, 3, "has 2 values, 3 expected"),
    (b"ff\nff\nff\n", 8, 2, "has 3 values, 2 expected"),
    (b"", 8, 1, "has 0 values, 1 expected"),
])
def test_every_deviation_is_refused_with_line_and_reason(data, bits, count, msg):
    with pytest.raises(RomError, match=msg):
        parse_rom(data, bits, count)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 48).flatmap(lambda b: st.tuples(st.just(b), st.lists(
    st.integers(-(1 << (b - 1)), (1 << (b - 1)) - 1), min_size=1, max_size=40))), st.booleans())
def test_round_trip(case, final_newline):
    bits, values = case
    text = rom_text(values, bits)
    data = (text if final_newline else text[:-1]).encode()
    assert parse_rom(data, bits, len(values)).tolist() == values
    assert parse_rom(data.upper(), bits, len(values)).tolist() == values


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_mutated_file_is_refused_or_reads_as_written(data):
    """Any change of one byte either is refused or leaves a file of the same format that reads back its text."""
    bits = data.draw(st.integers(2, 48))
    values = data.draw(st.lists(st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1), min_size=1, max_size=8))
    raw = bytearray(rom_text(values, bits).encode())
    where = data.draw(st.integers(0, len(raw)))
    action = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    byte = data.draw(st.integers(0, 255))
    if action == "replace" and where < len(raw):
        raw[where] = byte
    elif action == "insert":
        raw.insert(where, byte)
    elif where < len(raw):
        del raw[where]
    try:
        got = parse_rom(bytes(raw), bits, len(values))
    except RomError:
        return
    # accepted: it must be exactly the canonical text of what it reads as (case and final newline aside)
    assert rom_text(got, bits).rstrip("\n") == bytes(raw).decode("ascii").lower().rstrip("\n")
    assert isinstance(got, np.ndarray) and got.shape == (len(values),)
