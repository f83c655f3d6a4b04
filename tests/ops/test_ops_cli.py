"""``gs-hooks admin`` run as a real subprocess against a real listener: every command, its effect, and the exit
codes scripts rely on (0 ok, 3 access refused, 4 not found, 5 bad input, 6 unreachable, 2 usage)."""

from __future__ import annotations

import json
import os
import socket
import sys

import anyio
import pytest
from ops_support import ADMIN_KEY, world

from gs_hooks import BannedError
from gs_hooks.ops._admin_cli import EXIT

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def cli(*args: str, key: str | None = ADMIN_KEY, url: str | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GS_HOOKS_")}
    if key is not None:
        env["GS_HOOKS_ADMIN_KEY"] = key
    argv = [sys.executable, "-m", "gs_hooks", "admin", *(["--url", url] if url else []), *args]
    done = await anyio.run_process(argv, env=env, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_every_command_does_what_it_says() -> None:
    async with world() as w:
        await w.login("4101")
        await w.login("4102", server_id="2")

        rc, out, err = await cli("status", url=w.url)
        assert rc == EXIT["ok"], err
        assert "running" in out and "ready" in out and "listener" in out

        rc, out, _ = await cli("--json", "sessions", "--server-id", "2", url=w.url)
        assert rc == 0 and [s["player"] for s in json.loads(out)["sessions"]] == ["4102"]
        rc, out, _ = await cli("sessions", "--query", "41", url=w.url)
        assert rc == 0 and "4101" in out and "4102" in out and "sessions 1-2 of 2" in out

        rc, out, _ = await cli("kick", "4101", "--reason", "cheating", "--message", "bye", url=w.url)
        assert (rc, out.strip()) == (0, "kicked 1 session(s) of player 4101")
        assert [(k.reason, k.message) for k in w.kicks] == [("cheating", "bye")]

        rc, out, _ = await cli("ban", "4102", "--for", "2h", "--message", "chargeback", url=w.url)
        assert rc == 0 and out.startswith("banned player 4102 until ")
        assert w.hooks.registry.sessions_of("4102") == ()
        with pytest.raises(BannedError):
            await w.login("4102")
        rc, out, _ = await cli("--json", "bans", "--source", "api", url=w.url)
        bans = json.loads(out)["bans"]
        assert rc == 0 and [(b["player"], b["message"]) for b in bans] == [("4102", "chargeback")]

        rc, out, _ = await cli("unban", "4102", url=w.url)
        assert (rc, out.strip()) == (0, "lifted 1 ban(s) of player 4102")
        await w.login("4102")


async def test_exit_codes_scripts_can_use() -> None:
    async with world() as w:
        assert (await cli("kick", "nobody-here", url=w.url))[0] == EXIT["not_found"] == 4
        assert (await cli("unban", "nobody-here", url=w.url))[0] == EXIT["not_found"]
        rc, _, err = await cli("status", key="wrong-key-123", url=w.url)
        assert rc == EXIT["refused"] == 3 and "401" in err and "wrong-key-123" not in err
        rc, _, err = await cli("status", key=None, url=w.url)
        assert rc == EXIT["refused"] and "GS_HOOKS_ADMIN_KEY" in err
        rc, _, err = await cli("ban", "4101", "--for", "soon", url=w.url)
        assert rc == EXIT["bad_input"] == 5 and "--for" in err
        rc, _, err = await cli("ban", "4101", "--until", "2001-01-01T00:00:00+09:00", url=w.url)
        assert rc == EXIT["bad_input"] and "until" in err and "not in the future" in err
        rc, _, err = await cli("kick", " spaced", url=w.url)
        assert rc == EXIT["bad_input"] and "player" in err
        assert w.hooks.bans.active_bans() == [] and w.kicks == []
    rc, _, err = await cli("status", url=f"http://127.0.0.1:{free_port()}")
    assert rc == EXIT["unreachable"] == 6 and "cannot reach" in err
    rc, _, err = await cli("status")
    assert rc == EXIT["usage"] == 2 and "--url" in err
    rc, _, err = await cli("--key", ADMIN_KEY, "status", url="http://127.0.0.1:1")
    assert rc == EXIT["usage"], "a key on the command line is not an option"


async def test_an_address_outside_the_admin_allowlist_is_refused() -> None:
    async with world(admin_allow=("192.0.2.0/24",)) as w:
        await w.login("4101")
        rc, _, err = await cli("kick", "4101", url=w.url)
        assert rc == EXIT["refused"] and "403" in err
        assert w.hooks.registry.sessions_of("4101") != ()


async def test_the_key_env_can_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from gs_hooks.__main__ import main

    monkeypatch.delenv("MY_ADMIN_KEY", raising=False)
    assert main(["admin", "--url", "http://127.0.0.1:1", "--key-env", "MY_ADMIN_KEY", "status"]) == EXIT["refused"]
