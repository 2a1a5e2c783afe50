"""sessionsvc.encoding: canonical base64url and strict JSON objects."""

from __future__ import annotations

import base64

import pytest

from sessionsvc.encoding import (
    StrictDecodeError,
    as_text,
    b64url_decode,
    b64url_encode,
    loads_object,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- base64url -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"a", b"ab", b"abc", b"\xfb\xff\xfe", bytes(range(256))])
def test_b64url_encode_is_unpadded_base64url(data: bytes) -> None:
    assert b64url_encode(data) == b64(data)
    assert b64url_encode(data.decode("latin-1")) == b64(data.decode("latin-1").encode("utf-8"))


def test_as_text_decodes_bytes_and_keeps_str() -> None:
    assert as_text(b"caf\xc3\xa9") == as_text("café") == "café"


@pytest.mark.parametrize("data", [b"", b"a", b"ab", b"abc", b"\xfb\xff\xfe", bytes(range(256))])
def test_b64url_round_trips_canonical_encoding(data: bytes) -> None:
    assert b64url_decode(b64(data)) == data


def test_b64url_rejects_padding() -> None:
    with pytest.raises(StrictDecodeError):
        b64url_decode("YQ==")


@pytest.mark.parametrize("segment", ["+/8", "-/8", "+_8"])
def test_b64url_rejects_standard_alphabet(segment: str) -> None:
    with pytest.raises(StrictDecodeError):
        b64url_decode(segment)


@pytest.mark.parametrize("segment", [" YWJj", "YWJj ", "YW Jj", "YWJj\n", "\tYWJj"])
def test_b64url_rejects_whitespace(segment: str) -> None:
    with pytest.raises(StrictDecodeError):
        b64url_decode(segment)


def test_b64url_rejects_impossible_length() -> None:
    with pytest.raises(StrictDecodeError, match="unpadded"):
        b64url_decode("YWJjZ")  # 5 characters: 4n+1 never encodes whole bytes


@pytest.mark.parametrize("segment", ["YR", "YWJ", "_x"])
def test_b64url_rejects_nonzero_trailing_bits(segment: str) -> None:
    # "YQ" is "a"; "YR" decodes to "a" too under a lenient decoder, but its unused bits are set.
    with pytest.raises(StrictDecodeError, match="non-canonical"):
        b64url_decode(segment)


@pytest.mark.parametrize("segment", ["YWJj\u00e9", "ＹＷＪｊ", "YWJj."])
def test_b64url_rejects_characters_outside_the_alphabet(segment: str) -> None:
    with pytest.raises(StrictDecodeError):
        b64url_decode(segment)


# --- strict JSON ------------------------------------------------------------------------------


def test_loads_object_accepts_a_plain_object() -> None:
    assert loads_object(b'{"a": 1, "b": [true, null, 1.5, "x"]}') == {
        "a": 1,
        "b": [True, None, 1.5, "x"],
    }


def test_loads_object_rejects_duplicate_names() -> None:
    with pytest.raises(StrictDecodeError, match="duplicate"):
        loads_object(b'{"exp": 1, "exp": 2}')


def test_loads_object_rejects_duplicate_names_in_nested_objects() -> None:
    with pytest.raises(StrictDecodeError, match="duplicate"):
        loads_object(b'{"a": {"x": 1, "x": 1}}')


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_loads_object_rejects_non_json_constants(constant: bytes) -> None:
    with pytest.raises(StrictDecodeError, match="not JSON"):
        loads_object(b'{"exp": ' + constant + b"}")


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"1E999", b"123456789e999"])
def test_loads_object_rejects_numbers_overflowing_to_infinity(number: bytes) -> None:
    with pytest.raises(StrictDecodeError, match="out of range"):
        loads_object(b'{"exp": ' + number + b"}")


def test_loads_object_rejects_integers_past_the_digit_limit() -> None:
    with pytest.raises(StrictDecodeError):
        loads_object(b'{"exp": ' + b"9" * 5000 + b"}")


def test_loads_object_keeps_large_integers_within_the_limit_exact() -> None:
    big = 2**64 + 1
    assert loads_object(b'{"n": %d}' % big) == {"n": big}


@pytest.mark.parametrize("doc", [b"[]", b"[1]", b'"x"', b"1", b"null", b"true"])
def test_loads_object_rejects_non_objects(doc: bytes) -> None:
    with pytest.raises(StrictDecodeError, match="not a JSON object"):
        loads_object(doc)


@pytest.mark.parametrize("data", [b'{"a": "\xff"}', b'{"a": "\xc3"}', b'{"\xed\xa0\x80": 1}'])
def test_loads_object_rejects_invalid_utf8(data: bytes) -> None:
    with pytest.raises(StrictDecodeError):
        loads_object(data)


def test_loads_object_rejects_a_utf8_bom() -> None:
    with pytest.raises(StrictDecodeError):
        loads_object(b'\xef\xbb\xbf{"a": 1}')


def test_loads_object_rejects_deep_nesting() -> None:
    depth = 100_000
    with pytest.raises(StrictDecodeError):
        loads_object(b'{"a": ' + b"[" * depth + b"]" * depth + b"}")


def test_loads_object_rejects_trailing_data() -> None:
    with pytest.raises(StrictDecodeError):
        loads_object(b'{"a": 1}{"b": 2}')


@pytest.mark.parametrize("data", [b"", b"{", b"{'a': 1}", b'{"a": 1,}'])
def test_loads_object_rejects_invalid_json(data: bytes) -> None:
    with pytest.raises(StrictDecodeError):
        loads_object(data)


def test_strict_decode_error_is_a_value_error() -> None:
    # callers that only know ValueError still catch it
    assert issubclass(StrictDecodeError, ValueError)
