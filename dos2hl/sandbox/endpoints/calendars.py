"""Calendars and appointments (calendars.json, Version 2021-04-15), plus a contact's appointments.

* Create answers **200** with the event unwrapped (NOTES.md §1). The contact and the calendar
  must be the location's; ``assignedUserId`` must be a team member of the calendar (the first one
  is assigned when it is missing). ``endTime`` defaults to start + the calendar's slot duration.
* Slot rules, skipped by the historical-import flags: without ``ignoreDateRange`` or
  ``ignoreFreeSlotValidation`` a start in the past is refused; without
  ``ignoreFreeSlotValidation`` an overlap with the assigned user's other appointments is refused
  (400 "The slot you have selected is no longer available."). ``toNotify`` is accepted; no
  automation runs in the sandbox either way (it is kept on the event for tests).
* ``GET /calendars/events`` answers every event of the range at once (no pagination).
* Delete answers **201** ``{"succeeded": true}`` (sic, unlike the ``succeded`` elsewhere).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..core import ApiError, Ctx, handler, new_id

_SLOT_TAKEN = "The slot you have selected is no longer available."


def _instant(value: str, what: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, [f"{what} must be a valid ISO 8601 date string"],
                       error="Unprocessable Entity") from None
    if parsed.tzinfo is None:
        raise ApiError(422, [f"{what} must carry a UTC offset"], error="Unprocessable Entity")
    return parsed


@handler("calendars:get-calendars")
def list_calendars(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"calendars": ctx.store.list("calendar", ctx.location_id)}


@handler("calendars:create-appointment")
def create_appointment(ctx: Ctx) -> tuple[int, Any]:
    body = ctx.body
    found = ctx.store.get("calendar", body["calendarId"])
    if found is None or found[0] != ctx.location_id:
        raise ApiError(400, "Calendar not found", error="Bad Request")
    calendar = found[1]
    contact = ctx.store.get("contact", body["contactId"])
    if contact is None or contact[0] != ctx.location_id:
        raise ApiError(400, "Contact not found", error="Bad Request")
    team = [m["userId"] for m in calendar.get("teamMembers") or []]
    user = body.get("assignedUserId") or (team[0] if team else None)
    if user is not None and user not in team:
        raise ApiError(400, "The assigned user is not a team member of this calendar", error="Bad Request")
    start = _instant(body["startTime"], "startTime")
    if body.get("endTime"):
        end = _instant(body["endTime"], "endTime")
        end_text = body["endTime"]
    else:
        minutes = calendar.get("slotDuration",
                               30) * (60 if calendar.get("slotDurationUnit") == "hours" else 1)
        end = start + dt.timedelta(minutes=minutes)
        end_text = end.isoformat()
    if end <= start:
        raise ApiError(400, "endTime must be after startTime", error="Bad Request")
    free_slots = not body.get("ignoreFreeSlotValidation")
    if free_slots and not body.get("ignoreDateRange") and start.timestamp() < ctx.now:
        raise ApiError(400, _SLOT_TAKEN, error="Bad Request")
    if free_slots:
        for other in ctx.store.list("appointment", ctx.location_id):
            if other.get("assignedUserId") == user and other.get("appointmentStatus") != "cancelled" \
                    and _instant(other["startTime"],
                                 "startTime") < end and start < _instant(other["endTime"], "endTime"):
                raise ApiError(400, _SLOT_TAKEN, error="Bad Request")
    now = ctx.iso()
    event: dict[str, Any] = {
        "id": new_id(), "title": body.get("title") or "Appointment", "calendarId": calendar["id"],
        "locationId": ctx.location_id, "contactId": body["contactId"], "groupId": calendar.get("groupId", ""),
        "appointmentStatus": body.get("appointmentStatus") or "confirmed", "assignedUserId": user or "",
        "users": [user] if user else [], "startTime": body["startTime"], "endTime": end_text,
        "dateAdded": now, "dateUpdated": now, "isRecurring": bool(body.get("rrule")),
        "toNotify": body.get("toNotify", True),
    }
    for name in ("address", "description", "meetingLocationType", "meetingLocationId", "rrule"):
        if body.get(name) is not None:
            event[name] = body[name]
    ctx.save("appointment", event)
    return 200, event


def _event(ctx: Ctx) -> dict[str, Any]:
    return ctx.own("appointment", ctx.params["eventId"], "Event")


@handler("calendars:get-appointment")
def get_appointment(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"event": _event(ctx)}


@handler("calendars:delete-event")
def delete_event(ctx: Ctx) -> tuple[int, Any]:
    ctx.remove("appointment", _event(ctx)["id"])
    return 201, {"succeeded": True}


@handler("calendars:get-calendar-events")
def calendar_events(ctx: Ctx) -> tuple[int, Any]:
    """The location's events starting in [startTime, endTime] (epoch millis) of a calendar (or of a user),
    in one answer: no pagination, like the real endpoint."""
    calendar, user = ctx.q("calendarId"), ctx.q("userId")
    if not (calendar or user or ctx.q("groupId")):
        raise ApiError(422, ["Either of calendarId, userId or groupId is required"],
                       error="Unprocessable Entity")
    try:
        lo, hi = float(ctx.q("startTime") or ""), float(ctx.q("endTime") or "")
    except ValueError:
        raise ApiError(422, ["startTime and endTime must be epoch milliseconds"],
                       error="Unprocessable Entity") from None
    out = []
    for e in ctx.store.list("appointment", ctx.location_id):
        if (calendar and e.get("calendarId") != calendar) or (user and e.get("assignedUserId") != user):
            continue
        ms = _instant(e["startTime"], "startTime").timestamp() * 1000
        if lo <= ms <= hi:
            out.append(e)
    return 200, {"events": out}


@handler("contacts:get-appointments-for-contact")
def contact_appointments(ctx: Ctx) -> tuple[int, Any]:
    contact = ctx.own("contact", ctx.params["contactId"], "Contact")
    return 200, {"events": [e for e in ctx.store.list("appointment", ctx.location_id)
                            if e["contactId"] == contact["id"]]}
