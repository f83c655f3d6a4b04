"""gs_hooks: plug an asyncio game server into Hive, Gamebase and GamePot with one setup call.

hooks = gs_hooks.setup(gs_hooks.Config.from_env(), on_kick=kick_player)
async with hooks:
    server = await asyncio.start_server(hooks.track_streams(handle_client), host, port)
"""

from ._clock import KST, Clock, FakeClock, SystemClock, format_kst, grid_slot, next_grid_instant
from ._config import (
    CcuConfig,
    Config,
    GamebaseConfig,
    GamePotConfig,
    HiveConfig,
    ListenerConfig,
    Secret,
    SessionsConfig,
)
from ._exceptions import (
    BannedError,
    ClosedError,
    ConfigError,
    DuplicateLoginError,
    GsHooksError,
    LoginRefusedError,
    MaintenanceError,
    MemberNotValidError,
    PlatformError,
    PlatformUnavailableError,
    ProtocolError,
    TokenInvalidError,
)
from ._setup import Hooks, KickRequest, OnKick, setup
from .bans import Ban, BanBook, BanDetails, BanEvent, OnBan
from .hive import WebstoreChannel, WebstoreCharacter, WebstoreProfile, WebstoreServer
from .sessions import Session, SessionEvent, SessionRegistry, TrackWebSocketsMiddleware, current_session

__version__ = "0.1.0"

__all__ = [
    "KST",
    "Ban",
    "BanBook",
    "BanDetails",
    "BanEvent",
    "BannedError",
    "CcuConfig",
    "Clock",
    "ClosedError",
    "Config",
    "ConfigError",
    "DuplicateLoginError",
    "FakeClock",
    "GamePotConfig",
    "GamebaseConfig",
    "GsHooksError",
    "HiveConfig",
    "Hooks",
    "KickRequest",
    "ListenerConfig",
    "LoginRefusedError",
    "MaintenanceError",
    "MemberNotValidError",
    "OnBan",
    "OnKick",
    "PlatformError",
    "PlatformUnavailableError",
    "ProtocolError",
    "Secret",
    "Session",
    "SessionEvent",
    "SessionRegistry",
    "SessionsConfig",
    "SystemClock",
    "TokenInvalidError",
    "TrackWebSocketsMiddleware",
    "WebstoreChannel",
    "WebstoreCharacter",
    "WebstoreProfile",
    "WebstoreServer",
    "current_session",
    "format_kst",
    "grid_slot",
    "next_grid_instant",
    "setup",
]
