"""What a map does to HighLevel's schema, for a person deciding on it: the fields (and custom objects)
provisioning would create (``desired_schema``, the same code ``dos2hl provision`` plans with), the
difference an edit makes, and the map gate's summary (Markdown) and proposals table for the Prefect form.
Names, types and counts only: never a value of the export."""

from __future__ import annotations

from typing import Any

from ..mapping.model import Mapping
from ..mapping.review import LOW_CONFIDENCE
from .desired import desired_schema

__all__ = ["map_summary", "proposals_table", "schema_fields", "schema_impact"]


def schema_fields(mapping: Mapping) -> dict[str, str]:
    """Every field and custom object the map needs created: full key -> data type (``OBJECT`` for an
    object). Without the export: lookup pick-lists count as TEXT, as ``provision`` plans them then."""
    d = desired_schema(mapping)
    out: dict[str, str] = {}
    for obj in d.objects.values():
        out[obj.key] = "OBJECT"
        out.update({k: f.data_type for k, f in obj.fields.items()})
    out.update({k: f.data_type for k, f in d.contact_fields.items()})
    out.update({k: f.data_type for k, f in d.opportunity_fields.items()})
    return dict(sorted(out.items()))


def schema_impact(before: Mapping, after: Mapping) -> dict[str, Any]:
    """The fields to create under each map, and what the edits add, remove or retype."""
    a, b = schema_fields(before), schema_fields(after)
    return {"before": len(a), "after": len(b), "fields": b,
            "added": sorted(b.keys() - a.keys()), "removed": sorted(a.keys() - b.keys()),
            "retyped": sorted(k for k in a.keys() & b.keys() if a[k] != b[k])}


def proposals_table(mapping: Mapping) -> list[dict[str, Any]]:
    """One row per column for a table artifact: column ids, targets, types, policy, confidence."""
    return [{"source": e.source, "target": e.target, "type": e.type, "phi": e.phi,
             "confidence": round(e.confidence, 2), "review": "yes" if e.confidence < LOW_CONFIDENCE else ""}
            for e in mapping.fields]


def map_summary(mapping: Mapping, path: str, review_hint: str | None = None, limit: int = 15) -> str:
    """The map gate's description (Markdown): what to look at before confirming."""
    low = sorted((e for e in mapping.fields if e.confidence < LOW_CONFIDENCE), key=lambda e: e.confidence)
    guarded = [e for e in mapping.fields if e.phi != "send"]
    fields = schema_fields(mapping)
    skipped = sum(e.target == "skip" for e in mapping.fields)
    lines = [f"**Map `{path}`**: {len(mapping.fields)} columns of {len(mapping.files)} files, "
             f"{skipped} not migrated, {len(low)} below confidence {LOW_CONFIDENCE:.2f}.", ""]
    if low:
        lines += ["Low-confidence entries:", ""]
        lines += [f"- `{e.source}` -> `{e.target}` ({e.confidence:.2f})" for e in low[:limit]]
        lines += [f"- ... and {len(low) - limit} more"] if len(low) > limit else []
        lines.append("")
    lines += [f"PHI policy: {sum(e.phi == 'encrypt' for e in mapping.fields)} encrypted, "
              f"{sum(e.phi == 'omit' for e in mapping.fields)} omitted"
              + (": " + ", ".join(f"`{e.source}` {e.phi}" for e in guarded[:limit]) if guarded else "")
              + ("; ..." if len(guarded) > limit else ""), ""]
    lines += [f"Fields to create in HighLevel: {len(fields)}"
              + (": " + ", ".join(f"`{k}`" for k in list(fields)[:limit]) if fields else "")
              + ("; ..." if len(fields) > limit else ""), ""]
    lines.append(review_hint or f"Review every entry on the review page (`dos2hl map review {path} "
                 "--source EXPORT`) or in the `map-proposals` table artifact, then confirm with your name.")
    return "\n".join(lines)
