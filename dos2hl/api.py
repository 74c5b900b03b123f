"""Library entry points the CLI, the Prefect tasks and the benchmarks share."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import yaml

from .mapping.model import load_mapping
from .progress import ProgressFn
from .settings import Dos2hlSettings, S3Settings
from .sources.discover import Export, discover
from .sources.profile import BUILTIN_PROFILES, Profile, is_field_map, load_profile, parse_yaml
from .staging import StageResult, stage
from .storage import open_store

__all__ = ["export_profile", "open_export", "stage_export", "quarantined_rows"]


def open_export(source: str | Path, *, profile: str | Profile = "reference", s3: S3Settings | None = None,
                documents: bool = True) -> Export:
    """Discover an export (folder or s3:// URI) with an export profile; raises before reading rows."""
    return discover(open_store(source, s3), export_profile(profile), documents=documents)


def export_profile(profile: str | Path | Profile) -> Profile:
    """A built-in profile by name, a profile YAML file, or the profile of a field map (``mapping.yaml``:
    its file and column names over its base profile)."""
    if isinstance(profile, Profile) or str(profile) in BUILTIN_PROFILES or not Path(profile).is_file():
        return load_profile(profile)
    try:
        text = Path(profile).read_text("utf-8")
        data = parse_yaml(text)
    except (yaml.YAMLError, UnicodeDecodeError):
        return load_profile(profile)  # it says what is wrong with the file
    return load_mapping(profile).to_profile() if is_field_map(data) else load_profile(profile)


def stage_export(source: str | Path, to: str | Path, *, profile: str = "reference",
                 settings: Dos2hlSettings | None = None, shards: int | None = None,
                 export_date: dt.date | None = None, progress: ProgressFn | None = None,
                 overwrite: bool = False) -> StageResult:
    """Read ``source`` and stage it as Parquet shards under ``to``."""
    settings = settings or Dos2hlSettings()
    export = open_export(source, profile=profile, s3=settings.s3, documents=False)
    return stage(export, open_store(to, settings.s3), shards=shards or settings.shards,
                 export_date=export_date, progress=progress, overwrite=overwrite,
                 budget_bytes=settings.stage_memory_mb << 20)


def quarantined_rows(staged: str | Path, *, s3: S3Settings | None = None,
                     table: str | None = None) -> list[dict[str, object]]:
    """Every quarantined row of a staging: file, line, record, code, reason (never the raw text)."""
    import io

    import pyarrow.parquet as pq

    from .staging import MANIFEST

    store = open_store(staged, s3)
    manifest = json.loads(store.read_bytes(MANIFEST))
    rows: list[dict[str, object]] = []
    for name, meta in sorted(manifest["quarantine"].items()):
        if table and name != table:
            continue
        t = pq.read_table(io.BytesIO(store.read_bytes(meta["path"])), columns=["file", "table", "record",
                                                                               "line", "code", "reason"])
        rows.extend(t.to_pylist())

    def order(r: dict[str, object]) -> tuple[str, int]:
        line = r["line"]  # int64 in the quarantine's schema: an int, or None
        return str(r["file"]), line if isinstance(line, int) else 0

    return sorted(rows, key=order)
