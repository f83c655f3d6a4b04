"""The suite-wide secrets guard itself must be able to fail."""

from __future__ import annotations

import logging

import gs_secrets_guard as guard
from gs_hooks import ConfigError, Secret


def test_guard_sees_a_leak_in_a_log_record_and_in_an_error(secrets_guard: None) -> None:
    value = "guard-self-test-secret-value"
    Secret(value)
    before = list(guard._TEXTS)
    try:
        logging.getLogger("gs_hooks.test").warning("leaking %s", value)
        ConfigError("X", f"leaking {value}")
        leaks = guard.leaked_secrets()
        assert any("log record gs_hooks.test" in w for w in leaks)
        assert any("ConfigError message" in w for w in leaks)
    finally:
        # forget the deliberate leaks so the session (and this test's guard) stay green
        guard._TEXTS[:] = before
        guard._SECRETS.discard(value)


def test_secret_reprs_do_not_leak(secrets_guard: None) -> None:
    s = Secret("another-guarded-value")
    logging.getLogger("gs_hooks.test").info("config holds %r and %s", s, s)
