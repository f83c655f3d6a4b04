"""The listener's limits (shared by the embedded server and the ASGI app) and the server's counters."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HttpLimits", "ServerCounters"]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Listener limits.

    Attributes:
        max_header_bytes: largest request head (431 past it).
        max_body_bytes: largest body unless the route sets its own (413 past it).
        request_deadline_s: absolute deadline for a request's head and body, counted from its first byte
            (408 past it, then close).
        request_line_deadline_s: a new connection's TLS handshake and first request line, and a later request's
            line counted from its first byte, must arrive within this (408 when bytes came, else a silent close).
        keepalive_s: idle time allowed between requests on a connection.
        max_connections: concurrent connections; more get 503 and are closed.
        max_connections_per_address: concurrent connections from one IP address; more get 503 and are closed.
        reserved_connections: connections beyond ``max_connections`` that only peers inside some route's
            allowlist may open (a flood from other addresses cannot lock them out).
        handler_timeout_s: a handler that runs longer gets 500 (and the connection is closed).
    """

    max_header_bytes: int = 16_384
    max_body_bytes: int = 65_536
    request_deadline_s: float = 10.0
    request_line_deadline_s: float = 3.0
    keepalive_s: float = 30.0
    max_connections: int = 512
    max_connections_per_address: int = 64
    reserved_connections: int = 64
    handler_timeout_s: float = 30.0


class ServerCounters:
    """The embedded server's counters, moved by its parts (admission, the connection loop) and read by health.

    Attributes:
        active_connections: connections open now (refused ones are not counted).
        requests_served: responses sent (errors included).
        rejected_connections: connections refused with 503 at the cap or the per-address limit.
        forbidden_connections: connections refused with 403 at accept (every route's allowlist excludes the peer).
        accept_failures: accepts that failed for want of file descriptors or memory (each retried).
        idle_closed_at_cap: idle keep-alive connections closed to make room at the cap or an address's limit.
        draining: set by the server's ``drain``: new connections get 503 and answers close their connection.
    """

    def __init__(self) -> None:
        self.active_connections = 0
        self.requests_served = 0
        self.rejected_connections = 0
        self.forbidden_connections = 0
        self.accept_failures = 0
        self.idle_closed_at_cap = 0
        self.draining = False
