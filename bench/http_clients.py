"""Bench: which HTTP client for the platform calls — the candidates side by side, in one run, on one sandbox.

    python -m bench.http_clients            # full run
    python -m bench.http_clients --smoke    # once, small (no timing asserted)

Every candidate GETs the same Gamebase token URLs (fresh tokens each round, the secret key header) from the
sandbox running in a subprocess (:class:`bench.gamebase.SandboxProcess`), with ``c`` workers on one asyncio loop,
and reads each body. Reported per candidate: client CPU µs per request (``time.process_time``: what the game's
loop pays, threads included), requests per second, and both as ratios to plain aiohttp. Rounds alternate the
candidates' order; figures are medians over rounds.

Candidates: plain ``httpx.AsyncClient``; httpx on an aiohttp transport (``httpx-aiohttp``); a plain aiohttp
``ClientSession``; ``gs_hooks._http_client.AiohttpClient`` (aiohttp behind the library's own small client
interface: what the platform clients use on asyncio with proxies set or ``GS_HOOKS_HTTP_CLIENT=aiohttp``);
``gs_hooks._fast_http.FastHttpClient`` (the library's own client on ``asyncio.Protocol`` + httptools: what they use
on asyncio by default); and, when installed, ``aiosonic`` and ``pyreqwest`` (a Rust client, its own runtime
thread).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from bench.gamebase import APP, KEY, TOKEN_PATH, SandboxProcess, plain_loop
from gs_hooks._http_base import HttpClient

HEADERS = {"Content-Type": "application/json; charset=UTF-8", "X-Secret-Key": KEY}

Get = Callable[[str], Awaitable[int]]


async def _httpx(base: str, urls: Sequence[str], c: int) -> tuple[float, float]:
    import httpx

    async with httpx.AsyncClient(headers=HEADERS) as http:
        await http.get(base + "/_sandbox/faults")

        async def get(u: str) -> int:
            r = await http.get(u)
            return r.status_code

        return (await plain_loop(get, urls, c))[:2]


async def _httpx_aiohttp(base: str, urls: Sequence[str], c: int) -> tuple[float, float]:
    import httpx
    from httpx_aiohttp import AiohttpTransport

    async with httpx.AsyncClient(headers=HEADERS, transport=AiohttpTransport()) as http:
        await http.get(base + "/_sandbox/faults")

        async def get(u: str) -> int:
            r = await http.get(u)
            return r.status_code

        return (await plain_loop(get, urls, c))[:2]


async def _aiohttp(base: str, urls: Sequence[str], c: int) -> tuple[float, float]:
    import aiohttp

    async with aiohttp.ClientSession(headers=HEADERS) as http:
        async with http.get(base + "/_sandbox/faults") as r:
            await r.read()

        async def get(u: str) -> int:
            async with http.get(u) as r:
                await r.read()
                return r.status

        return (await plain_loop(get, urls, c))[:2]


async def _through(http: HttpClient, base: str, urls: Sequence[str], c: int) -> tuple[float, float]:
    """``c`` loops GETting ``urls`` through one of the library's own clients (closed after)."""
    try:
        await http.request("GET", base + "/_sandbox/faults", headers=HEADERS, timeout_s=5.0)

        async def get(u: str) -> int:
            r = await http.request("GET", u, headers=HEADERS, timeout_s=5.0)
            return r.status

        return (await plain_loop(get, urls, c))[:2]
    finally:
        await http.aclose()


async def _ours(base: str, urls: Sequence[str], c: int) -> tuple[float, float]:
    from gs_hooks._http_client import AiohttpClient

    return await _through(AiohttpClient(), base, urls, c)


async def _ours_fast(base: str, urls: Sequence[str], c: int) -> tuple[float, float]:
    from gs_hooks._fast_http import FastHttpClient

    return await _through(FastHttpClient(), base, urls, c)


async def _aiosonic(base: str, urls: Sequence[str], c: int) -> tuple[float, float]:
    import aiosonic

    http = aiosonic.HTTPClient()
    try:
        await http.get(base + "/_sandbox/faults")

        async def get(u: str) -> int:
            r = await http.get(u, headers=HEADERS)
            await r.content()
            return int(r.status_code)

        return (await plain_loop(get, urls, c))[:2]
    finally:
        await http.aclose()


async def _pyreqwest(base: str, urls: Sequence[str], c: int) -> tuple[float, float]:
    from pyreqwest.client import ClientBuilder

    async with ClientBuilder().default_headers(HEADERS).build() as http:
        warm = await http.get(base + "/_sandbox/faults").build().send()
        await warm.bytes()

        async def get(u: str) -> int:
            r = await http.get(u).build().send()
            await r.bytes()
            return int(r.status)

        return (await plain_loop(get, urls, c))[:2]


CANDIDATES: dict[str, tuple[str | None, Callable[[str, Sequence[str], int], Awaitable[tuple[float, float]]]]] = {
    "plain_aiohttp": ("aiohttp", _aiohttp),
    "plain_httpx": (None, _httpx),
    "httpx_on_aiohttp_transport": ("httpx_aiohttp", _httpx_aiohttp),
    "gs_hooks_aiohttp_client": ("aiohttp", _ours),
    "gs_hooks_fast_client": ("httptools", _ours_fast),
    "aiosonic": ("aiosonic", _aiosonic),
    "pyreqwest": ("pyreqwest", _pyreqwest),
}


def run(smoke: bool = False, concurrencies: Sequence[int] = (16,)) -> dict[str, Any]:
    """Run the bench; returns the figures."""
    names = [n for n, (mod, _) in CANDIDATES.items() if mod is None or importlib.util.find_spec(mod) is not None]
    n, rounds = (40, 1) if smoke else (1000, 5)
    sandbox = SandboxProcess(n * rounds * len(names) * len(concurrencies))
    out: dict[str, Any] = {"requests_per_round": n, "rounds": rounds, "skipped": sorted(set(CANDIDATES) - set(names))}
    try:
        tokens = iter(sandbox.tokens)
        for c in concurrencies:
            figures: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
            for r in range(rounds):
                order = names if r % 2 == 0 else names[::-1]
                for name in order:
                    pairs = [next(tokens) for _ in range(n)]
                    urls = [sandbox.url + TOKEN_PATH.format(app=APP, user=u, token=t) for u, t in pairs]
                    figures[name].append(anyio.run(CANDIDATES[name][1], sandbox.url, urls, c))
            base_cpu = statistics.median(cpu for _, cpu in figures["plain_aiohttp"]) / n * 1e6
            base_rate = statistics.median(n / w for w, _ in figures["plain_aiohttp"])
            rows: dict[str, Any] = {}
            for name in names:
                cpu = statistics.median(cpu for _, cpu in figures[name]) / n * 1e6
                rate = statistics.median(n / w for w, _ in figures[name])
                rows[name] = {
                    "cpu_us_per_request": round(cpu, 1),
                    "per_s": round(rate),
                    "cpu_vs_aiohttp": round(cpu / base_cpu, 2),
                    "rate_vs_aiohttp": round(rate / base_rate, 2),
                }
            out[f"c{c}"] = rows
    finally:
        sandbox.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_clients")
    parser.add_argument("--smoke", action="store_true", help="run once, small")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[16])
    args = parser.parse_args()
    print(json.dumps(run(smoke=args.smoke, concurrencies=args.concurrency), indent=2))


if __name__ == "__main__":
    main()
