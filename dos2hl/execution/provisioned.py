"""The gate before any write: a location is provisioned for the confirmed map (``prepare`` calls it per
location): every field the map sends exists with its type and options, every association, and what
only a person can create in HighLevel's UI (pipelines, stages, a calendar)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..mapping.model import Mapping as FieldMap
from ..writing.writer import LocationSchema

__all__ = ["require_provisioned"]


def require_provisioned(fmap: FieldMap, schema: LocationSchema, loc: str, desired: Any = None) -> None:
    """Before any write: every field the confirmed map sends exists in the location with the type and
    pick-list options it needs (``desired``: ``provision.desired_schema`` of the map and the export,
    the schema provision creates), every association exists, the manual steps are done. Names keys and
    types, never a value."""
    need = {"contact.source_system_id"} | {e.target for e in fmap.fields if e.table == "patient" and
                                           e.target.startswith("contact.") and e.type != "STANDARD"
                                           and not e.target.startswith("contact.<") and e.phi != "omit"}
    missing = [f"{k} (missing)" for k in sorted(need - set(schema.contact_fields))
               if desired is None or k not in desired.contact_fields]
    if desired is not None:
        from ..provision import field_problems

        def typed(keys: dict[str, str]) -> dict[str, tuple[str, tuple[str, ...]]]:
            return {k: (str((schema.field_types.get(k) or ["", []])[0] or ""),
                        tuple((schema.field_types.get(k) or ["", []])[1])) for k in keys}
        have_objects = {k: None if v is None else {f: (str(t[0] or ""), tuple(t[1])) for f, t in v.items()}
                   for k, v in schema.object_fields.items()}
        missing += field_problems(desired, typed(schema.contact_fields), typed(schema.opportunity_fields),
                                  have_objects)
    objects = {e.target.rsplit(".", 1)[0] for e in fmap.fields if e.target.startswith("custom_objects.")
               and fmap.relations.get(e.target.rsplit(".", 1)[0], "association") == "association"}
    missing += sorted(f"association {o} <-> contact (missing)" for o in objects
                      if o not in schema.associations)
    used = {e.table for e in fmap.fields if e.target not in ("skip", "reference") and e.phi != "omit"}
    manual = []  # what only a person can create in HighLevel's UI (provision --plan lists it)
    for table, name in (("appt", "Appointments"), ("recall", "Recall")):
        if table in used:
            have = next((v for k, v in schema.pipelines.items() if k.lower() == name.lower()), None)
            status = fmap.entry(table, "status")
            stages = {v.lower() for v in (status.values or {}).values()} if status is not None else set()
            if have is None:
                manual.append(f"pipeline '{name}'")
            elif stages - set(have["stages"]):
                manual.append(f"stages {', '.join(sorted(stages - set(have['stages'])))} of pipeline "
                              f"'{name}'")
    if "appt" in used and not schema.calendar_id:
        manual.append("a calendar for appointments (or calendar: in locations.yaml names one that exists)")
    if manual:
        raise ConfigError(f"location {loc} ({schema.location_id}) lacks {'; '.join(manual)}: create them in "
                          "HighLevel's UI (the API cannot), see dos2hl provision --plan")
    if missing:
        missing.sort(key=lambda m: m.endswith("(missing)"))  # wrong types and options first, then absent
        more = f" (+{len(missing) - 12} more)" if len(missing) > 12 else ""
        raise ConfigError(f"location {loc} ({schema.location_id}) is not provisioned for this map, nothing "
                          f"was "
                          f"written: {len(missing)} field(s) missing or of the wrong type: "
                          f"{', '.join(missing[:12])}{more}; run: dos2hl provision --mapping MAP --locations "
                          "LOCATIONS --source EXPORT --apply")
