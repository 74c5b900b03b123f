"""Updating a record in place with its before-image: what a delta does to a changed source row and what
a run does to a record it adopts (found under our key) that differs from the source. The before-image
is what ``rollback`` puts back: ``keep`` receives it after the GET and **before** the PUT, and makes it
durable (``before_keeper``: a sealed ledger row, flushed and fsynced), so a crash between the PUT and
the ledger's ``updated`` row still leaves it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..highlevel.models import ContactUpdate, CustomFieldInput, OpportunityUpdate, RecordUpdate
from ..highlevel.protocols import Client

__all__ = ["before_keeper", "opportunity_text", "update_in_place"]

Keep = Callable[[dict[str, Any]], None]


def before_keeper(ledger: Any, sealer: Any, op: Any) -> Keep:
    """A ``keep`` that writes the before-image as the ledger row ``op`` (``update``/``before-image``),
    sealed for the row's stable key, and flushes the ledger (fsynced) before returning."""
    from .ledger import seal_before

    def keep(before: dict[str, Any]) -> None:
        ledger.add(replace(op, op="update", outcome="before-image",
                           before=seal_before(sealer, before, op.stable_key)))
        ledger.flush()

    return keep


def update_in_place(client: Client, schema: Any, obj: str, hl_id: str, p: Any, *, keep: Keep,
                    body: dict[str, Any] | None = None) -> dict[str, Any]:
    """PUT the payload ``p`` over HighLevel's ``hl_id``, ``keep(before-image)`` first; returns the
    before-image. ``body``: the contact body as the writer sends it (household channels moved), default
    ``p.body``."""
    if obj == "patient":
        contact = client.get_contact(hl_id)
        before = {k: v for k, v in contact.model_dump().items() if k in ContactUpdate.model_fields
                  and v is not None}
        before["customFields"] = [{"id": cf.id, "field_value": cf.value} for cf in contact.customFields]
        keep({"kind": "contact", **before})
        body = dict(p.body if body is None else body)
        custom = body.pop("customFields", {})
        client.update_contact(hl_id, ContactUpdate(**body, customFields=[
            CustomFieldInput(id=schema.field_id(k), field_value=v) for k, v in custom.items()]))
        return {"kind": "contact", **before}
    if obj in ("appointment", "recall"):
        opp = client.get_opportunity(hl_id)
        before = {k: v for k, v in opp.model_dump().items() if k in OpportunityUpdate.model_fields
                  and v is not None}
        keep({"kind": "opportunity", **before})
        pipeline_id, stage_id = schema.pipeline(p.pipeline, p.stage)
        client.update_opportunity(hl_id, OpportunityUpdate(
            pipelineId=pipeline_id, name=p.name, pipelineStageId=stage_id, status=p.status,
            monetaryValue=p.monetary,
            customFields=[CustomFieldInput(id=schema.field_id(k), field_value=opportunity_text(v))
                          for k, v in p.custom.items()] or None))
        return {"kind": "opportunity", **before}
    record = client.get_record(p.object_key, hl_id)
    keep({"kind": "record", "object_key": p.object_key, "properties": record.properties or {}})
    client.update_record(p.object_key, hl_id, RecordUpdate(properties=p.properties))
    return {"kind": "record", "object_key": p.object_key, "properties": record.properties or {}}


def opportunity_text(v: Any) -> Any:
    """Opportunity custom-field values are strings or lists of strings in the contract (no numbers)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return v
    return str(int(v)) if float(v).is_integer() else str(v)
