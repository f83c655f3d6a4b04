"""The fixtures' own rules: a missing redis-server skips the fleet tests, except under CI=true where it fails."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fleet_support import RedisServer, TcpProxy, need_redis_server


def test_missing_server_skips_naming_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install redis-server"):
        need_redis_server()


def test_missing_server_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: a missing server is a failure"):
        need_redis_server()


def test_proxy_cut_and_restore(redis_server: RedisServer) -> None:
    proxy = TcpProxy(redis_server.port)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            assert s.recv(16) == b"+PONG\r\n"
            proxy.cut()
            assert s.recv(16) == b""  # the live connection is dropped
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
            assert s.recv(16) == b""  # and new ones are refused while cut
        proxy.restore()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            assert s.recv(16) == b"+PONG\r\n"
    finally:
        proxy.close()
