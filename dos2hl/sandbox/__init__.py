"""A local HighLevel: the API v2 contract, auth and tenancy, duplicate rules, rate limits and faults.

Public API: ``create_app`` (the ASGI app, for in-process tests), ``InProcessTransport`` (that app as an
httpx transport in this process), ``serve`` (uvicorn),
``init_locations`` / ``add_token`` (state set-up), ``dump`` (the whole state as one dict).
Heavy modules load on first use, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve", "init_locations", "add_token", "add_oauth_app", "add_user", "add_pipeline",
           "dump",
           "MIGRATION_SCOPES",
           "prepare_state", "running", "InProcessTransport"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "InProcessTransport":
        from .inprocess import InProcessTransport

        return InProcessTransport
    if name in ("serve", "prepare_state", "running"):
        from . import server

        return getattr(server, name)
    if name in ("init_locations", "add_token", "add_oauth_app", "add_user", "add_pipeline",
                "MIGRATION_SCOPES"):
        from . import seed

        return getattr(seed, name)
    if name == "dump":
        from .snapshot import dump

        return dump
    raise AttributeError(name)
