"""``python -m gs_hooks sandbox`` as a real subprocess: printed settings, reachable APIs, clean stop."""

from __future__ import annotations

import base64
import os
import signal
import sys
from pathlib import Path

import anyio
import httpx
import pytest

import gs_hooks
from gs_hooks.__main__ import main

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SRC = str(Path(gs_hooks.__file__).resolve().parents[1])


async def read_until(stream: anyio.abc.ByteReceiveStream, marker: bytes) -> str:
    buf = b""
    with anyio.fail_after(30):
        while marker not in buf:
            buf += await stream.receive()
    return buf.decode()


async def test_cli_prints_settings_serves_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "gs_hooks", "sandbox", "--port", "0", "--ccu-period", "60", "--game-key", "cli_KR"]
    async with await anyio.open_process(cmd, env=env) as proc:
        assert proc.stdout is not None
        try:
            text = await read_until(proc.stdout, b"# Ctrl-C to stop")
            settings = dict(line.split("=", 1) for line in text.splitlines() if line.startswith("GS_HOOKS_"))
            assert settings["GS_HOOKS_GAME"] == "cli_KR"
            assert settings["GS_HOOKS_CCU_PERIOD_S"] == "60"
            assert settings["GS_HOOKS_CCU_URL"].endswith("/modules/gameuser/currentuser/")
            for name in (
                "GS_HOOKS_GAMEBASE_URL",
                "GS_HOOKS_GAMEBASE_APP_ID",
                "GS_HOOKS_GAMEBASE_SECRET_KEY",
                "GS_HOOKS_GAMEPOT_URL",
                "GS_HOOKS_GAMEPOT_PROJECT_ID",
                "GS_HOOKS_GAMEPOT_API_KEY",
            ):
                assert settings[name], name
            xml = (
                '<?xml version="1.0" encoding="utf-8"?><currentuser><game>cli_KR</game><server>0</server>'
                "<reqkey>k1</reqkey><date>2016-06-23 16:23:00</date><user>4</user></currentuser>"
            )
            async with httpx.AsyncClient() as client:
                r = await client.post(
                    settings["GS_HOOKS_CCU_URL"], data={"value": base64.b64encode(xml.encode()).decode()}
                )
                assert b"<result>100</result>" in base64.b64decode(r.content)
                gp = await client.get(
                    f"{settings['GS_HOOKS_GAMEPOT_URL']}/v1/api/project/"
                    f"{settings['GS_HOOKS_GAMEPOT_PROJECT_ID']}/user/statistics/ccu",
                    params={"oneDate": "2016-06-23"},
                    headers={"x-api-key": settings["GS_HOOKS_GAMEPOT_API_KEY"]},
                )
                row = gp.json()["result"]["edges"][16 * 60 + 23]["node"]
                assert row == {"createdAt": "16:23", "one": 4, "two": None, "three": None}
                info = (await client.get(settings["GS_HOOKS_SANDBOX_ADMIN"])).json()
                assert info["ccu"]["samples"] == 1
        finally:
            proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            rc = await proc.wait()
        rest = await read_until(proc.stdout, b"stopping on SIGTERM")
        assert "stopping on SIGTERM" in rest
    assert rc == 0


def test_cli_refuses_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["sandbox", "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_cli_refuses_a_bad_period(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--port", "0", "--ccu-period", "90"]) == 2
    assert "whole number of minutes" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "sandbox" in capsys.readouterr().out
