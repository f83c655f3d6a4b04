"""The login-token verifier: caches, single-flight, a concurrency cap and a failure policy.

Strategy: a cache hit is one dict lookup and one clock read, with no await inside (the hot path of a login
storm's second wave). A miss joins the *flight* of its (user, token) if one is in the air, so N concurrent
logins with the same token cost one request; otherwise it becomes the flight's leader, waits for a slot of the
:class:`Slots` cap and asks Gamebase. Definitive refusals (invalid/expired token, member not valid)
go to a short negative cache; Gamebase being unreachable is never cached. ``forget(user_id)`` drops a user's
entries and bumps the user's generation so a flight already in the air does not cache its answer.

Failure policy when Gamebase is unreachable (:class:`~gs_hooks.PlatformUnavailableError`): ``fail_closed``
raises; ``allow_cached`` accepts an expired positive verification of the same (user, token) still in memory
(kept up to :data:`STALE_KEEP_S`), with a warning.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Final, Literal

import anyio
import anyio.abc
import anyio.lowlevel

from .._clock import Clock, SystemClock
from .._config import _DEFAULT_VERIFY_CONCURRENCY, Secret
from .._exceptions import (
    PlatformError,
    PlatformUnavailableError,
    ProtocolError,
)
from .._health import ComponentHealth
from .._ids import lookup_key
from ._client import GamebaseClient
from ._protocol import PLATFORM, TokenInfo
from ._slots import Slots
from ._tokens import MEMBER_STATES, Flight, Refusal, copy_error, login_input, refusal_for
from ._verifier_health import FAILING_WINDOW_S, FailureStreak

__all__ = ["FAILING_WINDOW_S", "STALE_KEEP_S", "TokenVerifier"]

log = logging.getLogger("gs_hooks.gamebase")

STALE_KEEP_S: Final = 86_400.0
"""How long an expired positive verification stays usable under the ``allow_cached`` policy."""


class TokenVerifier:
    """Verifies Gamebase access tokens for logins (also a :class:`~gs_hooks.Hooks` component, see :meth:`run`).

    Args:
        client: the Gamebase client.
        clock: the clock cache lifetimes are measured on.
        concurrency: at most this many verification requests in flight towards Gamebase.
        ttl_s: lifetime of a positive verification.
        negative_ttl_s: lifetime of a refusal (invalid token, member not valid).
        failure_policy: ``fail_closed`` or ``allow_cached`` (see the module docstring).
        max_entries: the positive cache's size bound (oldest entries are dropped past it).

    Attributes:
        hits / misses / requests: cache hits, misses, and verification requests sent (leaders).
    """

    def __init__(
        self,
        client: GamebaseClient,
        *,
        clock: Clock | None = None,
        concurrency: int = _DEFAULT_VERIFY_CONCURRENCY,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 5.0,
        failure_policy: Literal["fail_closed", "allow_cached"] = "fail_closed",
        max_entries: int = 100_000,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.client = client
        self.clock: Clock = clock or client.clock or SystemClock()
        self._time = self.clock.time
        self.limiter = Slots(concurrency)
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.failure_policy = failure_policy
        self.max_entries = max_entries
        # (user, token) -> (expires_at, info)
        self._positive: dict[tuple[str, str], tuple[float, TokenInfo]] = {}
        self._negative: dict[tuple[str, str], tuple[float, Refusal]] = {}
        self._flights: dict[tuple[str, str], Flight] = {}
        self._queue: deque[Flight] = deque()
        self._tg: anyio.abc.TaskGroup | None = None
        self._workers = 0
        self._idle: deque[anyio.Event] = deque()  # one event per idle worker, oldest first
        # user -> its cached tokens (a dict used as an ordered set: a dict of strings is not tracked by the garbage
        # collector, a set always is; a login storm's cache must not drive full collections, see bench.loop)
        self._by_user: dict[str, dict[str, None]] = {}
        self._generation: dict[str, int] = {}
        self.hits = 0
        self.misses = 0
        self.requests = 0
        self.name = "gamebase-verifier"
        self._streak = FailureStreak(self.name, self._time, lambda: self.client.answered)  # for health()

    def __repr__(self) -> str:
        return (
            f"TokenVerifier(cached={len(self._positive)}, refused={len(self._negative)}, "
            f"in_flight={len(self._flights)}, policy={self.failure_policy!r})"
        )

    @property
    def concurrency(self) -> int:
        """The cap on concurrent verification requests."""
        return self.limiter.total

    @property
    def in_flight(self) -> int:
        """Verifications asked of Gamebase and not answered yet (one per distinct user and token)."""
        return len(self._flights)

    def cached_nowait(self, user_id: str | int, access_token: str) -> TokenInfo | None:
        """The cached, unexpired verification of (user, token), or None. No IO."""
        entry = self._positive.get((lookup_key(user_id, what="user id"), access_token))
        if entry is not None and entry[0] > self._time():
            return entry[1]
        return None

    async def verify(self, user_id: str, access_token: str | Secret) -> TokenInfo:
        """Verify a token: the member if the token is valid and ``member.valid == "Y"``.

        Args:
            user_id: the Gamebase user id (an ``int`` is normalised to its decimal string).
            access_token: the access token.

        Raises:
            InvalidLoginError: the user id or token cannot be one (see :func:`login_input`); nothing is sent.
            TokenInvalidError: the token is invalid or expired.
            MemberNotValidError: the member is banned, withdrawn or missing.
            PlatformUnavailableError: Gamebase is unreachable (and no cached verification is allowed).
            PlatformError: Gamebase refused the call for another reason (e.g. our secret key is wrong).
        """
        if type(access_token) is str and type(user_id) is str:
            key = (user_id, access_token)
        else:
            key = login_input(user_id, access_token)
        entry = self._positive.get(key)
        if entry is not None and entry[0] > self._time():  # only a checked key is ever cached
            self.hits += 1
            return entry[1]
        # A miss, in this same coroutine (no helper coroutine: one frame less held by each login waiting in a storm)
        if entry is None:
            login_input(*key)  # checked before any cache lookup or request: an invalid key is never cached
        self._check_refused(key)
        self.misses += 1
        while True:
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = Flight(key, self._generation.get(key[0], 0))
                if self._tg is not None:
                    self._dispatch(flight)
                else:
                    await self._lead(flight)
            if not flight.finished:
                await flight.wait()
            result = self._outcome(key, flight)
            if result is not None:
                return result
            # The request was abandoned (its task was cancelled): ask again.

    def _check_refused(self, key: tuple[str, str]) -> None:
        """Raise the cached refusal of ``key`` if one is live (a hit); drop an expired one."""
        neg = self._negative.get(key)
        if neg is not None:
            if neg[0] > self._time():
                self.hits += 1
                raise neg[1].error()
            del self._negative[key]
            self._untrack(key)

    def _outcome(self, key: tuple[str, str], flight: Flight) -> TokenInfo | None:
        if flight.result is not None:
            return flight.result
        if flight.refusal is not None:
            raise flight.refusal.error()
        if flight.error is not None:
            stale = self._stale(key, flight.error)
            if stale is not None:
                return stale
            raise copy_error(flight.error) from flight.error
        return None

    async def _lead(self, flight: Flight) -> None:
        """Standalone mode: the first caller of a (user, token) asks Gamebase itself, within a slot."""
        try:
            async with self.limiter:
                await self._resolve(flight)
        finally:
            self._settle(flight)

    def _dispatch(self, flight: Flight) -> None:
        """Running mode: queue the request for the verifier's worker tasks (at most ``concurrency``).

        Workers stay while the verifier runs: an idle one is woken (one event), which costs less than starting
        a task per request when logins come one after another (``bench.gamebase``, worker-loop figures).
        """
        self._queue.append(flight)
        if self._idle:
            self._idle.popleft().set()
        elif self._workers < self.limiter.total and self._tg is not None:
            self._workers += 1
            self._tg.start_soon(self._worker)

    async def _worker(self) -> None:
        queue = self._queue
        idle = self._idle
        try:
            while True:
                while queue:
                    flight = queue.popleft()
                    try:
                        await self._resolve(flight)
                    finally:
                        self._settle(flight)
                    if queue:
                        # One answer handled, the next request not sent yet: let the loop run what is ready (the
                        # waiters just woken, the game's tick). Without it, one loop step handled an answer *and*
                        # sent the next request, for every worker whose answer came in together: the longest steps
                        # of a login storm, ~1.5x plain aiohttp's (``python -m bench.loop``).
                        await anyio.lowlevel.checkpoint()
                wake = anyio.Event()
                idle.append(wake)
                try:
                    await wake.wait()
                except BaseException:
                    if not wake.is_set():
                        idle.remove(wake)
                    raise
        finally:
            self._workers -= 1

    def _settle(self, flight: Flight) -> None:
        key = flight.key
        if self._flights.get(key) is flight:
            del self._flights[key]
        flight.finish()

    async def _resolve(self, flight: Flight) -> None:
        """Ask Gamebase and record the answer on the flight (and in the caches)."""
        key = flight.key
        generation = flight.generation
        user_id, token = key
        self.requests += 1
        try:
            info = await self.client.verify_token(user_id, token)
        except PlatformError as err:
            refusal = refusal_for(err)
            if refusal is None:
                flight.error = err
                self._request_done(err)
                return
            self._request_done(None)
            self._refuse(key, flight, refusal, generation)
            return
        except ProtocolError as exc:  # not the token endpoint's answer about this user: never a login
            log.error("token verification of user %r: %s", user_id, exc)
            flight.error = PlatformError(PLATFORM, None, f"verify_token: {exc}")
            return
        except Exception as exc:  # a bug must not leave the waiters hanging
            log.exception("token verification of user %r failed unexpectedly", user_id)
            flight.error = PlatformError(PLATFORM, None, f"verify_token failed unexpectedly: {type(exc).__name__}")
            self._request_done(flight.error)
            return
        self._request_done(None)
        valid = info.member.valid
        if valid != "Y":
            state = MEMBER_STATES.get(valid, f"state {valid!r}")
            message = f"Gamebase member {user_id!r} is not valid: {state}"
            self._refuse(key, flight, Refusal("member", message, valid=valid), generation)
            return
        flight.result = info
        if self._generation.get(user_id, 0) == generation:
            self._store(key, info)

    def _request_done(self, error: PlatformError | None) -> None:
        """Remember how the latest request to Gamebase ended (a token or member refusal is a proper answer)."""
        self._streak.done(error)

    def health(self) -> ComponentHealth:
        """Readiness: see :meth:`FailureStreak.health <gs_hooks.gamebase._verifier_health.FailureStreak.health>`.
        No IO; ok before any request."""
        return self._streak.health()

    def _refuse(self, key: tuple[str, str], flight: Flight, refusal: Refusal, generation: int) -> None:
        flight.refusal = refusal
        if self._generation.get(key[0], 0) == generation:
            self._refused(key, refusal)

    # -- component (hooks runs the verifier so its requests go through a few long-lived worker tasks) ---------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Host the worker tasks until cancelled (without it, each first caller asks Gamebase itself).

        Why: in a login storm, a few long-lived tasks making the requests cost measurably less CPU than
        hundreds of login tasks each making its own (``bench.gamebase``).
        """
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                try:
                    await anyio.sleep_forever()
                finally:
                    # From now on callers ask Gamebase themselves; queued requests go back to their callers.
                    self._tg = None
                    self._abandon_queue()
        finally:
            self._tg = None
            self._abandon_queue()

    def _abandon_queue(self) -> None:
        while self._queue:
            self._settle(self._queue.popleft())

    async def aclose(self) -> None:
        """Nothing to flush."""

    def _store(self, key: tuple[str, str], info: TokenInfo) -> None:
        positive = self._positive
        positive.pop(key, None)  # re-insert at the end: insertion order is age order
        positive[key] = (self._time() + self.ttl_s, info)
        self._by_user.setdefault(key[0], {})[key[1]] = None
        if len(positive) > self.max_entries:
            self._evict()

    def _refused(self, key: tuple[str, str], refusal: Refusal) -> None:
        """Remember a refusal; drop the expired ones (and the oldest past ``max_entries``).

        Every refusal lives ``negative_ttl_s``, so insertion order is expiry order: pruning from the front is
        O(1) per refusal, and a stream of distinct bad tokens keeps only the live ones.
        """
        negative = self._negative
        negative.pop(key, None)
        now = self._time()
        negative[key] = (now + self.negative_ttl_s, refusal)
        self._by_user.setdefault(key[0], {})[key[1]] = None
        while negative:
            oldest = next(iter(negative))
            if negative[oldest][0] > now and len(negative) <= self.max_entries:
                break
            del negative[oldest]
            self._untrack(oldest)

    def _untrack(self, key: tuple[str, str]) -> None:
        """Forget that ``key``'s user has a cached entry for that token, unless a positive entry remains."""
        if key in self._positive or key in self._negative:
            return
        tokens = self._by_user.get(key[0])
        if tokens is not None:
            tokens.pop(key[1], None)
            if not tokens:
                del self._by_user[key[0]]

    def _evict(self) -> None:
        now = self._time()
        positive = self._positive
        target = int(self.max_entries * 0.9)
        for key in list(positive):
            if len(positive) <= target:
                break
            del positive[key]
            self._untrack(key)
        for key in [k for k, (exp, _) in self._negative.items() if exp <= now]:
            del self._negative[key]
            self._untrack(key)

    def _stale(self, key: tuple[str, str], err: PlatformError) -> TokenInfo | None:
        if self.failure_policy != "allow_cached" or not isinstance(err, PlatformUnavailableError):
            return None
        entry = self._positive.get(key)
        if entry is None or entry[0] + STALE_KEEP_S - self.ttl_s < self._time():
            return None
        log.warning(
            "Gamebase unreachable (%s); accepting the cached verification of user %r (policy allow_cached)",
            err.message,
            key[0],
        )
        return entry[1]

    def forget(self, user_id: str | int) -> int:
        """Drop every cached verification (positive and negative) of a user; in-flight answers are not cached.

        Args:
            user_id: the user (an ``int`` is normalised to its decimal string).

        Returns:
            The number of cache entries dropped.
        """
        if type(user_id) is not str:
            user_id = lookup_key(user_id, what="user id")
        self._generation[user_id] = self._generation.get(user_id, 0) + 1
        tokens = self._by_user.pop(user_id, {})
        dropped = 0
        for token in tokens:
            key = (user_id, token)
            if self._positive.pop(key, None) is not None:
                dropped += 1
            if self._negative.pop(key, None) is not None:
                dropped += 1
        return dropped

    def clear(self) -> None:
        """Drop every cached verification."""
        for user_id in list(self._by_user):
            self.forget(user_id)
        self._positive.clear()
        self._negative.clear()
