"""Apply a plan: create what is missing, in dependency order, then plan again (idempotent by design).

Order: repairs first (a field dos2hl created with another type and that holds no value is deleted;
it is then created again like any missing field), custom objects (each brings its primary display
property), field folders, object fields, associations (need both objects), contact and opportunity
custom fields, tags. A plan with a conflict, or one that would take the location over HighLevel's 10
custom objects, is refused before the first request. Every field created is recorded in the
provision ledger (``ledger.py``) when one is given: that is how a later plan knows the field is ours. Creates
pass a lookup where the client accepts one, so an ambiguous failure (a timeout after the server created the
field) is verified instead of sent twice; a re-run after a partial apply only creates what is still missing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any, Literal

from ..highlevel import Lookup
from ..highlevel.models import (
    AssociationCreate,
    CustomFieldFolderCreate,
    FieldOption,
    LocationCustomField,
    LocationCustomFieldCreate,
    ObjectFieldCreate,
    ObjectLabels,
    ObjectSchemaCreate,
    ObjectSchemaUpdate,
    PrimaryDisplayProperty,
)
from ..highlevel.protocols import Client
from ..locations import LocationsFile, open_client
from ..mapping.model import Mapping
from .ledger import ProvisionLedger
from .plan import (
    MAX_CUSTOM_OBJECTS,
    DesiredSchema,
    FieldSpec,
    ObjectDef,
    Plan,
    ProvisionError,
    desired_schema,
    plan_location,
)

__all__ = ["apply_plan", "export_for", "needs_export", "provision"]

log = logging.getLogger("dos2hl.provision")
_FieldModel = Literal["contact", "opportunity"]  # the custom fields a location holds


def _refuse(plan: Plan) -> None:
    """Conflicts are errors, never silent changes: name each one and the fix."""
    conflicts = plan.conflicts()
    if conflicts:
        lines = "; ".join(f"{c.kind} {c.key}: {c.detail}" for c in conflicts[:10])
        more = f" (+{len(conflicts) - 10} more)" if len(conflicts) > 10 else ""
        raise ProvisionError(f"location {plan.location}: {len(conflicts)} conflict(s), nothing was created: "
                             f"{lines}{more}")
    new = sum(1 for c in plan.to_create() if c.kind == "custom_object")
    if new and plan.existing_objects + new > MAX_CUSTOM_OBJECTS:
        raise ProvisionError(f"location {plan.location}: {plan.existing_objects} custom objects exist and "
                             f"{new} more are needed, over HighLevel's cap of {MAX_CUSTOM_OBJECTS}; "
                             "delete unused custom objects in HighLevel or map fewer objects. "
                             "Nothing was created.")


def _options(spec: FieldSpec) -> list[FieldOption] | None:
    # option key = label: the loader writes the same label to contact and object pick-lists
    return [FieldOption(key=o, label=o) for o in spec.options] or None


def _apply_object(client: Client, obj: ObjectDef, creating: set[str], ledger: ProvisionLedger | None) -> None:
    """The object (if missing), a field folder (if none), then each missing field, in that folder."""
    if obj.key in creating:
        client.create_object_schema(ObjectSchemaCreate(
            key=obj.key, labels=ObjectLabels(singular=obj.singular, plural=obj.plural),
            primaryDisplayPropertyDetails=PrimaryDisplayProperty(
                key=f"{obj.key}.{obj.primary}", name=obj.primary_label, dataType=obj.primary_type)))
        log.info("provision: created custom object %s", obj.key)
    listed = client.list_object_fields(obj.key)
    folder = next((f for f in listed.folders if (f.name or "").lower() == obj.folder.lower()), None)
    folder = folder or (listed.folders[0] if listed.folders else None)
    if folder is None:
        folder = client.create_field_folder(CustomFieldFolderCreate(objectKey=obj.key, name=obj.folder)).value
    have = {f.fieldKey for f in listed.fields}
    for spec in obj.fields.values():
        if spec.key in have:
            continue

        def lookup(key: str = spec.key) -> Any:
            return next((f for f in client.list_object_fields(obj.key).fields if f.fieldKey == key), None)
        made = client.create_object_field(ObjectFieldCreate(
            fieldKey=spec.key, objectKey=obj.key, parentId=folder.id, dataType=spec.data_type,
            name=spec.name, options=_options(spec)), lookup=lookup)
        if ledger is not None:
            ledger.record(made.value.id, spec.key, spec.data_type, obj.key)


def apply_plan(client: Client, plan: Plan, ledger: ProvisionLedger | None = None) -> Plan:
    """Repair what the plan marks ``repair``, create everything it marks ``create``; returns the plan
    computed again afterwards (which then has nothing to create or repair). Manual steps are left to a
    person; they stay in the returned plan. ``ledger``: where created fields are recorded."""
    _refuse(plan)
    desired: DesiredSchema | None = plan.desired
    if desired is None:
        raise ProvisionError(f"location {plan.location}: the plan carries no desired schema; "
                             "make it with plan_location")
    owned = ledger.owned() if ledger is not None else plan.owned
    if plan.repairs():
        for c in plan.repairs():  # HighLevel cannot change a dataType: delete, then create like a missing one
            assert c.field_id is not None
            if c.kind == "object_field":
                client.delete_object_field(c.field_id)
            else:
                client.delete_custom_field(c.field_id)
            log.info("provision: location %s: deleted field %s (%s) to create it as %s", plan.location,
                     c.field_id, c.key, c.data_type)
            if ledger is not None:
                ledger.forget(c.field_id)
        owned = ledger.owned() if ledger is not None else plan.owned
        plan = plan_location(client, desired, location=plan.location, owned=owned)
        _refuse(plan)
    todo = plan.to_create()
    if not todo:
        return plan_location(client, desired, location=plan.location, owned=owned)
    creating = {c.key for c in todo if c.kind == "custom_object"}
    touched = {c.key.rsplit(".", 1)[0] for c in todo if c.kind == "object_field"}
    touched |= {c.key.split("/", 1)[0] for c in todo if c.kind == "folder"} | creating
    for obj in desired.objects.values():
        if obj.key in touched:
            _apply_object(client, obj, creating, ledger)
    for c in todo:
        if c.kind == "searchable":
            obj = desired.objects[c.key]
            have = next((o for o in client.list_object_schemas() if o.key == obj.key), None)
            keys = list(
                dict.fromkeys(
                    [
                        *((have.searchableProperties or []) if have else []),
                        f"{obj.key}.{obj.primary}",
                        *([f"{obj.key}.source_id"] if f"{obj.key}.source_id" in obj.fields else []),
                    ]
                )
            )
            client.update_object_schema(obj.key, ObjectSchemaUpdate(searchableProperties=keys))
    for c in todo:
        if c.kind == "association":
            obj = next(o for o in desired.objects.values() if o.association_key == c.key)
            client.create_association(AssociationCreate(key=c.key, firstObjectKey="contact",
                                                        firstObjectLabel="Patient", secondObjectKey=obj.key,
                                                        secondObjectLabel=obj.singular))
    for c in todo:
        if c.kind in ("contact_field", "opportunity_field"):
            model: _FieldModel = "contact" if c.kind == "contact_field" else "opportunity"
            specs = desired.contact_fields if model == "contact" else desired.opportunity_fields
            spec = specs[c.key]
            made = client.create_custom_field(
                LocationCustomFieldCreate(name=spec.name, dataType=spec.data_type, model=model,
                                          options=list(spec.options) or None),
                lookup=_field_lookup(client, spec.key, model))
            if ledger is not None:
                ledger.record(made.value.id, spec.key, spec.data_type, model)
    for c in todo:
        if c.kind == "tag":
            client.create_location_tag(c.key)
    after = plan_location(client, desired, location=plan.location,
                          owned=ledger.owned() if ledger is not None else owned)
    left = after.to_create() + after.repairs()
    if left:  # HighLevel named something differently than planned: say so instead of looping
        raise ProvisionError(f"location {plan.location}: after apply {len(left)} item(s) still missing: "
                             f"{', '.join(c.key for c in left[:10])}; check them in HighLevel")
    return after


def _field_lookup(client: Client, key: str, model: _FieldModel) -> Lookup[LocationCustomField]:
    return lambda: next((f for f in client.list_custom_fields(model) if f.fieldKey == key), None)


def needs_export(mapping: Mapping) -> list[str]:
    """What of the map's schema comes from the export's reference tables (pick-list options from
    LOOKUP/RECALLTYP, user-defined fields from USERFLD, referral channels from REFSRC): empty when the
    map can be provisioned without reading the export."""
    d = desired_schema(mapping, None)
    specs = [*d.contact_fields.values(), *d.opportunity_fields.values(),
             *(s for o in d.objects.values() for s in o.fields.values())]
    out = [s.key for s in specs if s.needs_source]
    if any(e.target == "contact.<userfld>" and e.phi != "omit" for e in mapping.fields):
        out.append("user-defined contact fields (USERFLD)")
    if any(e.target == "tag" and e.phi != "omit" for e in mapping.fields):
        out.append("referral channel tags and options (REFSRC)")
    out += [f"{e.target} (PROCCODE)" for e in mapping.fields if e.column == "proc_code" and not e.values
            and e.type in ("SINGLE_OPTIONS", "MULTIPLE_OPTIONS") and e.phi != "omit"
            and e.target not in ("skip", "reference")]
    return list(dict.fromkeys(out))


def export_for(mapping: Mapping, source: str | Path | None) -> str | Path | None:
    """The export whose reference tables give the map's schema: ``source`` if given, else the one the
    map was proposed from (``export.source`` in mapping.yaml). The schema never depends on whether a
    flag was given: when the map needs the export and neither is at hand, this refuses."""
    if source is not None:
        return source
    recorded = mapping.export.source
    if recorded is not None and ("://" in recorded or Path(recorded).exists()):
        return recorded
    needed = needs_export(mapping)
    if needed:
        more = f" (+{len(needed) - 6} more)" if len(needed) > 6 else ""
        why = "the export the map records is not there" if recorded else "the map records no export"
        raise ProvisionError(f"the map's schema comes partly from the export ({', '.join(needed[:6])}{more}) "
                             f"and "
                             f"{why}: pass it with --source EXPORT. Nothing was planned or written")
    return None


def provision(mapping: Mapping, locations: LocationsFile, *, source: str | Path | None = None,
              apply: bool = False, clients: MappingABC[str, Any] | None = None,
              ledger: str | None = None, **client_kw: Any) -> dict[str, Plan]:
    """Plan (and with ``apply``, create and repair) the map's schema in every location of ``locations.yaml``.

    ``source``: the export (default: the one the map records; required when the map needs it, see
    ``export_for``). Every location is planned before anything is written, so a conflict or the object
    cap in any location stops the whole run with nothing written. ``ledger``: the runs storage
    (``DOS2HL_STORAGE``) holding the provision ledger, which records the fields created and makes
    fields dos2hl created with another type repairable; without it nothing is repaired. ``clients``:
    export location (``L001``) -> client, for tests and callers that already hold one; otherwise
    ``open_client`` per location (``client_kw`` such as ``permits=`` or ``transport=`` go to it).
    Returns export location -> plan (after apply: the plan computed again)."""
    desired = desired_schema(mapping, export_for(mapping, source))
    opened: list[Any] = []
    try:
        pairs: list[tuple[str, Any]] = []
        for loc in locations.locations:
            client = (clients or {}).get(loc.source)
            if client is None:
                client = open_client(locations, loc.source, **client_kw)
                opened.append(client)
            pairs.append((loc.source, client))
        settings = client_kw.get("settings")
        ledgers = {src: ProvisionLedger.open(ledger, locations.for_source(src).location_id,
                                             settings.s3 if settings is not None else None)
                   for src, _ in pairs} if ledger is not None else {}
        plans = {src: plan_location(client, desired, location=src,
                                    owned=ledgers[src].owned() if src in ledgers else ())
                 for src, client in pairs}
        if not apply:
            return plans
        for plan in plans.values():
            _refuse(plan)
        return {src: apply_plan(client, plans[src], ledgers.get(src)) for src, client in pairs}
    finally:
        for client in opened:
            client.close()
