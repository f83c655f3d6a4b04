"""gs_hooks: plug an asyncio game server into Hive, Gamebase and GamePot with one setup call.

hooks = gs_hooks.setup(gs_hooks.Config.from_env(), on_kick=kick_player)
async with hooks:
    server = await asyncio.start_server(hooks.track_streams(handle_client), host, port)
"""

from ._clock import Clock, FakeClock, SystemClock
from ._config import (
    CcuConfig,
    Config,
    ConfigWarning,
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
    HttpTransportError,
    InvalidLoginError,
    LoginRefusedError,
    MaintenanceError,
    MemberNotValidError,
    PlatformError,
    PlatformUnavailableError,
    ProtocolError,
    StoreError,
    TokenInvalidError,
)
from ._health import ComponentHealth, HealthReporter
from ._hooks import Hooks
from ._http_client import HttpAnswer, HttpClient
from ._json import check_json_depth
from ._setup import setup
from ._time import KST, format_kst, grid_slot, next_grid_instant
from .bans import Ban, BanBook, BanDetails, BanEvent, OnBan
from .ccu import CcuOutcome, CcuProblem, CcuReporter, CcuSample, CcuSampleRow, CcuSpool, OnCcuProblem
from .gamebase import (
    BanPage,
    BanRecord,
    GamebaseClient,
    GamebaseResult,
    MaintenanceChange,
    MaintenanceDetails,
    MaintenanceState,
    Member,
    NoticeRequest,
    TokenInfo,
    TokenVerifier,
)
from .gamepot import CcuHistorySource, CcuRow, GamePotClient, GamePotError, HistorySample, MemoryCcuHistory
from .hive import WebstoreChannel, WebstoreCharacter, WebstoreProfile, WebstoreServer
from .sessions import (
    KickRequest,
    OnKick,
    Session,
    SessionEvent,
    SessionRegistry,
    TrackWebSocketsMiddleware,
    current_session,
)

__version__ = "0.1.0"

__all__ = [
    "KST",
    "Ban",
    "BanBook",
    "BanDetails",
    "BanEvent",
    "BanPage",
    "BanRecord",
    "BannedError",
    "CcuConfig",
    "CcuHistorySource",
    "CcuOutcome",
    "CcuProblem",
    "CcuReporter",
    "CcuRow",
    "CcuSample",
    "CcuSampleRow",
    "CcuSpool",
    "Clock",
    "ClosedError",
    "ComponentHealth",
    "Config",
    "ConfigError",
    "ConfigWarning",
    "DuplicateLoginError",
    "FakeClock",
    "GamePotClient",
    "GamePotConfig",
    "GamePotError",
    "GamebaseClient",
    "GamebaseConfig",
    "GamebaseResult",
    "GsHooksError",
    "HealthReporter",
    "HistorySample",
    "HiveConfig",
    "Hooks",
    "HttpAnswer",
    "HttpClient",
    "HttpTransportError",
    "InvalidLoginError",
    "KickRequest",
    "ListenerConfig",
    "LoginRefusedError",
    "MaintenanceChange",
    "MaintenanceDetails",
    "MaintenanceError",
    "MaintenanceState",
    "Member",
    "MemberNotValidError",
    "MemoryCcuHistory",
    "NoticeRequest",
    "OnBan",
    "OnCcuProblem",
    "OnKick",
    "PlatformError",
    "PlatformUnavailableError",
    "ProtocolError",
    "Secret",
    "Session",
    "SessionEvent",
    "SessionRegistry",
    "SessionsConfig",
    "StoreError",
    "SystemClock",
    "TokenInfo",
    "TokenInvalidError",
    "TokenVerifier",
    "TrackWebSocketsMiddleware",
    "WebstoreChannel",
    "WebstoreCharacter",
    "WebstoreProfile",
    "WebstoreServer",
    "check_json_depth",
    "current_session",
    "format_kst",
    "grid_slot",
    "next_grid_instant",
    "setup",
]
