"""One run's world, built once per process: settings, the locations file (read and validated once; a
client reads its token from the environment when it opens), the governor and the client factories that
take their permits from it, where runs live. Every step takes it as its first argument; nothing
re-loads settings or locations, and nothing caches them in a module."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..execution.driver import default_factory, shared_settings
from ..highlevel.protocols import ClientFactory
from ..locations import LocationsFile, load_locations
from ..settings import Dos2hlSettings

__all__ = ["RunEnv", "open_env"]


@dataclass
class RunEnv:
    settings: Dos2hlSettings  # shared_settings: with Ray workers the governor is the named actor
    locations: LocationsFile
    writes: ClientFactory  # export location -> client, permits as class ``migration``
    reads: ClientFactory  # the same, as class ``verify`` (read-backs use the reserve kept for them)
    storage: str | None = None  # the run's own runs root (default DOS2HL_STORAGE)
    executor: str = "threads"
    workers: int | None = None  # None: every location at once (execution.schedule.default_workers)
    permits: Any = None  # the governor (None when the factories were given)
    # where the write phases' progress goes (execution.progress sinks): the CLI's terminal, the flow's
    # artifacts; progress.json is written to the run's storage whatever this holds
    progress: list[Any] = field(default_factory=list)

    def run_uri(self, run_id: str) -> str:
        return self.settings.run_uri(run_id, self.storage)

    def close(self) -> None:
        """Close the governor this env opened: it saves its usage (``<storage>/state/governor.json``), so
        ``dos2hl status`` and the next run count today's requests (it saves every few seconds while it
        runs; a run shorter than that, or its last seconds, were never saved: the day undercounted)."""
        if self.permits is not None:
            self.permits.close()

    def __enter__(self) -> RunEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_env(params: Any, *, settings: Dos2hlSettings | None = None,
             client_factory: ClientFactory | None = None,
             verify_factory: ClientFactory | None = None) -> RunEnv:
    """The env of a run with ``params`` (any pipeline's: locations, target, storage, executor, workers).
    Tests and benches pass their own client factories (then no governor is opened here)."""
    executor = getattr(params, "executor", "threads")
    settings = shared_settings(settings or Dos2hlSettings(), executor)
    if getattr(params, "storage", None):  # the run's own root: the governor's state follows it too
        settings = settings.model_copy(update={"storage": params.storage})
    lf = load_locations(params.locations, target=params.target)
    if executor == "ray":  # before anything is written: a multi-node cluster has no shared local disk
        from ..execution.cluster import sends_documents
        from ..execution.pool import require_cluster_storage

        export: dict[str, str | None] = {}
        source, mapping = getattr(params, "source", None), getattr(params, "mapping", None)
        if source and mapping and Path(mapping).is_file():  # (a missing map: prepare's gate says so)
            from ..mapping.model import load_mapping

            if sends_documents(load_mapping(mapping).model_dump(mode="json")):  # their worker reads the
                export["the export (document files)"] = str(source)  # export's IMAGES/: shared too
        require_cluster_storage(settings, export)
    permits = None
    if client_factory is None:
        from ..governor import open_governor

        permits = open_governor(settings)
        client_factory = default_factory(lf, settings, permits=permits)
        verify_factory = verify_factory or default_factory(lf, settings, permits=permits, cls="verify")
    return RunEnv(settings, lf, client_factory, verify_factory or client_factory, params.storage, executor,
                  getattr(params, "workers", None), permits)
