"""The embedded HTTP listener (h11 over anyio) and its router."""

from ._app import Request, Response, Route, Router, parse_allowlist
from ._server import HttpLimits, HttpServer, serve_http

__all__ = [
    "HttpLimits",
    "HttpServer",
    "Request",
    "Response",
    "Route",
    "Router",
    "parse_allowlist",
    "serve_http",
]
