"""The pure rules of ``sessionsvc._redis.slotpool``: what an ASK is, and what is sent for one."""

from __future__ import annotations

from redis.exceptions import AskError, MovedError, ResponseError

from sessionsvc._redis.slotpool import asking, is_ask, must_resolve


def test_an_ask_reply_is_an_ask() -> None:
    assert is_ask(AskError("7398 127.0.0.1:7001"))


def test_a_moved_reply_is_not_an_ask() -> None:
    """redis-py's ``MovedError`` subclasses ``AskError``: a MOVED must re-resolve instead."""
    moved = MovedError("7398 127.0.0.1:7001")
    assert not is_ask(moved) and must_resolve(moved)


def test_another_error_reply_is_not_an_ask() -> None:
    assert not is_ask(ResponseError("ERR no such key"))


def test_each_asked_command_follows_its_own_asking() -> None:
    commands = [("XLEN", "k"), ("ZCARD", "z")]
    assert asking(commands) == [("ASKING",), ("XLEN", "k"), ("ASKING",), ("ZCARD", "z")]
