"""The gs_hooks error tree.

Every error gs_hooks raises derives from :class:`GsHooksError`. Errors from aiohttp, httpx, lxml and msgspec are
translated at the boundary (``raise ... from exc``) so callers only ever catch ours::

    GsHooksError
    ├── ConfigError                 our configuration is wrong: fix the named setting
    │   └── StoreError                  the sqlite store named by a setting cannot be used (empty, damaged,
    │                                   read-only, disk full): carries .path and what to do
    ├── ProtocolError               malformed input from a peer (webhook body, platform answer)
    ├── PlatformError               the platform answered with an error result code
    │   └── PlatformUnavailableError    the platform could not be reached / kept failing transiently
    ├── HttpTransportError          an HTTP request of ``hooks.http`` got no answer (the platform clients turn it
    │                               into PlatformUnavailableError or a retry)
    ├── LoginRefusedError           hooks.login() refused the player (see .reason)
    │   ├── InvalidLoginError           the user id or access token cannot be one (checked before any platform call)
    │   ├── TokenInvalidError           Gamebase says the access token is invalid or expired
    │   ├── MemberNotValidError         Gamebase says the member is banned / withdrawn / missing
    │   ├── BannedError                 the ban book holds an active ban (carries .ends_at)
    │   ├── MaintenanceError            maintenance is active and the login gate is on
    │   └── DuplicateLoginError         the player is already logged in and the policy refuses the newer
    ├── ClosedError                 the object was used after aclose()
    └── LifecycleError              a lifecycle move the hooks do not allow (start() twice, a component added
                                    after start())

Messages never contain a secret, bearer key or access token.
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "BannedError",
    "ClosedError",
    "ConfigError",
    "DuplicateLoginError",
    "GsHooksError",
    "HttpTransportError",
    "InvalidLoginError",
    "LifecycleError",
    "LoginRefusedError",
    "MaintenanceError",
    "MemberNotValidError",
    "PlatformError",
    "PlatformUnavailableError",
    "ProtocolError",
    "StoreError",
    "TokenInvalidError",
]


class GsHooksError(Exception):
    """Root of every error raised by gs_hooks."""


class ConfigError(GsHooksError, ValueError):
    """A configuration value is missing or not allowed.

    Attributes:
        setting: the environment variable or TOML key that holds the bad value.
    """

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class StoreError(ConfigError):
    """The sqlite store cannot be used: an empty (truncated) file, a damaged or foreign file, a read-only file or
    directory, a full disk. Raised when the store is opened, never later (a running store that fails is reported by
    its ``health()``).

    A :class:`ConfigError` because the fix is the operator's, on the file the setting names.

    Attributes:
        setting: ``GS_HOOKS_STATE`` or ``GS_HOOKS_CCU_SPOOL``.
        path: the store's file.
        problem: what is wrong and what to do.
    """

    def __init__(self, setting: str, path: str, problem: str) -> None:
        self.path = path
        super().__init__(setting, problem)


class ProtocolError(GsHooksError):
    """Malformed input from a peer (a webhook body, a platform response)."""


class PlatformError(GsHooksError):
    """A platform answered with an error result code.

    Attributes:
        platform: ``"gamebase"``, ``"hive-ccu"``, ``"gamepot"``...
        code: the platform's result code (an int, or None when there was no answer).
        message: the platform's result message (already redacted).
        transaction_id: the Gamebase transaction id of the call, when there is one.
        setting: the setting to fix when the result code says our configuration is wrong (e.g.
            ``GS_HOOKS_GAMEBASE_SECRET_KEY`` for -4010004), else None: readiness fails at once for such an error,
            and only when they persist for the others.
    """

    def __init__(
        self,
        platform: str,
        code: int | None,
        message: str,
        *,
        transaction_id: str | None = None,
        setting: str | None = None,
    ) -> None:
        self.platform = platform
        self.code = code
        self.message = message
        self.transaction_id = transaction_id
        self.setting = setting
        text = f"{platform} error {code}: {message}" if code is not None else f"{platform}: {message}"
        if transaction_id:
            text += f" (transaction {transaction_id})"
        super().__init__(text)


class PlatformUnavailableError(PlatformError):
    """The platform could not be reached, or kept failing with transient errors after the retries.

    Attributes:
        retry_after_s: a hint, in seconds, for when to try again (the platform's ``Retry-After`` when it sent
            one, else the client's default); a game refusing a login for this tells the player to retry then.
    """

    def __init__(
        self,
        platform: str,
        code: int | None,
        message: str,
        *,
        transaction_id: str | None = None,
        retry_after_s: float = 5.0,
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(platform, code, message, transaction_id=transaction_id)


class HttpTransportError(GsHooksError, ConnectionError):
    """An HTTP request got no answer: the connection was refused or broke, the timeout ran out, or the answer was
    not HTTP. Raised by :class:`~gs_hooks.HttpClient` (``hooks.http``); the platform clients retry it or raise
    :class:`PlatformUnavailableError`. The message names the error (never a token: ``/tokens/***``).

    Attributes:
        kind: the HTTP library's name for the error (``ClientConnectorError``, ``ConnectError``...) or ``timeout``.
    """

    def __init__(self, message: str, kind: str = "") -> None:
        self.kind = kind or message.partition(":")[0]
        super().__init__(message)


class LoginRefusedError(GsHooksError):
    """``hooks.login()`` refused the player.

    Attributes:
        reason: a short machine-readable code (``"token_invalid"``, ``"banned"``, ``"maintenance"``...).
    """

    reason = "refused"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class InvalidLoginError(LoginRefusedError):
    """The login input cannot be a user id or an access token; refused before any platform call.

    Empty, missing or non-string tokens, tokens with whitespace, ``/``, ``\\`` or only dots, tokens over
    ``MAX_TOKEN_LEN`` characters, and user ids that are not player ids (see :func:`gs_hooks.Hooks.login`).
    The message says what is wrong and never holds the token.

    Attributes:
        field: ``"user_id"`` or ``"access_token"``.
    """

    reason = "invalid_login"

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(message)


class TokenInvalidError(LoginRefusedError):
    """Gamebase reports the access token invalid or expired."""

    reason = "token_invalid"

    def __init__(self, message: str, *, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class MemberNotValidError(LoginRefusedError):
    """Gamebase reports the member is not in the normal state (``valid != "Y"``)."""

    reason = "member_not_valid"

    def __init__(self, message: str, *, valid: str | None = None, code: int | None = None) -> None:
        self.valid = valid
        self.code = code
        super().__init__(message)


class BannedError(LoginRefusedError):
    """The ban book holds an active ban for the player.

    Attributes:
        ends_at: when the ban ends (aware datetime), or None for a permanent ban.
    """

    reason = "banned"

    def __init__(self, message: str, *, ends_at: datetime | None, source: str = "") -> None:
        self.ends_at = ends_at
        self.source = source
        super().__init__(message)


class MaintenanceError(LoginRefusedError):
    """Maintenance is active and the maintenance login gate is on."""

    reason = "maintenance"

    def __init__(self, message: str, *, ends_at: datetime | None = None, url: str | None = None) -> None:
        self.ends_at = ends_at
        self.url = url
        super().__init__(message)


class DuplicateLoginError(LoginRefusedError):
    """The player already has a session and the duplicate-login policy refuses the newer one."""

    reason = "duplicate_login"


class ClosedError(GsHooksError, RuntimeError):
    """The object was used after it was closed."""


class LifecycleError(GsHooksError, RuntimeError):
    """A lifecycle move the hooks do not allow: ``start()`` of hooks that are not new, a component added after
    ``start()``. A bug in the calling code, not a runtime condition."""
