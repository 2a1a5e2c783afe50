"""Session ids and Redis key names (pure; the layout itself is ``sessionsvc._redis.layout``).

A user's keys share the hash tag ``{u:<tag>}`` where ``<tag>`` is the unpadded base64url of the
UTF-8 ``sub``: ``}``, ``:`` or ``{`` in a user id cannot break the tag, and every user lands in
one slot. The **session id carries the same tag**: ``sid = <tag>.<22 random base64url chars>``
(128 random bits). So ``logout(sid)`` and ``get_session(sid)`` find the session's keys from the
sid alone, in one round trip, with no sid → sub lookup key (which would live in a third slot).
The sub is already a claim of every token that carries the sid, so the sid reveals nothing new.

An identity provider's back-channel logout names *its* session (issuer, ``sid``): a login that
records it (``login(..., idp_issuer=, idp_sid=)``) adds our sid to that IdP session's index
``<ns>:idp:{<h>}`` (``SessionKeys.idp``), a set in a slot of its own, written before the session.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from sessionsvc._redis import layout
from sessionsvc.encoding import StrictDecodeError, b64url_decode, b64url_encode
from sessionsvc.errors import InvalidArgument, SessionNotFound
from sessionsvc.revocation.log import RevKeys
from sessionsvc.tokens.claims import id_claim_problem
from sessionsvc.tokens.issuer import new_id

__all__ = [
    "MAX_IDP_CHARS",
    "MAX_SUB_BYTES",
    "SessionKeys",
    "idp_field",
    "idp_pair",
    "is_session_id",
    "new_session_id",
    "parse_session_id",
    "sub_of",
    "user_tag",
]

MAX_SUB_BYTES: Final = 128  # the sid then stays within the 256 characters a sid claim may have
MAX_IDP_CHARS: Final = 256  # an IdP's issuer, and its session id (its ``sid``)
_SID: Final = re.compile(r"([A-Za-z0-9_-]{2,171})\.[A-Za-z0-9_-]{22}")


def user_tag(sub: str) -> str:
    """The key-safe encoding of ``sub``; ``InvalidArgument`` for a sub that no token could carry
    (``claims.id_claim_problem``: empty, unprintable) or of more than 128 bytes of UTF-8."""
    problem = id_claim_problem(sub)
    if problem is not None:
        raise InvalidArgument(f"sub {problem}")
    raw = sub.encode("utf-8")  # printable: no lone surrogates
    if len(raw) > MAX_SUB_BYTES:
        raise InvalidArgument(f"sub must be at most {MAX_SUB_BYTES} bytes of UTF-8")
    return b64url_encode(raw)


def new_session_id(sub: str) -> str:
    """A new session id for ``sub``: its tag, a dot, 128 random bits."""
    return f"{user_tag(sub)}.{new_id()}"


def sub_of(session_id: object) -> str:
    """The ``sub`` a session id belongs to; ``SessionNotFound`` if it is not one of our ids."""
    return parse_session_id(session_id)[0]


def parse_session_id(session_id: object) -> tuple[str, str]:
    """The ``sub`` and the tag of a session id; ``SessionNotFound`` if it is not one of ours."""
    match = _SID.fullmatch(session_id) if isinstance(session_id, str) else None
    if match is None:
        raise SessionNotFound("not a session id")
    tag = match.group(1)
    try:  # canonical base64url only (strict), at most 171 characters: at most 128 bytes
        sub = b64url_decode(tag).decode("utf-8")
    except (StrictDecodeError, UnicodeDecodeError):
        raise SessionNotFound("not a session id") from None
    if id_claim_problem(sub) is not None:  # with the above: ``user_tag(sub) == tag``
        raise SessionNotFound("not a session id")
    return sub, tag


def is_session_id(value: object) -> bool:
    """Is ``value`` one of our session ids (``parse_session_id`` accepts it)?"""
    try:
        parse_session_id(value)
    except SessionNotFound:
        return False
    return True


def idp_field(name: str, value: object) -> str:
    """``value`` if it can name an identity provider's issuer or session (``name``, for the
    message): a non-empty string of at most 256 characters with no control character (nor a
    lone surrogate, which UTF-8 cannot carry); else ``InvalidArgument``."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string")
    if not value or len(value) > MAX_IDP_CHARS:
        raise InvalidArgument(f"{name} must be 1 to {MAX_IDP_CHARS} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise InvalidArgument(f"{name} must hold no control character")
    return value


def idp_pair(issuer: object, idp_sid: object) -> tuple[str, str] | None:
    """The IdP session a login names, checked (``idp_field``): ``None`` when neither is given,
    ``InvalidArgument`` when only one is."""
    if issuer is None and idp_sid is None:
        return None
    if issuer is None or idp_sid is None:
        raise InvalidArgument("idp_issuer and idp_sid go together: give both or neither")
    return idp_field("idp_issuer", issuer), idp_field("idp_sid", idp_sid)


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """Key names: per-user keys under the tag ``{u:<tag>}``, revocations under ``{rev}``."""

    namespace: str = "ss"

    @property
    def rev(self) -> RevKeys:
        """The ``{rev}`` keys (revocation state, log, epoch)."""
        return RevKeys(self.namespace)

    def user_prefix(self, tag: str) -> str:
        """``<namespace>:{u:<tag>}:``, the prefix of every key of the user with this tag."""
        return layout.user_prefix(self.namespace, tag)

    def index_of(self, tag: str) -> str:
        """The index of the user with this tag (``layout.INDEX`` after the user prefix)."""
        return layout.user_prefix(self.namespace, tag) + layout.INDEX

    def fence_of(self, tag: str) -> str:
        """The fence of the user with this tag (Redis Cluster: ``layout.FENCE``)."""
        return layout.user_prefix(self.namespace, tag) + layout.FENCE

    def session_of(self, tag: str, session_id: str) -> str:
        """The session hash of ``session_id`` of the user with this tag (the scripts derive
        it from the index key with the same ``layout`` strings)."""
        return layout.user_prefix(self.namespace, tag) + layout.SESSION + session_id

    def idp(self, issuer: str, idp_sid: str) -> str:
        """The index of one identity provider's session (its issuer and ``sid``, checked by
        ``idp_pair``): a set of our session ids, ``<namespace>:idp:{<h>}`` where ``<h>`` is the
        first 32 hex characters of SHA-256(issuer, a newline, sid) — neither holds a newline,
        so no two pairs share one. Its own hash slot: on Redis Cluster a step of its own."""
        digest = hashlib.sha256(f"{issuer}\n{idp_sid}".encode()).hexdigest()[:32]
        return f"{self.namespace}:idp:{{{digest}}}"

    def index(self, sub: str) -> str:
        """The user's index: a sorted set sid → expiry, with a TTL; pruned on every read."""
        return self.index_of(user_tag(sub))

    def session(self, sub: str, session_id: str) -> str:
        """The session hash of ``session_id`` of ``sub``."""
        return self.session_of(user_tag(sub), session_id)
