"""The ban book: active bans by player key, applied to live sessions, and the login gate."""

from ._book import BanBook
from ._model import Ban, BanDetails, BanEvent, BanStatus, OnBan
from ._timer import BanTimer

__all__ = ["Ban", "BanBook", "BanDetails", "BanEvent", "BanStatus", "BanTimer", "OnBan"]
