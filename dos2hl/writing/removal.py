"""Taking out what a run put in HighLevel, shared by rollback (undo a run) and delta (rows deleted in
the source): one delete per object kind, and the tag a contact deleted in the source carries."""

from __future__ import annotations

from ..errors import NotFoundError
from ..highlevel.protocols import Client
from ..planning.transform import OBJECT_NAMES

__all__ = ["DELETED_TAG", "NOTE_OBJECTS", "delete_object"]

#: The tag delta puts on a contact whose patient was deleted in the source (rollback takes it off).
DELETED_TAG = "dos2hl: deleted in source"
#: Objects written as notes on their contact (deleting one needs the contact's id).
NOTE_OBJECTS = frozenset({"activity", "referral", "file_link"})
_RECORD_KEYS = {name: key for key, name in OBJECT_NAMES.items()}


def delete_object(client: Client, obj: str, hl_id: str, contact_id: str | None = None) -> None:
    """Delete one object we wrote, by its kind; a note needs its contact's id."""
    if obj == "patient":
        client.delete_contact(hl_id)
    elif obj in NOTE_OBJECTS:
        if contact_id is None:
            # nothing to address it by (its contact is in no ledger): as good as gone for the API
            raise NotFoundError(404, method="DELETE", path="/contacts/{contactId}/notes/{id}")
        client.delete_note(contact_id, hl_id)
    elif obj in ("document", "note_image"):
        client.delete_media(hl_id)
    elif obj == "appointment_event":
        client.delete_event(hl_id)
    elif obj in ("appointment", "recall"):
        client.delete_opportunity(hl_id)
    else:
        client.delete_record(_RECORD_KEYS[obj], hl_id)
