"""The central rate governor: keeps every worker under each location's burst and daily limits.

``core`` is the arithmetic (pure, injectable clock), ``local.LocalGovernor`` the in-process
``PermitSource``, ``actor`` the shared Ray actor and its ``GovernorHandle`` facade (the only module of
dos2hl that imports Ray; ``open_governor`` imports it only when settings name a Ray address).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core import DEFAULT_WEIGHTS, Lease, Limits, RateGovernor, Status
from .local import LocalGovernor
from .persist import load_snapshot, save_snapshot

if TYPE_CHECKING:
    from ..settings import Dos2hlSettings, GovernorSettings

__all__ = ["DEFAULT_WEIGHTS", "Lease", "Limits", "LocalGovernor", "RateGovernor", "Status", "limits_from",
           "load_snapshot", "open_governor", "save_snapshot", "state_uri"]


def limits_from(g: GovernorSettings) -> Limits:
    return Limits(burst=g.burst, window_s=g.window_s, daily=g.daily, margin_s=g.margin_s, reserve=g.reserve,
                  reset_offset_s=g.reset_offset_s, max_wait_s=g.max_wait_s)


def state_uri(settings: Dos2hlSettings) -> str:
    """Where the governor keeps its usage: ``DOS2HL_GOVERNOR_STATE`` or ``<storage>/state/governor.json``."""
    return settings.governor.state or f"{settings.runs_root()}/state/governor.json"


def open_governor(settings: Dos2hlSettings | None = None, *, cls: str = "migration") -> Any:
    """The ``PermitSource`` the settings name: ``LocalGovernor`` (no address) or the shared actor's
    ``GovernorHandle`` (``local`` or ``HOST:PORT``). Both have acquire/report/status/for_class/close."""
    from ..settings import Dos2hlSettings

    settings = settings or Dos2hlSettings()
    g = settings.governor
    if not g.address:
        return LocalGovernor(limits_from(g), app=g.app, cls=cls, state=state_uri(settings))
    from .actor import connect

    return connect(None if g.address == "local" else g.address, name=g.name, limits=limits_from(g),
                   state=state_uri(settings), app=g.app, cls=cls, batch=g.batch)
