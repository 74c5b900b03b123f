"""How a location differs from what the map needs (``Plan``): ``plan_location`` reads one sub-account
through the client (list calls only) and compares, Terraform-style: every item is ``create``,
``exists``, ``conflict`` (never changed silently), ``repair`` (a field dos2hl made, of another type,
holding no value) or ``manual`` (no public API for it: pipelines, stages, the HIPAA add-on). The desired
side is ``desired.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..highlevel.protocols import Client
from .desired import PICKLISTS, DesiredSchema, FieldSpec, ObjectDef, ProvisionError, desired_schema, snake

__all__ = ["Change", "DesiredSchema", "FieldSpec", "ObjectDef", "Plan", "ProvisionError", "desired_schema",
           "field_problems", "plan_location", "MAX_CUSTOM_OBJECTS", "snake"]

MAX_CUSTOM_OBJECTS = 10  # per location, on every plan (NOTES.md §2.5)

Kind = Literal["custom_object", "object_field", "contact_field", "opportunity_field", "association", "tag",
               "folder", "pipeline", "compliance", "searchable"]
Action = Literal["create", "exists", "conflict", "manual", "repair"]


@dataclass(frozen=True)
class Change:
    location: str
    kind: Kind
    key: str
    action: Action
    detail: str
    data_type: str | None = None
    options: tuple[str, ...] = ()
    field_id: str | None = None  # repair: the HighLevel field deleted and created again


_SYMBOL = {"create": "+", "exists": "=", "conflict": "!", "manual": "~", "repair": "-/+"}


def _options_text(options: tuple[str, ...], limit: int = 8) -> str:
    if not options:
        return ""
    shown = ", ".join(options[:limit])
    return f" [{shown}{f', ... +{len(options) - limit} more' if len(options) > limit else ''}]"


@dataclass
class Plan:
    """One location's changes, in dependency order (objects with their folder, fields, association;
    contact fields, opportunity fields, tags; manual steps)."""

    changes: list[Change]
    location: str = ""
    existing_objects: int = 0  # custom objects the location already has
    desired: DesiredSchema | None = field(default=None, repr=False, compare=False)
    owned: frozenset[str] = field(default=frozenset(), repr=False, compare=False)  # ledger field ids

    def to_create(self) -> list[Change]:
        return [c for c in self.changes if c.action == "create"]

    def conflicts(self) -> list[Change]:
        return [c for c in self.changes if c.action == "conflict"]

    def manual(self) -> list[Change]:
        return [c for c in self.changes if c.action == "manual"]

    def exists(self) -> list[Change]:
        return [c for c in self.changes if c.action == "exists"]

    def repairs(self) -> list[Change]:
        return [c for c in self.changes if c.action == "repair"]

    def render(self) -> str:
        lines = [f"Location {self.location}:"] if self.location else []
        for c in self.changes:
            indent = "  " if c.kind in ("object_field", "folder", "association") else ""
            what = "field" if c.kind == "object_field" else c.kind
            typed = f" {c.data_type}" if c.data_type else ""
            if c.action == "conflict":
                lines.append(f"{indent}! conflict: {what} {c.key}: {c.detail}")
            elif c.action == "manual":
                lines.append(f"{indent}~ manual: {c.detail}")
            elif c.action == "repair":
                lines.append(f"{indent}-/+ repair: {what} {c.key}{typed}{_options_text(c.options)} "
                             f"({c.detail})")
            else:
                label = f" ({c.detail})" if c.detail else ""
                opts = _options_text(c.options)
                lines.append(f"{indent}{_SYMBOL[c.action]} {what} {c.key}{typed}{opts}{label}")
        for note in self.desired.notes if self.desired else []:
            lines.append(f"# note: {note}")
        repair = f"{len(self.repairs())} to repair, " if self.repairs() else ""
        lines.append(f"Plan: {len(self.to_create())} to create, {repair}{len(self.exists())} already exist, "
                     f"{len(self.conflicts())} conflicts, {len(self.manual())} manual steps.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location, "existing_objects": self.existing_objects,
                "summary": {"create": len(self.to_create()), "repair": len(self.repairs()),
                            "exists": len(self.exists()),
                            "conflict": len(self.conflicts()), "manual": len(self.manual())},
                "notes": list(self.desired.notes) if self.desired else [],
                "changes": [{**asdict(c), "options": list(c.options)} for c in self.changes]}


def _option_labels(raw: Any) -> tuple[str, ...]:
    """Options as HighLevel reads them back: strings (``picklistOptions``) or ``{key, label}`` dicts."""
    out = []
    for o in raw or []:
        out.append(str(o.get("label") or o.get("key")) if isinstance(o, dict) else str(o))
    return tuple(out)


def _wrong_type(spec: FieldSpec, have_type: str) -> bool:
    return have_type != spec.data_type and not (spec.needs_source and have_type in PICKLISTS)


def _compare(loc: str, kind: Kind, spec: FieldSpec, have_type: str | None, have_options: tuple[str, ...],
             *, field_id: str | None = None, owned: Iterable[str] = (),
             holds: Callable[[], str | None] | None = None) -> Change:
    """An existing field against the map: same type (options a superset) = exists; else conflict/manual.

    A field of another type that dos2hl created itself (``field_id`` in ``owned``, the provision
    ledger) and that holds no value (``holds()`` says what holds one, or None) is a ``repair``: HighLevel
    cannot change a field's dataType, so apply deletes it and creates it again. Any other type
    conflict is the admin's: dos2hl never deletes a field it did not create, nor a value."""
    have_type = (have_type or "").upper()
    if _wrong_type(spec, have_type):
        need = f"exists as {have_type or 'unknown type'}, the map needs {spec.data_type}"
        if field_id is not None and field_id in set(owned):
            held = holds() if holds is not None else "its values cannot be counted"
            if held is None:
                return Change(loc, kind, spec.key, "repair",
                              f"{need}; dos2hl provision created it and it holds "
                              "no value: deleted and created again", spec.data_type, spec.options, field_id)
            return Change(loc, kind, spec.key, "conflict",
                          f"{need}; dos2hl provision created it, but {held}: dos2hl does not delete data. "
                          f"Move the values and delete the field in HighLevel, or change the map's type for "
                          f"{', '.join(spec.sources)}", spec.data_type, spec.options, field_id)
        return Change(loc, kind, spec.key, "conflict",
                      f"{need}; dos2hl did not create it: rename or delete the field in HighLevel, or change "
                      f"the map's type for {', '.join(spec.sources)}",
                      spec.data_type, spec.options, field_id)
    missing = tuple(o for o in spec.options if o not in have_options)
    if missing and have_type in (*PICKLISTS, "CHECKBOX"):
        return Change(loc, kind, spec.key, "manual",
                      f"add option(s) {', '.join(missing)} to {spec.key} in HighLevel (the field exists; "
                      "options are only ever added)", spec.data_type, missing)
    return Change(loc, kind, spec.key, "exists", spec.note, spec.data_type, spec.options)


def field_problems(desired: DesiredSchema, contact: dict[str, tuple[str, tuple[str, ...]]],
                   opportunity: dict[str, tuple[str, tuple[str, ...]]],
                   objects: dict[str, dict[str, tuple[str, tuple[str, ...]]] | None]) -> list[str]:
    """Every field the map sends that a location lacks, has with another type, or has without the
    pick-list options the export needs. The inputs are what the location has: field key -> (dataType,
    option labels), per model, and per custom object (None: the object does not exist). Keys and types
    only, never a value: the migrate gate names these before any write (the same rules as the plan)."""
    out: list[str] = []

    def check(specs: Iterable[FieldSpec], have: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        for spec in specs:
            got = have.get(spec.key)
            if got is None:
                out.append(f"{spec.key} (missing)")
                continue
            have_type = (got[0] or "").upper()
            if _wrong_type(spec, have_type):
                out.append(f"{spec.key} ({have_type or 'unknown type'}, the map needs {spec.data_type})")
            elif have_type in (*PICKLISTS, "CHECKBOX"):
                missing = [o for o in spec.options if o not in got[1]]
                if missing:
                    out.append(f"{spec.key} ({len(missing)} pick-list option(s) missing)")

    check(desired.contact_fields.values(), contact)
    check(desired.opportunity_fields.values(), opportunity)
    for key, obj in desired.objects.items():
        have_obj = objects.get(key)
        if have_obj is None:
            out.append(f"{key} (custom object missing)")
            continue
        check(obj.fields.values(), have_obj)
    return out


def _new_field(loc: str, kind: Kind, spec: FieldSpec, detail: str = "") -> Change:
    return Change(loc, kind, spec.key, "create", "; ".join(x for x in (detail or spec.name, spec.note) if x),
                  spec.data_type, spec.options)


def _holds(client: Client, kind: Kind, key: str, field_id: str, seen: dict[str, str | None]
           ) -> Callable[[], str | None]:
    """What holds a value of a field (a count), or None: one search request, only for a field to repair.
    Contacts are searched by the field itself; opportunity and record fields cannot be searched by
    value, so any opportunity / record of the object counts (conservative: nothing is ever lost; asked
    once per plan, ``seen``)."""
    from ..highlevel.models import ContactSearch, RecordSearch, SearchFilter

    def contact() -> str | None:
        page = client.search_contacts(ContactSearch(pageLimit=1, filters=[
            SearchFilter(field=f"customFields.{field_id}", operator="exists")]))
        n = page.total if page.total is not None else len(page.contacts)
        return f"{n} contact(s) hold a value" if n else None

    def opportunity() -> str | None:
        page = client.search_opportunities(limit=1)
        n = int(page.meta.get("total") or len(page.opportunities))
        return f"the location has {n} opportunity(ies)" if n else None

    def record() -> str | None:
        obj = key.rsplit(".", 1)[0]
        page = client.search_records(obj, RecordSearch(pageLimit=1))
        n = page.total if page.total is not None else len(page.records)
        return f"{obj} has {n} record(s)" if n else None

    def once(what: str, fn: Callable[[], str | None]) -> Callable[[], str | None]:
        def ask() -> str | None:
            if what not in seen:
                seen[what] = fn()
            return seen[what]
        return ask

    if kind == "contact_field":
        return contact
    if kind == "opportunity_field":
        return once("opportunity", opportunity)
    return once(key.rsplit(".", 1)[0], record)


def plan_location(client: Client, desired: DesiredSchema, *, location: str,
                  owned: Iterable[str] = ()) -> Plan:
    """Compare one location (read through ``client``: list calls only) with what the map needs.
    ``owned``: ids of the fields dos2hl created there (the provision ledger): a type conflict on one
    of them that holds no value is planned as a ``repair``; every other conflict stops."""
    loc = location
    owned = frozenset(owned)
    seen: dict[str, str | None] = {}
    changes: list[Change] = []
    schemas = {s.key: s for s in client.list_object_schemas() if s.key.startswith("custom_objects.")}
    assocs = _all_associations(client)
    new_objects = 0
    for obj in desired.objects.values():
        have = schemas.get(obj.key)
        fields: dict[str, Any] = {}
        folders: list[Any] = []
        if have is None:
            new_objects += 1
            changes.append(Change(loc, "custom_object", obj.key, "create", f"{obj.singular} / {obj.plural}"))
            changes.append(Change(loc, "folder", f"{obj.key}/{obj.folder}", "create",
                                  "field folder (HighLevel may create it with the object)"))
        else:
            labels = have.labels or {}
            same = (labels.get("singular"), labels.get("plural")) == (obj.singular, obj.plural)
            changes.append(Change(loc, "custom_object", obj.key, "exists",
                                  obj.singular if same else f"labels {labels.get('singular')!r} / "
                                  f"{labels.get('plural')!r} differ from {obj.singular!r}: kept"))
            listed = client.list_object_fields(obj.key)
            fields = {f.fieldKey: f for f in listed.fields if f.fieldKey}
            folders = listed.folders
            changes.append(Change(loc, "folder", f"{obj.key}/{obj.folder}", "exists" if folders else "create",
                                  (folders[0].name or "") if folders else "field folder"))
        primary_key = f"{obj.key}.{obj.primary}"
        specs = dict(obj.fields)
        specs.setdefault(primary_key, FieldSpec(primary_key, obj.primary_label, "TEXT", (),
                                                sources=("primary display property",)))
        for spec in [specs.pop(primary_key), *specs.values()]:
            current = fields.get(spec.key)
            if current is not None:
                changes.append(_compare(loc, "object_field", spec, current.dataType,
                                        _option_labels((current.model_extra or {}).get("options")),
                                        field_id=current.id, owned=owned,
                                        holds=_holds(client, "object_field", spec.key, current.id, seen)))
            elif spec.key == primary_key and have is None:
                changes.append(_new_field(loc, "object_field", spec, f"{spec.name}, primary display property "
                                          "(created with the object)"))
            else:
                changes.append(_new_field(loc, "object_field", spec))
        # record search must see source_id: identity lookups after a crash or an ambiguous answer
        want = [primary_key] + ([f"{obj.key}.source_id"] if f"{obj.key}.source_id" in obj.fields else [])
        have_s = set((have.searchableProperties or []) if have is not None else [])
        changes.append(Change(loc, "searchable", obj.key, "exists" if set(want) <= have_s else "create",
                              "searchable: " + ", ".join(k.rsplit(".", 1)[1] for k in want)))
        if obj.associate:
            changes.append(_association(loc, obj, assocs))
    total = len(schemas) + new_objects
    if new_objects and total > MAX_CUSTOM_OBJECTS:
        changes.insert(0, Change(loc, "custom_object", "custom_objects.*", "conflict",
                                 f"the location has {len(schemas)} custom objects and the map needs "
                                 f"{new_objects} more: {total} > HighLevel's cap of {MAX_CUSTOM_OBJECTS}; "
                                 "delete unused custom objects in HighLevel or map fewer objects"))
    have_fields: dict[str, Any] = {f.fieldKey: f for f in client.list_custom_fields("all") if f.fieldKey}
    for kind, specs_ in (("contact_field", desired.contact_fields),
                         ("opportunity_field", desired.opportunity_fields)):
        for spec in specs_.values():
            current = have_fields.get(spec.key)
            if current is None:
                changes.append(_new_field(loc, kind, spec))  # type: ignore[arg-type]
            else:
                changes.append(_compare(loc, kind, spec, current.dataType,  # type: ignore[arg-type]
                                        _option_labels(current.picklistOptions), field_id=current.id,
                                        owned=owned, holds=_holds(client, kind, spec.key, current.id, seen)))  # type: ignore[arg-type]
    if desired.tags:
        have_tags = {t.name.strip().lower() for t in client.list_location_tags()}
        for tag in desired.tags:
            changes.append(Change(loc, "tag", tag, "exists" if tag in have_tags else "create", ""))
    if desired.pipelines:
        pipelines = {(p.name or "").strip().lower(): p for p in client.list_pipelines()}
        for name, stages in desired.pipelines.items():
            changes.append(_pipeline(loc, name, stages, pipelines.get(name.lower())))
    changes.append(Change(loc, "compliance", "hipaa", "manual",
                          "confirm the HighLevel HIPAA add-on is enabled for this sub-account and a BAA is "
                          "signed before any patient data is migrated"))
    return Plan(changes, loc, len(schemas), desired, owned)


def _all_associations(client: Client) -> list[Any]:
    out: list[Any] = []
    while True:
        page = client.list_associations(skip=len(out), limit=100)
        out += page
        if len(page) < 100:
            return out


def _association(loc: str, obj: ObjectDef, assocs: list[Any]) -> Change:
    key = obj.association_key
    found = next((a for a in assocs if a.key == key), None)
    if found is None:
        return Change(loc, "association", key, "create", f"contact <-> {obj.key}")
    pair = {str(found.firstObjectKey), str(found.secondObjectKey)}
    if pair != {"contact", obj.key}:
        return Change(loc, "association", key, "conflict",
                      f"exists between {' and '.join(sorted(pair))}, the map needs contact <-> {obj.key}; "
                      "delete or rename that association in HighLevel")
    return Change(loc, "association", key, "exists", f"contact <-> {obj.key}")


def _stage_names(stages: list[Any]) -> list[str]:
    return [str(s.get("name") if isinstance(s, dict) else getattr(s, "name", s)) for s in stages]


def _pipeline(loc: str, name: str, stages: tuple[str, ...], have: Any) -> Change:
    """Pipelines have no create API: a missing pipeline or stage is a manual step."""
    if have is None:
        return Change(loc, "pipeline", name, "manual",
                      f"create pipeline '{name}' with stages {', '.join(stages)} (HighLevel: Opportunities > "
                      "Pipelines; the public API cannot create pipelines)", options=stages)
    present = {s.strip().lower() for s in _stage_names(have.stages)}
    missing = tuple(s for s in stages if s.lower() not in present)
    if missing:
        return Change(loc, "pipeline", name, "manual",
                      f"add stage(s) {', '.join(missing)} to pipeline '{name}' (the public API cannot edit "
                      "pipelines)", options=missing)
    return Change(loc, "pipeline", name, "exists", f"stages {', '.join(stages)}", options=stages)
