"""The suite-wide secrets guard itself must be able to fail."""

from __future__ import annotations

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=300, deadline=None)
@given(data=st.data(), secrets=st.sets(st.text(alphabet="ab-", min_size=6, max_size=9), min_size=1, max_size=5))
def test_the_guard_finds_exactly_the_texts_holding_a_secret(data: st.DataObject, secrets: set[str]) -> None:
    # texts made of secrets, their pieces and noise, in a small alphabet: secrets share their first characters,
    # texts hold near misses, and a secret may stand at either end
    piece = st.sampled_from(sorted(secrets)).flatmap(lambda s: st.sampled_from([s, s[:-1], s[1:]]))
    text = st.lists(piece | st.text(alphabet="ab-x", max_size=4), max_size=4).map("".join)
    texts = data.draw(st.lists(text, max_size=6))
    found = guard.find_leaks(secrets, [(f"text {i}", t) for i, t in enumerate(texts)])
    assert found == [f"text {i}" for i, t in enumerate(texts) if any(s in t for s in secrets)]


def test_the_guard_finds_a_secret_at_either_end_and_past_a_near_miss() -> None:
    secrets = {"abcdef-long-one", "abcdef-x", "short6"}
    texts = [
        ("start", "abcdef-x then more"),
        ("end", "more then abcdef-long-one"),
        ("near misses only", "abcdef-long-on abcdef-y abcde short"),
        ("after a near miss", "abcdef-long-onabcdef-long-one"),
        ("repeated", "abcdef-x then more"),
        ("shortest at the end", "...short6"),
        ("shortest alone", "short6"),
    ]
    expected = ["start", "end", "after a near miss", "repeated", "shortest at the end", "shortest alone"]
    assert guard.find_leaks(secrets, texts) == expected
