"""Pattern routes decode each path segment once: an encoded ``/`` stays in its segment, ``%25`` is not decoded
twice (issue 14.1: the sandbox must see the value the client encoded)."""

from __future__ import annotations

import httpx
import pytest

from gs_hooks.http import Request, Response, Router, serve_http


def _router(seen: list[dict[str, str]]) -> Router:
    router = Router()

    async def handler(request: Request) -> Response:
        seen.append(dict(request.path_params))
        return Response.json(request.path_params)

    router.add("GET", "/members/{userId}/tokens/{token}", handler)
    router.add("GET", "/members/{userId}", handler)
    return router


def test_resolve_splits_the_raw_path_before_decoding() -> None:
    router = _router([])
    cases = {
        "/members/a%2Fb": {"userId": "a/b"},
        "/members/%252e%252e": {"userId": "%2e%2e"},
        "/members/%2e%2e": {"userId": ".."},
        "/members/u1/tokens/%3F%23": {"userId": "u1", "token": "?#"},
        "/members/%ED%95%9C": {"userId": "한"},
        "/m%65mbers/u1": {"userId": "u1"},  # a literal segment is compared decoded
    }
    for raw, params in cases.items():
        route, found, _ = router.resolve("GET", "(decoded path not used for patterns)", raw)
        assert route is not None and found == params, raw
    assert router.resolve("GET", "", "/members/a/b/c")[0] is None
    assert router.resolve("GET", "", "/members/%FF")[0] is None  # not UTF-8: no route
    assert router.resolve("GET", "", "/members/")[0] is None  # an empty segment is no value
    # without the raw path (ASGI gives the decoded one), the decoded path is not decoded a second time
    route, found, _ = router.resolve("GET", "/members/%2e%2e")
    assert route is not None and found == {"userId": "%2e%2e"}


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_the_embedded_server_hands_each_segment_decoded_once() -> None:
    seen: list[dict[str, str]] = []
    async with serve_http(_router(seen), port=0) as server, httpx.AsyncClient() as http:
        for raw, params in {
            "/members/a%2Fb/tokens/%252e%252e": {"userId": "a/b", "token": "%2e%2e"},
            "/members/x%2F..%2Fy": {"userId": "x/../y"},
        }.items():
            response = await http.get(server.url + raw)
            assert response.status_code == 200 and response.json() == params, raw
    assert len(seen) == 2
