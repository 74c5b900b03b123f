"""The pipelines as typed steps, in one order each, shared by the CLI, the library and the Prefect flows.

``open_env(params)`` builds a run's world once (settings, locations, governor, clients);
``run_migration(params, env, gates, run)`` runs the migration's steps in their one order; the flow
passes a runner that makes each step a Prefect task and gates that pause for typed inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..bulk.run import Importer
from ..highlevel.protocols import ClientFactory
from ..params import DeltaParams, MigrateParams, RollbackParams
from .delta import delta_step
from .env import RunEnv, open_env
from .gates import Approval, CsvImported, Gates, MapConfirmation, ParamGates
from .migrate import (
           Runner,
           bulk_step,
           direct,
           prepare_step,
           report_step,
           run_migration,
           verify_step,
           write_step,
)
from .results import (
    BulkResult,
    DeltaReport,
    Prepared,
    RollbackResult,
    RunReport,
    VerifyResult,
    WriteResult,
)
from .rollback import rollback_step

__all__ = ["Approval", "BulkResult", "CsvImported", "DeltaParams", "DeltaReport", "Gates",
           "MapConfirmation", "MigrateParams", "ParamGates", "Prepared", "RollbackParams", "RollbackResult",
           "RunEnv", "RunReport", "Runner", "VerifyResult", "WriteResult", "bulk_step", "delta_step",
           "direct", "migrate", "open_env", "prepare_step", "report_step", "rollback_step", "run_migration",
           "verify_step", "write_step"]


def migrate(params: MigrateParams, *, approve: Callable[[dict[str, Any]], bool] | None = None,
            imported: Importer | None = None, settings: Any = None,
            client_factory: ClientFactory | None = None,
            verify_factory: ClientFactory | None = None, progress: list[Any] | None = None) -> dict[str, Any]:
    """The migration from a script: ``approve(sample_report) -> bool`` is the sample gate (None: the
    ``approve`` parameter), ``imported(packages, checklist) -> bool`` the bulk gate (None: the
    ``imported`` parameter; against the sandbox the run imports them itself). Returns the report as a
    dict (``RunReport.to_dict``). Tests and benches pass their own client factories; ``progress``: the
    write phases' sinks (``dos2hl.progress``; progress.json is written either way)."""
    gates = ParamGates(approve if approve is not None else params.approve,
                       imported if imported is not None else params.imported)
    with open_env(params, settings=settings, client_factory=client_factory,
                  verify_factory=verify_factory) as env:
        env.progress = list(progress or [])
        return run_migration(params, env, gates).to_dict()
