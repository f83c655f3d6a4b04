"""The verifier's cache is not the garbage collector's business (issue 17, ``python -m bench.loop``).

A login storm leaves thousands of verifications in the cache; when every entry was made of GC-tracked objects,
they were promoted into the oldest generation and soon made CPython run full collections (tens of ms each, the
game's loop stopped) in the middle of the storm. Token answers are ``gc=False`` structs, the per-user token index
is a dict of strings: after one collection nothing of an entry is tracked.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import pytest
from gamebase_client_support import Env, serve_gamebase

from gs_hooks.gamebase import TokenVerifier

pytestmark = pytest.mark.anyio


@pytest.fixture
async def gb() -> AsyncIterator[Env]:
    async with serve_gamebase() as env:
        yield env


async def test_a_cached_verification_holds_no_object_the_collector_tracks(gb: Env) -> None:
    verifier = TokenVerifier(gb.client(retries=0), clock=gb.clock)
    users = [f"gc-user-{i}" for i in range(3)]
    for user in users:
        gb.sim.add_member(user)
        info = await verifier.verify(user, gb.sim.issue_token(user))
        assert info.member.user_id == user and info.member.auth_list
    gc.collect()  # tuples of untracked items are untracked by a collection
    for key, entry in verifier._positive.items():
        info = entry[1]
        parts = [entry, key, info, info.header, info.member, info.member.auth_list, *info.member.auth_list]
        assert not [type(p).__name__ for p in parts if gc.is_tracked(p)]
        assert not gc.is_tracked(verifier._by_user[key[0]])
