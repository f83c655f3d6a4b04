"""What the operator is told at start: names that are not settings, and the operator routes' default."""

from __future__ import annotations

import difflib
import weakref
from collections.abc import Iterable, Mapping

import msgspec

__all__ = [
    "LOOPBACK_CIDRS",
    "OTHER_ENV_VARS",
    "ConfigWarning",
    "did_you_mean",
    "operator_allow",
    "read_origin",
    "read_warnings",
    "remember",
    "unknown_env_vars",
]


class ConfigWarning(msgspec.Struct, frozen=True):
    """A configuration that is allowed but does not do what it seems to (logged as a WARNING at start).

    Attributes:
        setting: the environment variable (or TOML key) concerned.
        problem: what happens instead, and what to do.
    """

    setting: str
    problem: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.problem}"


OTHER_ENV_VARS = frozenset(
    {"GS_HOOKS_SANDBOX_URL", "GS_HOOKS_SANDBOX_ADMIN", "GS_HOOKS_FUZZ_EXAMPLES", "GS_HOOKS_ADMIN_URL"}
)
"""``GS_HOOKS_*`` names that are not settings but are read by gs_hooks' own tools (the sandbox CLI prints the
first two, the example server reads the first, the fuzz tests the third, ``gs-hooks admin`` the last): never
reported as unknown."""

LOOPBACK_CIDRS: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
"""Who may call an operator route (``/metrics``, ``/dashboard``, the GamePot inquiry) while its allowlist is empty."""


def operator_allow(cidrs: tuple[str, ...]) -> tuple[str, ...]:
    """The allowlist of an operator route: the configured one, or loopback only while none is configured.

    Platform routes (the Hive webhook, the web-store profile) keep "empty = any": Hive calls them from the
    internet. An operator opens an operator route on purpose with an explicit list, e.g. ``0.0.0.0/0,::/0``.
    """
    return cidrs or LOOPBACK_CIDRS


def did_you_mean(name: str, candidates: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean X?)`` for the closest candidate, compared without their common ``prefix``, or ``""``."""
    by_rest = {c.removeprefix(prefix): c for c in candidates}
    close = difflib.get_close_matches(name.removeprefix(prefix), sorted(by_rest), n=1, cutoff=0.6)
    return f" (did you mean {by_rest[close[0]]}?)" if close else ""


def unknown_env_vars(env: Mapping[str, str], known: frozenset[str]) -> tuple[ConfigWarning, ...]:
    """A warning per ``GS_HOOKS_*`` variable that is not a setting (a typo is otherwise silently ignored)."""
    out = []
    for name in sorted(env):
        if not name.upper().startswith("GS_HOOKS_") or name in known or name in OTHER_ENV_VARS:
            continue
        hint = (
            did_you_mean(name.upper(), known, "GS_HOOKS_") or " (the README's configuration table lists every setting)"
        )
        out.append(ConfigWarning(name, f"not a gs_hooks setting: ignored{hint}"))
    return tuple(out)


# A config is a frozen struct: what was noticed while reading it (and where it came from, for setting names) is
# kept beside it, keyed by identity, and dropped with it.
_READ: dict[int, tuple[str, tuple[ConfigWarning, ...]]] = {}


def remember(config: object, origin: str, warnings: tuple[ConfigWarning, ...]) -> None:
    """Keep where ``config`` was read from (``env`` or ``toml``) and what was noticed, for its lifetime."""
    if origin == "env" and not warnings:
        return  # the default: environment names, nothing noticed
    _READ[id(config)] = (origin, warnings)
    weakref.finalize(config, _READ.pop, id(config), None)


def read_origin(config: object) -> str:
    """``toml`` for a config read from a TOML file, else ``env``."""
    entry = _READ.get(id(config))
    return entry[0] if entry is not None else "env"


def read_warnings(config: object) -> tuple[ConfigWarning, ...]:
    """What :meth:`Config.from_env` noticed while reading ``config`` (unknown ``GS_HOOKS_*`` variables)."""
    entry = _READ.get(id(config))
    return entry[1] if entry is not None else ()
