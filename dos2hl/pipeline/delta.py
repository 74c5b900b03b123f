"""The delta as a step: a new export since a run -> new rows created, changed rows updated in place
(before-images kept), rows deleted in the source tagged (or deleted) and reported."""

from __future__ import annotations

from ..execution.delta import run_delta
from ..params import DeltaParams
from .env import RunEnv
from .results import DeltaReport

__all__ = ["delta_step"]


def delta_step(env: RunEnv, params: DeltaParams) -> DeltaReport:
    """``since_run="latest"``: the newest completed run of the storage."""
    return DeltaReport.of(run_delta(params, client_factory=env.writes, settings=env.settings,
                                    locations=env.locations, progress=env.progress))
