"""The embedded HTTP listener (h11 over anyio), its router, and the same routes as an ASGI app."""

from ._app import DropConnection, Request, Response, Route, Router, parse_allowlist, safe_for_log
from ._asgi import ASGIApp, as_asgi
from ._listener import Listener, limits_from_config, tls_context_from_config
from ._server import HttpLimits, HttpServer, serve_http

#: Alias of :func:`as_asgi`.
asgi_app = as_asgi

__all__ = [
    "ASGIApp",
    "DropConnection",
    "HttpLimits",
    "HttpServer",
    "Listener",
    "Request",
    "Response",
    "Route",
    "Router",
    "as_asgi",
    "asgi_app",
    "limits_from_config",
    "parse_allowlist",
    "safe_for_log",
    "serve_http",
    "tls_context_from_config",
]
