"""Rollback as a step: undo a run (migration, sample or delta) from its ledger: updates restored from
their before-images, then what it created deleted, children first. A second rollback sends nothing."""

from __future__ import annotations

from ..params import RollbackParams
from ..writing.rollback import rollback
from .env import RunEnv
from .results import RollbackResult

__all__ = ["rollback_step"]


def rollback_step(env: RunEnv, params: RollbackParams) -> RollbackResult:
    return RollbackResult.model_validate(rollback(env.run_uri(params.run_id), params.run_id, env.writes,
                                                  location=params.location,
                                                  phi_key_file=env.settings.phi_key_file))
