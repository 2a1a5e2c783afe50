"""The one boundary between the libraries sessionsvc calls and its exception tree.

``with map_exceptions("could not publish"): client.xadd(...)`` turns an exception of redis-py,
PyJWT or pydantic into the ``SessionError`` subclass ``RULES`` declares for it; anything else
passes through. One instance may be entered any number of times (and from async code: it is a
plain, cheap context manager around the call, never around an ``await`` it must not see)::

    source (most specific first)      target            cause kept
    pydantic_settings.SettingsError   ConfigError       no  (may quote the value)
    pydantic.ValidationError          ConfigError       no  (its text holds the input)
    jwt.exceptions.PyJWKError         ConfigError       no  (raised over key material)
    jwt.PyJWTError                    ConfigError       no
    RedisClusterException             StoreUnavailable  no  (a cluster client's own: no node
                                                            answered, no slot map; not a
                                                            RedisError)
    redis.RedisError                  StoreUnavailable  no  (as ``.redis_error``: echoed args)

sessionsvc calls PyJWT only on key material (loading, signing; tokens are verified by its own
code), so a PyJWT error is a configuration error. The first matching rule wins; the table is
ordered most specific first (a test checks it). A call site with a more precise meaning passes
its own rules for what it calls: the settings loader names environment variables, the key
loader also maps cryptography's ``ValueError`` to ``ConfigError``, the event parser maps
pydantic's errors to ``EventRejected`` with its stable codes.

Messages never carry secrets: a rule's ``message`` builds the text from what is safe to show (a
redis error's text without URL credentials and without the arguments Redis echoes back, a
validation error's locations and messages without input), and the original is chained as
``__cause__`` only where its own text is safe too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Final, NamedTuple

import jwt
import pydantic
import pydantic_settings
import redis

from sessionsvc.errors import ConfigError, SessionError, StoreUnavailable

__all__ = ["RULES", "Rule", "map_exceptions", "redis_text"]

_CREDENTIALS = re.compile(r"(?<=://)[^@/\s]*@")
_ECHOED_ARGS = re.compile(
    r"(,? with args beginning with:|[.,;]?\s*Command:|\s*in command:).*", re.DOTALL
)  # (Redis echoes a command's arguments; so do redis-py's cluster errors)
_MAX_TEXT: Final = 200


class Rule(NamedTuple):
    """``source`` exceptions become ``build(exc, what)``, an instance of exactly ``target``."""

    source: type[Exception]
    target: type[SessionError]
    build: Callable[[Exception, str], SessionError]
    chain: bool
    """Keep the original as ``__cause__`` (only when its text cannot hold input or secrets)."""


def _prefixed(what: str, text: str) -> str:
    return f"{what}: {text}" if what else text


def redis_text(exc: BaseException) -> str:
    """``TypeName: message`` of a redis-py error, safe to show: no URL credentials, no command
    arguments (Redis echoes the first ones of an unknown command), at most 200 characters."""
    text = _ECHOED_ARGS.sub("", _CREDENTIALS.sub("***@", str(exc)))
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def validation_text(exc: pydantic.ValidationError) -> str:
    """Every problem of a pydantic error as ``location: message`` (never the input)."""
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        problems.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(problems)


def _store(exc: Exception, what: str) -> SessionError:
    error = StoreUnavailable(_prefixed(what or "redis", redis_text(exc)))
    error.redis_error = exc  # an attribute, not __cause__: tracebacks never print its text
    return error


def _config_named(exc: Exception, what: str) -> SessionError:
    return ConfigError(_prefixed(what, f"unusable ({type(exc).__name__})"))


def _config_validation(exc: Exception, what: str) -> SessionError:
    assert isinstance(exc, pydantic.ValidationError)
    return ConfigError(_prefixed(what or "invalid settings", validation_text(exc)))


def _config_settings(exc: Exception, what: str) -> SessionError:
    return ConfigError(_prefixed(what or "invalid settings", "cannot be parsed (expected JSON)"))


RULES: Final[tuple[Rule, ...]] = (
    Rule(pydantic_settings.SettingsError, ConfigError, _config_settings, chain=False),
    Rule(pydantic.ValidationError, ConfigError, _config_validation, chain=False),
    Rule(jwt.exceptions.PyJWKError, ConfigError, _config_named, chain=False),
    Rule(jwt.PyJWTError, ConfigError, _config_named, chain=False),
    Rule(redis.exceptions.RedisClusterException, StoreUnavailable, _store, chain=False),
    Rule(redis.RedisError, StoreUnavailable, _store, chain=False),
)


class map_exceptions:
    """Map the exceptions of the block by ``rules`` (first match); ``what`` prefixes the
    message (e.g. ``"could not publish"``; a rule has its own default)."""

    __slots__ = ("_rules", "_sources", "_what")

    def __init__(self, what: str = "", rules: Sequence[Rule] = RULES) -> None:
        self._what = what
        self._rules = tuple(rules)
        self._sources = tuple(rule.source for rule in self._rules)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in the order they are tried."""
        return self._rules

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, SessionError) or not isinstance(exc, self._sources):
            return  # nothing raised, ours already, or not ours to map: it propagates unchanged
        raise self.mapped(exc)

    def mapped(self, exc: BaseException) -> BaseException:
        """What ``exc`` becomes (itself when no rule names it), ``__cause__`` set as the rule
        says: for a caller that hands the error on instead of raising it (the runners)."""
        for rule in self._rules:
            if isinstance(exc, rule.source) and not isinstance(exc, SessionError):
                mapped = rule.build(exc, self._what)
                mapped.__cause__ = exc if rule.chain else None
                mapped.__suppress_context__ = True
                return mapped
        return exc
