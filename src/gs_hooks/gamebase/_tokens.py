"""The token verifier's parts: the login input check, the refusals it caches, and the flight of one request.

:func:`login_input` checks a login's user id and token locally (no platform call); :class:`Refusal` is a
definitive "no" from Gamebase as the negative cache keeps it (a fresh error is raised from it each time);
:class:`Flight` is one verification request in the air, joined by every login with the same (user, token).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Final, Literal

import anyio
import msgspec

from .._config import Secret
from .._exceptions import (
    InvalidLoginError,
    LoginRefusedError,
    MemberNotValidError,
    PlatformError,
    PlatformUnavailableError,
    TokenInvalidError,
)
from .._ids import player_id, token_problem
from ._protocol import ResultClass, TokenInfo, classify

__all__ = ["MEMBER_STATES", "Flight", "Refusal", "copy_error", "login_input", "refusal_for"]

MEMBER_STATES: Final = {
    "D": "withdrawn",
    "B": "banned",
    "T": "ban-suspended",
    "P": "ban-suspended",
    "M": "missing account",
}


class Refusal(msgspec.Struct, frozen=True):
    """A definitive "no" from Gamebase, kept in the negative cache; a fresh error is raised each time."""

    kind: Literal["token", "member"]
    message: str
    code: int | None = None
    valid: str | None = None

    def error(self) -> LoginRefusedError:
        """A fresh error for this refusal."""
        if self.kind == "token":
            return TokenInvalidError(self.message, code=self.code)
        return MemberNotValidError(self.message, valid=self.valid, code=self.code)


class Flight:
    """One request in the air, and the logins waiting for its answer (none for a lone leader).

    Why each waiter gets its own bare future on asyncio (an anyio event elsewhere), and the flight carries its key
    and generation itself: in a login storm that outpaces Gamebase, thousands of logins wait at once, and what each
    holds is what CPython's full collections scan. An ``anyio.Event`` per flight and a ``(key, flight, generation)``
    tuple in the queue made a waiting login hold twelve objects of ours the collector tracks (the anyio event, the
    asyncio event and its deque, six coroutine frames, the tuple...) and cost ~2 µs to make; now it holds three (the
    flight and two coroutine frames: ``tests/gamebase/test_gamebase_storm_budget.py``, ``python -m bench.loop``).
    One future per waiter, not one shared: a cancelled waiter cancels only its own.

    Args:
        key: the (user, token) asked about.
        generation: the user's generation when the request was made (a later ``forget`` bumps it: the answer is
            then not cached).
    """

    __slots__ = ("_more", "_waiter", "error", "finished", "generation", "key", "refusal", "result")

    def __init__(self, key: tuple[str, str], generation: int = 0) -> None:
        self.key = key
        self.generation = generation
        self.finished = False
        self._waiter: asyncio.Future[None] | anyio.Event | None = None  # the first waiter (the common case: one)
        self._more: list[asyncio.Future[None] | anyio.Event] | None = None  # the others
        self.result: TokenInfo | None = None
        self.refusal: Refusal | None = None
        self.error: PlatformError | None = None

    def wait(self) -> Awaitable[None]:
        """What a waiter awaits until :meth:`finish` (done at once when finished already). Not a coroutine: on
        asyncio it is the waiter's own future, awaited with no frame between."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # trio
            loop = None
        waiter: asyncio.Future[None] | anyio.Event
        if loop is not None:
            waiter = loop.create_future()
            awaitable: Awaitable[None] = waiter
        else:
            waiter = anyio.Event()
            awaitable = waiter.wait()
        if self._waiter is None:
            self._waiter = waiter
        elif self._more is None:
            self._more = [waiter]
        else:
            self._more.append(waiter)
        if self.finished:
            self.finish()
        return awaitable

    def finish(self) -> None:
        """Mark the flight finished and wake every waiter."""
        self.finished = True
        first, more = self._waiter, self._more
        self._waiter = self._more = None
        if first is not None:
            _wake(first)
        for waiter in more or ():
            _wake(waiter)


def _wake(waiter: asyncio.Future[None] | anyio.Event) -> None:
    if isinstance(waiter, asyncio.Future):
        if not waiter.done():  # a cancelled waiter's future is done already
            waiter.set_result(None)
    else:
        waiter.set()


def copy_error(err: PlatformError) -> PlatformError:
    """A fresh copy of a platform error (each waiter of a flight raises its own)."""
    if isinstance(err, PlatformUnavailableError):
        return PlatformUnavailableError(
            err.platform, err.code, err.message, transaction_id=err.transaction_id, retry_after_s=err.retry_after_s
        )
    return PlatformError(err.platform, err.code, err.message, transaction_id=err.transaction_id, setting=err.setting)


def login_input(user_id: object, access_token: object) -> tuple[str, str]:
    """Check a login's user id and access token locally, before any platform call.

    Args:
        user_id: a player id (``str``, or an ``int``: normalised to its decimal string).
        access_token: a ``str`` or a :class:`~gs_hooks.Secret`.

    Returns:
        (user id, token) in canonical form.

    Raises:
        InvalidLoginError: the user id is not a player id (missing, wrong type, empty, ``/``, dots...; see
            ``gs_hooks._ids``), or the token is missing, not a string, empty, longer than ``MAX_TOKEN_LEN``, or holds
            whitespace, a control or non-ASCII character, ``/`` or ``\\``, or is only dots. The message never
            holds the token.
    """
    if user_id is None:
        raise InvalidLoginError("login refused: the user id is missing", field="user_id")
    try:
        user = player_id(user_id, what="user id")
    except (TypeError, ValueError) as exc:
        raise InvalidLoginError(f"login refused: {exc}", field="user_id") from exc
    if isinstance(access_token, str):
        token = str.__str__(access_token)
    elif isinstance(access_token, Secret):
        token = access_token.get_secret_value()
    elif access_token is None:
        raise InvalidLoginError("login refused: the access token is missing", field="access_token")
    else:
        raise InvalidLoginError(
            f"login refused: the access token must be a string, not {type(access_token).__name__}",
            field="access_token",
        )
    problem = token_problem(token) if isinstance(token, str) else "it is not a string"
    if problem is not None:
        raise InvalidLoginError(f"login refused: the access token is not allowed: {problem}", field="access_token")
    return user, token


def refusal_for(err: PlatformError) -> Refusal | None:
    """The refusal a platform error means (an invalid or expired token, a member not valid), else None."""
    kind = classify(err.code)
    if kind is ResultClass.TOKEN_INVALID:
        return Refusal("token", "the Gamebase access token is invalid", code=err.code)
    if kind is ResultClass.TOKEN_EXPIRED:
        return Refusal("token", "the Gamebase access token has expired", code=err.code)
    if kind is ResultClass.MEMBER_NOT_VALID:
        return Refusal("member", "Gamebase reports the member banned, withdrawn or missing", code=err.code)
    if kind is ResultClass.NO_SUCH_MEMBER:
        return Refusal("member", "Gamebase knows no such member", code=err.code, valid="M")
    return None
