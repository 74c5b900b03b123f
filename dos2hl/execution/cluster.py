"""On a cluster, nothing assumes one machine: what a run's workers read and write must be shared storage.

A Ray cluster of more than one node has no shared local disk: a shard worker on another node would read
staged shards, the ledger and the inventory from its own disk (where they are not) and write its ledger
there (where the next phase, the report and a resume never look). So a run whose Ray cluster has more
than one alive node refuses a local storage root, and a local governor state, before anything is
written (``require_shared_storage``; the node list comes from ``pool.alive_nodes``). Pure: no Ray here.

What else a worker reads, and why it is allowed or not:

* the staged shards, the ledger, the inventory, the households (``<storage>/<run_id>/...``): the run's
  storage, checked here;
* the governor's usage snapshot (``DOS2HL_GOVERNOR_STATE``, default ``<storage>/state/governor.json``):
  checked here;
* the export's ``IMAGES/`` tree, read by the worker that uploads a document: checked here when the map
  sends documents (the export must then be ``s3://`` too);
* the PHI key (``DOS2HL_PHI_KEY_FILE``): read from the same path on each node, by design (a key is not
  put in object storage next to what it protects); every node needs it at that path;
* locations, the map, settings: passed to the workers as data; tokens come from each node's environment
  (``token_env``), S3's endpoint and credentials too (``DOS2HL_S3_*``, the boto3 chain).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError

__all__ = ["local_uris", "require_shared_storage", "sends_documents", "worker_uris"]


def local_uris(uris: Mapping[str, str | None]) -> dict[str, str]:
    """The entries of ``uris`` (what -> URI) that name a local path (not ``s3://``)."""
    return {what: str(uri) for what, uri in uris.items() if uri and not str(uri).startswith("s3://")}


def require_shared_storage(nodes: Sequence[str], uris: Mapping[str, str | None]) -> None:
    """Refuse a local path among ``uris`` (what -> URI) when ``nodes`` (the cluster's alive node ids) are
    more than one. Raises ``ConfigError`` naming the fix; the message holds paths and counts, no PHI."""
    if len(nodes) <= 1:
        return
    local = local_uris(uris)
    if local:
        listed = "; ".join(f"{what}: {uri}" for what, uri in local.items())
        raise ConfigError(
            f"the Ray cluster has {len(nodes)} alive nodes and no shared local disk, so a run on it cannot "
            f"keep its files in a local folder ({listed}): give object storage, --storage "
            "s3://bucket/prefix (or DOS2HL_STORAGE=s3://bucket/prefix; the governor's state follows it "
            "unless DOS2HL_GOVERNOR_STATE names another s3:// object, and an export whose documents are "
            "migrated must be on s3:// too); nothing was written")


def worker_uris(spec: Any) -> dict[str, str | None]:
    """What a shard worker reads and writes for ``spec`` (a ``ShardSpec``): the run (ledger, inventory),
    its staged shards, and the export when the map sends documents (their files)."""
    return {"the run (ledger, inventory, report)": spec.run_uri, "the staged export": spec.staged_uri,
            "the export (document files)": spec.source if sends_documents(spec.mapping) else None}


def sends_documents(mapping: Mapping[str, Any]) -> bool:
    """Whether a map (its JSON dump) sends document files: their worker reads the export's ``IMAGES/``."""
    return any(e.get("table") == "document" and e.get("target") not in ("skip", "reference")
               for e in mapping.get("fields", []))
