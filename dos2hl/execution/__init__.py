"""Execution: the migration's phases over every (location, shard) unit: prepare, discover what exists,
the sample and full write phases, verify, the delta as a run, the report. Shards run on threads or on
Ray actors (``pool``) that share the central governor."""

from __future__ import annotations

from .driver import discover, new_run_id, prepare, run_phase, verify_phase
from .results import Prepared, VerifyResult, WriteResult

__all__ = ["Prepared", "VerifyResult", "WriteResult", "discover", "new_run_id", "prepare", "run_phase",
           "verify_phase"]
