"""The one delete per object kind that rollback and delta share (``migrate/removal.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from dos2hl.errors import NotFoundError
from dos2hl.writing.removal import delete_object


class Calls:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *a: self.calls.append((name, a))


@pytest.mark.parametrize(
    ("obj", "call"),
    [
        ("patient", "delete_contact"),
        ("document", "delete_media"),
        ("appointment_event", "delete_event"),
        ("recall", "delete_opportunity"),
        ("activity", "delete_note"),
    ],
)
def test_each_kind_goes_to_its_delete(obj: str, call: str) -> None:
    c = Calls()
    delete_object(c, obj, "hl1", contact_id="c1")
    assert c.calls[0][0] == call


def test_a_note_without_its_contact_is_a_not_found_the_callers_count_as_gone() -> None:
    with pytest.raises(NotFoundError) as exc:  # (a TypeError before: the error was built with a message)
        delete_object(Calls(), "referral", "n1", contact_id=None)
    assert exc.value.status == 404
