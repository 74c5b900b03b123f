"""Planning: staged rows + the confirmed map + the ID map -> the payloads to send. Pure: no request
(reading the staged shards is its only I/O). The run, the delta's digests, the bulk packages and the
quota planner all plan through here, so what is counted is what is sent."""

from __future__ import annotations

from .crm import CrmPlan, EventPayload, FilePayload, NotePayload, OpportunityPayload
from .keys import payload_hash, stable_key
from .plan import ShardSpec, plan_shard, read_staged, rows_of
from .sample import choose_sample
from .transform import CONTACT_STANDARD, OBJECT_NAMES, ContactPayload, Plan, RecordPayload, Transformer

__all__ = ["CONTACT_STANDARD", "OBJECT_NAMES", "ContactPayload", "CrmPlan", "EventPayload", "FilePayload",
           "NotePayload", "OpportunityPayload", "Plan", "RecordPayload", "ShardSpec", "Transformer",
           "choose_sample", "payload_hash", "plan_shard", "read_staged", "rows_of", "stable_key"]
