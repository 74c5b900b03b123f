"""The migration's machinery: staged shards -> payloads -> HighLevel, through the governor, with a
durable ledger (``driver``: prepare, the write and verify phases; ``run``: one shard; ``report``).

The pipeline that orders these steps, with its gates, is ``dos2hl.pipeline`` (``run_migration``);
the CLI, the Prefect flows and scripts (``dos2hl.pipeline.migrate``) all go through it.
"""

from __future__ import annotations

from .driver import new_run_id, prepare, run_phase, verify_phase
from .results import Prepared, VerifyResult, WriteResult

__all__ = ["Prepared", "VerifyResult", "WriteResult", "new_run_id", "prepare", "run_phase", "verify_phase"]
