"""The ban book: active bans by player key, applied to live sessions, and the login gate."""

from ._book import Ban, BanBook, BanDetails, BanEvent, BanStatus, BanTimer, OnBan

__all__ = ["Ban", "BanBook", "BanDetails", "BanEvent", "BanStatus", "BanTimer", "OnBan"]
