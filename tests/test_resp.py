"""``sessionsvc._redis.resp.ReplyParser`` (pure, no server): equal to ``hiredis.Reader`` under the
bounds whatever the chunking, and, over them, the ``Oversized``/``Truncated`` a simple recursive
model of the rules predicts (prefixes, counts, sizes, digests)."""

from __future__ import annotations

import hashlib
import itertools
import math
from typing import Any

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis._parsers.base import BaseParser
from redis.exceptions import InvalidResponse, NoPermissionError, NoScriptError, ResponseError

from sessionsvc._redis.resp import (
    NEED_DATA,
    Oversized,
    Push,
    ReplyParser,
    Truncated,
    TruncatedMap,
    resp_digest,
)

PROPERTY = settings(max_examples=300, deadline=None)
NOT_ENOUGH = object()

# A reply model: (kind, payload) trees. Aggregates: ("array"|"set"|"push", [children]),
# ("map", [(key, value)]), ("nullarray", None); scalars as named.
SCALAR_KINDS = (
    "bulk",
    "simple",
    "error",
    "int",
    "null",
    "null3",
    "bool",
    "double",
    "big",
    "verbatim",
)


def encode(node: tuple[str, Any]) -> bytes:
    """The wire form of a model reply."""
    kind, v = node
    if kind == "bulk":
        return b"$%d\r\n%s\r\n" % (len(v), v)
    if kind == "verbatim":
        return b"=%d\r\ntxt:%s\r\n" % (len(v) + 4, v)
    if kind == "simple":
        return b"+%s\r\n" % v
    if kind == "error":
        return b"-%s\r\n" % v.encode()
    if kind == "int":
        return b":%d\r\n" % v
    if kind == "null":
        return b"$-1\r\n"
    if kind == "null3":
        return b"_\r\n"
    if kind == "nullarray":
        return b"*-1\r\n"
    if kind == "bool":
        return b"#t\r\n" if v else b"#f\r\n"
    if kind == "double":
        return b",%s\r\n" % repr(v).encode()
    if kind == "big":
        return b"(%s\r\n" % v
    if kind == "map":
        return b"%%%d\r\n" % len(v) + b"".join(encode(k) + encode(x) for k, x in v)
    mark = {"array": b"*", "set": b"~", "push": b">"}[kind]
    return mark + b"%d\r\n" % len(v) + b"".join(encode(c) for c in v)


def resp2(node: tuple[str, Any]) -> bytes:
    """The RESP2 form the digest is defined over (``sessionsvc._redis.resp.digest`` docstring)."""
    kind, v = node
    if kind in ("bulk", "verbatim"):
        return b"$%d\r\n%s\r\n" % (len(v), v)
    if kind in ("null", "null3"):
        return b"$-1\r\n"
    if kind == "bool":
        return b":1\r\n" if v else b":0\r\n"
    if kind in ("double", "big"):
        text = repr(v).encode() if kind == "double" else v
        return b"$%d\r\n%s\r\n" % (len(text), text)
    if kind == "map":
        return b"*%d\r\n" % (2 * len(v)) + b"".join(resp2(k) + resp2(x) for k, x in v)
    if kind in ("array", "set", "push"):
        return b"*%d\r\n" % len(v) + b"".join(resp2(c) for c in v)
    return encode(node)  # + - : *-1 are their own RESP2 form


class Bounds:
    def __init__(self, max_bulk: int = 4096, max_array_bytes: int = 8192, items: int = 64) -> None:
        self.max_bulk, self.max_array_bytes, self.max_array_items = max_bulk, max_array_bytes, items

    def parser(self, **kwargs: Any) -> ReplyParser:
        return ReplyParser(
            max_bulk=self.max_bulk,
            max_array_bytes=self.max_array_bytes,
            max_array_items=self.max_array_items,
            **kwargs,
        )


def expected(node: tuple[str, Any], b: Bounds) -> Any:
    """What the parser must return for a model reply (the rules, written recursively)."""
    kind, v = node
    if kind in ("bulk", "verbatim"):
        if len(v) > b.max_bulk:
            return Oversized(v[: b.max_bulk], len(v), hashlib.sha256(v).hexdigest())
        return v
    if kind in ("array", "set", "push", "map"):
        children = [c for pair in v for c in pair] if kind == "map" else v
        kept: list[Any] = []
        size = kept_bytes = kept_items = 0
        lossy = dropping = False
        for child in children:
            if child[0] in ("bulk", "verbatim"):
                length = len(child[1])
                size += length
                cost = min(length, b.max_bulk)
                if (
                    dropping
                    or kept_items >= b.max_array_items
                    or kept_bytes + cost > b.max_array_bytes
                ):
                    dropping = lossy = True
                    kept.append(DROPPED)
                    continue
                kept_items += 1
                kept_bytes += cost
                lossy |= length > b.max_bulk
            kept.append(expected(child, b))
        digest = hashlib.sha256(b"".join(resp2(c) for c in children)).hexdigest()
        if kind == "map":
            pairs = {
                kept[i]: kept[i + 1]
                for i in range(0, len(kept), 2)
                if kept[i] is not DROPPED and kept[i + 1] is not DROPPED
            }
            return TruncatedMap(pairs, len(v), size, digest) if lossy else pairs
        kept = [c for c in kept if c is not DROPPED]
        if lossy:
            return Truncated(kept, len(v), size, digest)
        return Push(kept) if kind == "push" else kept
    return hiredis_parse(encode(node))


DROPPED = object()


def hiredis_parse(data: bytes) -> Any:
    reader = hiredis.Reader(replyError=BaseParser.parse_error, notEnoughData=NOT_ENOUGH)
    reader.feed(data)
    reply = reader.gets(False)
    assert reply is not NOT_ENOUGH and not reader.has_data()
    return reply


def same(a: Any, b: Any) -> bool:
    """Deep equality that also compares types we care about, exceptions by class and text,
    floats by bits, and the attributes of ``Oversized``/``Truncated``/``TruncatedMap``."""
    for cls in (Oversized, Truncated, TruncatedMap):
        if isinstance(a, cls) != isinstance(b, cls):
            return False
        if isinstance(a, cls) and (
            getattr(a, "length", None),
            getattr(a, "sha256", None),
            getattr(a, "size", None),
        ) != (getattr(b, "length", None), getattr(b, "sha256", None), getattr(b, "size", None)):
            return False
    if isinstance(a, Truncated | TruncatedMap) and a.count != b.count:  # type: ignore[union-attr]
        return False
    if isinstance(a, BaseException):
        return type(a) is type(b) and a.args == b.args
    if isinstance(a, float):
        return isinstance(b, float) and (a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(same(x, y) for x, y in zip(a, b, strict=True))
        )
    return type(a) is type(b) and a == b


def parse_chunked(parser: ReplyParser, data: bytes, cuts: list[int], replies: int = 1) -> list[Any]:
    """Feed ``data`` split at ``cuts``, collect ``replies`` replies."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    out = []
    for start, end in itertools.pairwise(points):
        parser.feed(data[start:end])
        while (reply := parser.next_reply()) is not NEED_DATA:
            out.append(reply)
    assert len(out) == replies
    return out


no_crlf = st.binary(max_size=20).filter(lambda s: b"\r" not in s and b"\n" not in s)
error_text = st.builds(
    lambda code, text: f"{code} {text}".rstrip(),
    st.sampled_from(["ERR", "NOSCRIPT", "WRONGTYPE", "NOPERM", "BUSYGROUP", "NOAUTH"]),
    st.text(st.characters(codec="ascii", exclude_characters="\r\n"), max_size=20),
)


def scalars(max_bulk: int) -> st.SearchStrategy[tuple[str, Any]]:
    return st.one_of(
        st.tuples(st.just("bulk"), st.binary(max_size=max_bulk)),
        st.tuples(st.just("verbatim"), st.binary(max_size=max_bulk)),
        st.tuples(st.just("simple"), no_crlf),
        st.tuples(st.just("error"), error_text),
        st.tuples(st.just("int"), st.integers(-(1 << 63), (1 << 63) - 1)),
        st.tuples(st.sampled_from(["null", "null3", "nullarray"]), st.none()),
        st.tuples(st.just("bool"), st.booleans()),
        st.tuples(st.just("double"), st.floats(allow_nan=False)),
        st.tuples(st.just("big"), st.integers().map(lambda i: str(i * 10**20).encode())),
    )


keys = st.one_of(
    st.tuples(st.just("bulk"), st.binary(max_size=8)),
    st.tuples(st.just("simple"), no_crlf),
    st.tuples(st.just("int"), st.integers(-1000, 1000)),
)


def _unique_keys(pairs: list[tuple[tuple[str, Any], Any]]) -> list[tuple[tuple[str, Any], Any]]:
    seen: dict[tuple[type, Any], tuple[tuple[str, Any], Any]] = {}
    for pair in pairs:
        seen.setdefault((type(pair[0][1]), pair[0][1]), pair)
    return list(seen.values())


def replies(max_bulk: int, max_len: int) -> st.SearchStrategy[tuple[str, Any]]:
    def aggregates(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[str, Any]]:
        kinds = st.sampled_from(["array", "set", "push"])
        # unique map keys: hiredis gives None for a repeated key's value
        pairs = st.lists(st.tuples(keys, inner), max_size=max_len).map(_unique_keys)
        return st.tuples(kinds, st.lists(inner, max_size=max_len)) | st.tuples(
            st.just("map"), pairs
        )

    return st.recursive(scalars(max_bulk), aggregates, max_leaves=40)


@PROPERTY
@given(node=replies(max_bulk=60, max_len=8), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_equal_to_hiredis_under_the_bounds_whatever_the_chunking(
    node: tuple[str, Any], cuts: list[int]
) -> None:
    data = encode(node)
    (reply,) = parse_chunked(ReplyParser(), data, cuts)
    assert same(reply, hiredis_parse(data))


@PROPERTY
@given(
    nodes=st.lists(replies(max_bulk=40, max_len=10), min_size=1, max_size=3),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
    max_bulk=st.integers(0, 12),
    max_array_bytes=st.integers(0, 40),
    items=st.integers(0, 5),
)
def test_over_the_bounds_the_model_of_the_rules_holds(
    nodes: list[tuple[str, Any]],
    cuts: list[int],
    max_bulk: int,
    max_array_bytes: int,
    items: int,
) -> None:
    bounds = Bounds(max_bulk, max_array_bytes, items)
    data = b"".join(encode(n) for n in nodes)
    got = parse_chunked(bounds.parser(), data, cuts, replies=len(nodes))
    for reply, node in zip(got, nodes, strict=True):
        assert same(reply, expected(node, bounds)), (reply, expected(node, bounds))


@PROPERTY
@given(
    values=st.lists(st.binary(max_size=300), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 100_000), max_size=20),
)
def test_a_truncated_array_of_bulk_strings_carries_resp_digest(
    values: list[bytes], cuts: list[int]
) -> None:
    data = encode(("array", [("bulk", v) for v in values]))
    (reply,) = parse_chunked(ReplyParser(max_bulk=100, max_array_bytes=500), data, cuts)
    lossy = any(len(v) > 100 for v in values) or len(reply) < len(values)
    assert isinstance(reply, Truncated) == lossy
    if lossy:
        assert reply.count == len(values) and reply.size == sum(map(len, values))
        assert reply.sha256 == resp_digest(values)
        assert sum(len(v) for v in reply) <= 500 and len(reply) <= 64


def test_resp_digest_is_sha256_of_the_resp2_bulk_strings() -> None:
    assert resp_digest([b"a", b""]) == hashlib.sha256(b"$1\r\na\r\n$0\r\n\r\n").hexdigest()
    assert resp_digest([]) == hashlib.sha256(b"").hexdigest()


def test_a_huge_bulk_string_streams_through_in_small_memory() -> None:
    value = bytes(range(256)) * 40_000  # 10 MB
    header = b"*3\r\n$1\r\nf\r\n$%d\r\n" % len(value)
    parser = ReplyParser()
    parser.feed(header)
    assert parser.next_reply() is NEED_DATA
    for i in range(0, len(value), 65536):
        parser.feed(value[i : i + 65536])
        assert parser.next_reply() is NEED_DATA
        assert len(parser._buf) <= 2 * 65536 and len(parser._canon) <= 2 * 65536
    parser.feed(b"\r\n:7\r\n+OK\r\n")
    reply = parser.next_reply()
    assert isinstance(reply, Truncated) and reply.count == 3 and reply.size == len(value) + 1
    assert (
        reply.sha256
        == hashlib.sha256(b"$1\r\nf\r\n$%d\r\n%s\r\n:7\r\n" % (len(value), value)).hexdigest()
    )
    field, big, seven = reply
    assert field == b"f" and seven == 7
    assert isinstance(big, Oversized) and big == value[:4096] and big.length == len(value)
    assert big.sha256 == hashlib.sha256(value).hexdigest()
    assert parser.next_reply() == b"OK" and parser.unconsumed() == b""


def test_a_top_level_huge_bulk_string_is_oversized_without_an_array() -> None:
    parser = ReplyParser(max_bulk=3)
    parser.feed(b"$5\r\nhello\r\n")
    reply = parser.next_reply()
    assert isinstance(reply, Oversized) and reply == b"hel" and reply.length == 5
    assert "length=5" in repr(reply)


def test_bulk_children_are_kept_as_a_prefix_non_bulk_children_always() -> None:
    parser = ReplyParser(max_array_items=2)
    parser.feed(b"*5\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*1\r\n:1\r\n:2\r\n")
    reply = parser.next_reply()
    assert reply == [b"a", b"b", [1], 2] and isinstance(reply, Truncated)
    assert (reply.count, reply.size) == (5, 3)


def test_pairs_of_a_truncated_map_are_kept_whole() -> None:
    parser = ReplyParser(max_array_items=3)
    parser.feed(b"%3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n:3\r\n")
    reply = parser.next_reply()
    assert isinstance(reply, TruncatedMap) and reply == {b"a": b"1"} and reply.count == 3


def test_error_replies_get_redis_py_classes_at_any_depth() -> None:
    parser = ReplyParser()
    parser.feed(b"-NOSCRIPT No matching script\r\n*2\r\n-NOPERM no\r\n-WRONGTYPE Op\r\n")
    top = parser.next_reply()
    assert type(top) is NoScriptError and top.args == ("No matching script",)
    noperm, wrongtype = parser.next_reply()
    assert type(noperm) is NoPermissionError and type(wrongtype) is ResponseError


def test_an_error_redis_py_cannot_build_is_a_plain_response_error() -> None:
    parser = ReplyParser()
    parser.feed(b"-MOVED\r\n")
    error = parser.next_reply()
    assert type(error) is ResponseError and error.args == ("MOVED",)


def test_blob_errors_and_attributes() -> None:
    parser = ReplyParser()
    parser.feed(
        b"!10\r\nERR a\r\nb c\r\n|1\r\n+key\r\n+val\r\n*2\r\n|1\r\n+k\r\n:9\r\n:1\r\n:2\r\n"
    )
    blob = parser.next_reply()
    assert type(blob) is ResponseError and blob.args == ("a\r\nb c",)
    assert parser.next_reply() == [1, 2]  # both attributes skipped


def test_pushes_are_lists_or_skipped_at_the_top() -> None:
    data = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n>0\r\n+PONG\r\n"
    parser = ReplyParser()
    parser.feed(data)
    push = parser.next_reply()
    assert isinstance(push, Push) and push == [b"invalidate", [b"k"]]
    assert isinstance(parser.next_reply(), Push)
    quiet = ReplyParser(pushes=False, max_bulk=2)
    quiet.feed(data)
    assert quiet.next_reply() == b"PONG"


@pytest.mark.parametrize(
    "data",
    [
        b"$3\r\nabcXY",
        b":12a\r\n",
        b":007\r\n",
        b"*01\r\n",
        b"?\r\n",
        b"\r\n",
        b",1e400\r\n",
        b"#x\r\n",
        b"=3\r\nabc\r\n",
        b"%1\r\n*0\r\n:1\r\n",
        b"+" + b"x" * 70_000,
    ],
)
def test_protocol_errors_raise_and_poison_the_parser(data: bytes) -> None:
    parser = ReplyParser()
    parser.feed(data)
    with pytest.raises(InvalidResponse):
        parser.next_reply()
    parser.feed(b"+OK\r\n")
    with pytest.raises(InvalidResponse):
        parser.next_reply()


def test_the_bytes_after_a_reply_stay_buffered() -> None:
    parser = ReplyParser()
    parser.feed(b":1\r\n$5\r\nhel")
    assert parser.next_reply() == 1
    assert parser.unconsumed() == b"$5\r\nhel"
    assert parser.next_reply() is NEED_DATA
