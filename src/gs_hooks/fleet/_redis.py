"""The Redis connection of fleet mode: start-up checks, scripts by SHA, errors mapped to ours, health.

Strategy: redis-py's own retries are off (``Retry(NoBackoff(), 0)``): a retried XADD or INCR would write twice,
and a hidden reconnect would hide the moment a stream reader must check for lost data. Every fleet loop catches
:class:`FleetError`, waits a jittered backoff (:meth:`FleetRedis.pause`) and tries again; the connection pool
reconnects on the next command. Scripts are called with EVALSHA and loaded again when Redis answers NOSCRIPT (a
restarted Redis has an empty script cache).

``redis`` is an optional dependency (the ``fleet`` extra), imported when fleet mode starts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import sniffio

from .._backoff import backoff_delay
from .._clock import Clock, SystemClock
from .._config import FleetConfig, redact_url
from .._exceptions import ConfigError, GsHooksError
from .._health import ComponentHealth
from .._ratelog import RateLimitedLog
from ._ccu_lua import CCU_SCRIPTS
from ._lua import ALL_SCRIPTS, Script

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["INSTALL_HINT", "FencedError", "FleetError", "FleetRedis", "import_redis"]

log = logging.getLogger("gs_hooks.fleet")

INSTALL_HINT = "pip install redis hiredis (or the fleet extra: pip install -e '.[fleet]' from a checkout)"
Arg = str | bytes | int | float
MAX_CONNECTIONS = 32
"""Connections per process at most. More concurrent commands (a burst of logins) wait for a free connection
(up to the socket timeout) instead of failing with "too many connections"; blocking stream reads hold one each."""
Call = tuple[Script, Sequence[str], Sequence[Arg]]


class FleetError(GsHooksError):
    """Redis could not be reached, timed out, or refused a fleet command (the message never holds a password)."""


class FencedError(FleetError):
    """A fenced write was refused: the leader lease is not held by the caller any more."""


def import_redis() -> ModuleType:
    """The ``redis.asyncio`` module.

    Raises:
        ConfigError: the ``redis`` package is not installed (the message says how to install it).
    """
    try:
        import redis.asyncio
    except ImportError:
        raise ConfigError(
            "GS_HOOKS_REDIS_URL", f"fleet mode needs the redis package, which is not installed: {INSTALL_HINT}"
        ) from None
    return redis.asyncio


def refuse_trio() -> None:
    """Raise ConfigError unless running on asyncio (redis.asyncio is asyncio-only)."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return
    if library != "asyncio":
        raise ConfigError(
            "GS_HOOKS_REDIS_URL",
            f"fleet mode runs on asyncio only (its Redis client, redis.asyncio, has no {library} support); "
            "run the game server on asyncio, or unset GS_HOOKS_REDIS_URL for one process on trio",
        )


class FleetRedis:
    """One fleet process's Redis client.

    Args:
        config: the fleet settings.
        clock: for backoff sleeps (inject a FakeClock in tests).
        rng: the jitter source.

    Raises:
        ConfigError: the ``redis`` package is missing, or the running backend is not asyncio.
    """

    def __init__(self, config: FleetConfig, *, clock: Clock | None = None, rng: random.Random | None = None) -> None:
        if config.url is None:
            raise ConfigError("GS_HOOKS_REDIS_URL", "fleet mode is off (no Redis URL): there is nothing to connect to")
        refuse_trio()
        aioredis = import_redis()
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.config = config
        self.clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._url = redact_url(config.url)
        self._password = config.password.get_secret_value() if config.password else None
        pool = aioredis.BlockingConnectionPool.from_url(
            config.url,
            max_connections=MAX_CONNECTIONS,
            timeout=config.socket_timeout_s,
            password=self._password,
            socket_timeout=config.socket_timeout_s,
            socket_connect_timeout=config.socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
        )
        self.client: Redis = aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
        self._errors = import_redis_exceptions()
        self._state: tuple[str | None, float] = (None, self.clock.time())
        self._log = RateLimitedLog(log, interval_s=30.0)
        self._closed = False

    # -- start-up ------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the server and load the scripts.

        Raises:
            ConfigError: Redis evicts keys (``maxmemory-policy`` is not ``noeviction``), or this is not asyncio.
            FleetError: Redis cannot be reached (the caller may go on and retry).
        """
        refuse_trio()  # the client may have been made outside any event loop
        try:
            reply = await self._raw("CONFIG", "GET", "maxmemory-policy")
        except self._errors.ResponseError as exc:  # CONFIG renamed or refused on a managed Redis
            log.warning(
                "fleet: cannot read Redis's maxmemory-policy (%s); make sure it is 'noeviction': an evicting "
                "Redis drops bans, leases and CCU counts without an error",
                self.scrub(str(exc)),
            )
        except (self._errors.RedisError, OSError) as exc:
            raise self._unavailable("start-up check", exc) from exc
        else:
            self._check_policy(reply)
        await self.load_scripts()
        self._ok()

    def _check_policy(self, reply: Any) -> None:
        items = list(reply.items()) if isinstance(reply, dict) else list(zip(reply[::2], reply[1::2], strict=True))
        for name, value in items:
            if _text(name) == "maxmemory-policy" and _text(value) != "noeviction":
                raise ConfigError(
                    "GS_HOOKS_REDIS_URL",
                    f"the Redis at {self._url} has maxmemory-policy {_text(value)!r}: fleet mode needs 'noeviction' "
                    "(an evicting Redis drops bans, leases and CCU counts without an error); set "
                    "`maxmemory-policy noeviction` in redis.conf",
                )

    async def load_scripts(self) -> None:
        """SCRIPT LOAD every fleet script. Raises FleetError when Redis cannot be reached."""
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for script in (*ALL_SCRIPTS, *CCU_SCRIPTS):
                    pipe.execute_command("SCRIPT", "LOAD", script.text)
                await pipe.execute()
        except (self._errors.RedisError, OSError) as exc:
            raise self._unavailable("loading scripts", exc) from exc

    def _check_open(self) -> None:
        """A task still running after :meth:`aclose` would open a connection nothing closes: refused as a
        connection error (mapped like any other)."""
        if self._closed:
            raise self._errors.ConnectionError("the fleet's Redis client is closed")

    async def _raw(self, *args: Arg) -> Any:
        self._check_open()
        return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]

    # -- commands ------------------------------------------------------------------------------------------------

    async def call(self, *args: Arg) -> Any:
        """One Redis command (``execute_command``), with errors mapped to :class:`FleetError`."""
        try:
            out = await self._raw(*args)
        except (self._errors.RedisError, OSError) as exc:
            raise self._map(str(args[0]), exc) from exc
        self._ok()
        return out

    async def script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run a script by SHA (loading it again on NOSCRIPT).

        Raises:
            FencedError: a fenced script found the lease held by another.
            FleetError: Redis could not be reached or refused the script.
        """
        try:
            try:
                out = await self._raw("EVALSHA", script.sha, len(keys), *keys, *args)
            except self._errors.NoScriptError:
                await self._raw("SCRIPT", "LOAD", script.text)
                out = await self._raw("EVALSHA", script.sha, len(keys), *keys, *args)
        except (self._errors.RedisError, OSError) as exc:
            raise self._map(script.name, exc) from exc
        self._ok()
        return out

    async def scripts(self, calls: Sequence[Call]) -> list[Any]:
        """Run several scripts in one pipeline (one round trip), in order; results in the same order.

        Calls Redis answered NOSCRIPT for are run again after loading the scripts.

        Raises:
            FencedError / FleetError: as :meth:`script`, for the first failed call (the others may have run).
        """
        results = await self._pipeline(calls)
        redo = [i for i, r in enumerate(results) if isinstance(r, self._errors.NoScriptError)]
        if redo:
            await self.load_scripts()
            again = await self._pipeline([calls[i] for i in redo])
            for i, r in zip(redo, again, strict=True):
                results[i] = r
        for (script, _, _), r in zip(calls, results, strict=True):
            if isinstance(r, BaseException):
                raise self._map(script.name, r) from r
        self._ok()
        return results

    async def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        try:
            self._check_open()
            async with self.client.pipeline(transaction=False) as pipe:
                for script, keys, args in calls:
                    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                return list(await pipe.execute(raise_on_error=False))
        except (self._errors.RedisError, OSError) as exc:
            raise self._map(calls[0][0].name if calls else "pipeline", exc) from exc

    async def read_blocking(self, epoch_key: str, stream: str, after: str, count: int, block_ms: int) -> Any:
        """``GET epoch_key`` and ``XREAD COUNT count BLOCK block_ms STREAMS stream after`` in one round trip.

        Returns:
            (the epoch or None, XREAD's reply or None).
        """
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.execute_command("GET", epoch_key)
                pipe.execute_command("XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", stream, after)
                epoch, reply = await pipe.execute()
        except (self._errors.RedisError, OSError) as exc:
            raise self._map("XREAD", exc) from exc
        self._ok()
        return epoch, reply

    # -- failures, health ----------------------------------------------------------------------------------------

    def _map(self, what: str, exc: BaseException) -> FleetError:
        if isinstance(exc, self._errors.ResponseError) and not isinstance(exc, self._errors.BusyLoadingError):
            text = self.scrub(str(exc))
            if text.startswith("FENCED"):
                return FencedError(f"{what}: the leader lease is held by another process")
            self._failed(f"Redis at {self._url} refused {what}: {text}")
            return FleetError(f"Redis at {self._url} refused {what}: {text}")
        return self._unavailable(what, exc)

    def _unavailable(self, what: str, exc: BaseException) -> FleetError:
        text = f"Redis at {self._url} unreachable ({what}): {type(exc).__name__}: {self.scrub(str(exc))}"
        self._failed(text)
        return FleetError(text)

    def scrub(self, text: str) -> str:
        """``text`` without the password (defence in depth: redis-py's messages do not hold it)."""
        if self._password and len(self._password) >= 4:
            text = text.replace(self._password, "***")
        return text[:300]

    def _failed(self, error: str) -> None:
        if self._state[0] is None:
            self._state = (error, self.clock.time())

    def _ok(self) -> None:
        if self._state[0] is not None:
            log.info("fleet: Redis at %s reachable again", self._url)
            self._state = (None, self.clock.time())

    def health(self) -> ComponentHealth:
        """Whether the last Redis call worked (not ok from a failed call until one succeeds); no IO, no secret."""
        error, since = self._state
        return ComponentHealth(name="redis", ok=error is None, error=error, since=since)

    def note(self, what: str, exc: BaseException, *, traceback: bool = False) -> None:
        """Log a failed fleet step as a warning (an error with its traceback when ``traceback``), rate-limited
        per ``what``."""
        level = logging.ERROR if traceback else logging.WARNING
        exc_info = exc if traceback else None
        self._log.log(level, what, "fleet: %s failed, retrying: %s", what, self.scrub(str(exc)), exc_info=exc_info)

    async def pause(self, attempt: int, what: str, exc: BaseException, *, traceback: bool = False) -> None:
        """Log a failed fleet step (rate-limited) and sleep a jittered backoff before retry ``attempt``."""
        self.note(what, exc, traceback=traceback)
        await self.clock.sleep(backoff_delay(attempt, 0.05, 2.0, self._rng))

    async def aclose(self) -> None:
        """Close the connections (idempotent), also those a cancelled command was still giving back.

        redis-py gives a connection back to its pool in a background task when the command using it was cancelled
        (as a leader's lease scope or a shutdown does); a connection still on its way back when the pool is closed
        would stay open until the garbage collector finds it (a ``ResourceWarning``, after the loop is gone). So
        the client is closed, those releases are waited for, and the pool is closed again.
        """
        self._closed = True
        pool = self.client.connection_pool
        await self.client.aclose()
        releasing = tuple(getattr(pool, "_background_releases", ()))  # redis-py's own bookkeeping (may change)
        if releasing:
            await asyncio.gather(*releasing, return_exceptions=True)
        await pool.disconnect()

    def __repr__(self) -> str:
        return f"FleetRedis({self._url!r})"


def import_redis_exceptions() -> ModuleType:
    """``redis.exceptions`` (after :func:`import_redis` succeeded)."""
    import redis.exceptions

    return redis.exceptions


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
