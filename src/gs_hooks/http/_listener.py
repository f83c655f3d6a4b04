"""The embedded listener as a :class:`~gs_hooks.Hooks` component.

:class:`Listener` serves ``hooks.router`` (every capability registers its routes there while the hooks are
wired) with the limits and TLS files of :class:`~gs_hooks.ListenerConfig`. The operator's probes it serves
(``/livez``, ``/readyz``, ``/healthz``, ``/metrics``) are added by :mod:`gs_hooks.ops`.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import anyio
import anyio.abc

from .._clock import Clock
from .._config import ListenerConfig, parse_hostport
from .._exceptions import ConfigError
from .._health import ComponentHealth
from ._app import Router
from ._server import HttpLimits, HttpServer

__all__ = ["Listener", "limits_from_config", "tls_context_from_config"]

log = logging.getLogger("gs_hooks.http")


def limits_from_config(config: ListenerConfig) -> HttpLimits:
    """The :class:`HttpLimits` a :class:`~gs_hooks.ListenerConfig` asks for."""
    return HttpLimits(
        max_header_bytes=config.max_header_bytes,
        max_body_bytes=config.max_body_bytes,
        request_deadline_s=config.request_deadline_s,
        request_line_deadline_s=config.request_line_deadline_s,
        keepalive_s=config.keepalive_s,
        max_connections=config.max_connections,
        max_connections_per_address=config.max_connections_per_address,
        reserved_connections=config.reserved_connections,
    )


def tls_context_from_config(config: ListenerConfig) -> ssl.SSLContext | None:
    """A server TLS context from ``tls_cert``/``tls_key`` (None when TLS is off).

    Raises:
        ConfigError: a file cannot be read or the key does not match the certificate.
    """
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            "GS_HOOKS_LISTEN_TLS_CERT",
            f"cannot load the TLS certificate/key ({type(exc).__name__}: {exc}); "
            "give PEM files readable by this process, the key matching the certificate",
        ) from exc
    return context


class Listener:
    """The embedded HTTP(S) listener component.

    Args:
        router: the routes to serve (``hooks.router``).
        config: the listener settings; ``config.listen`` must be set.
        clock: times the server's deadlines (default the real time; see :class:`HttpServer`).

    Attributes:
        server: the :class:`HttpServer` (its counters feed ``/healthz`` and ``/metrics``).
    """

    name = "listener"

    def __init__(self, router: Router, config: ListenerConfig, *, clock: Clock | None = None) -> None:
        if config.listen is None:
            raise ConfigError("GS_HOOKS_LISTEN", "the listener needs host:port to bind")
        host, port = parse_hostport(config.listen)
        self.config = config
        self.server = HttpServer(
            router,
            host=host,
            port=port,
            limits=limits_from_config(config),
            ssl_context=tls_context_from_config(config),
            clock=clock,
        )
        self._scope: anyio.CancelScope | None = None
        self._closed = False

    @property
    def port(self) -> int:
        """The bound port (0 before start)."""
        return self.server.port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8080`` (meaningful once started)."""
        return self.server.url

    def stats(self) -> dict[str, Any]:
        """Counters for health and metrics."""
        return {
            "url": self.url,
            "active_connections": self.server.active_connections,
            "requests_served": self.server.requests_served,
            "rejected_connections": self.server.rejected_connections,
        }

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Bind and serve until cancelled or closed.

        Raises:
            ConfigError: the address cannot be bound (in use, not local, no permission).
        """
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                await self.server.run(task_status=task_status)
            except OSError as exc:
                if self.server.port:
                    raise
                raise ConfigError(
                    "GS_HOOKS_LISTEN",
                    f"cannot listen on {self.config.listen}: {exc.strerror or exc}; "
                    "choose a free port and an address of this machine",
                ) from exc

    def health(self) -> ComponentHealth:
        """Ok while bound and serving; not ok before start and once closing."""
        if self._closed:
            return ComponentHealth(name=self.name, ok=False, error="closed")
        if not self.server.port:
            return ComponentHealth(name=self.name, ok=False, error=f"not listening on {self.config.listen} yet")
        return ComponentHealth(name=self.name, ok=True)

    async def aclose(self) -> None:
        """Stop: refuse new connections, let requests in progress finish (5 s at most), close the rest."""
        self._closed = True
        if self._scope is not None:
            if self.server.port:
                await self.server.drain(grace_s=5.0)
            self._scope.cancel()
            log.info("listener on %s closed", self.url)
