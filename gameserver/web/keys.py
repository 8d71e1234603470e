"""Typed keys for what the aiohttp application shares between handlers."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from gameserver.config import Settings
from gameserver.core.limits import AddressCounter
from gameserver.host.matchmaker import RoomManager
from gameserver.web.client_budgets import ClientBudgets
from gameserver.web.listing import ListingCache

SETTINGS = web.AppKey("settings", Settings)
MANAGER = web.AppKey("manager", RoomManager)
BACKGROUND = web.AppKey("background", set[asyncio.Task[Any]])
ADDRESSES = web.AppKey("addresses", AddressCounter)
CLIENT_BUDGETS = web.AppKey("client_budgets", ClientBudgets)  # matchmaking, per client
LISTINGS = web.AppKey("listings", ListingCache)  # GET /rooms, built once per period
METRICS = web.AppKey("metrics", CollectorRegistry)  # this app's Prometheus registry (metrics.py)
PAGES = web.AppKey("pages", dict[str, str])  # game -> the URL of its own page (/play/<game>/)
