"""The library holds a HighLevel client as ``dos2hl.highlevel.protocols.Client``, not ``Any``: every
operation it calls on a client is in the Protocol (so mypy checks the call), and ``HighLevelClient``
has every member the Protocol promises (mypy holds it there too, through ``protocols._conforms``)."""

from __future__ import annotations

import ast
import re

from dos2hl.highlevel import HighLevelClient
from dos2hl.highlevel.protocols import Client
from tests.architecture.imports import modules

#: Packages that hold a client of their own kind (the client itself, the rehearsal tools).
OWN = ("dos2hl.highlevel", "dos2hl.sandbox", "dos2hl.generate")


def _members(proto: type) -> set[str]:
    names: set[str] = set()
    for klass in proto.__mro__:
        if klass is object:
            continue
        names |= {n for n in vars(klass) if not n.startswith("_")}
        names |= set(getattr(klass, "__annotations__", {}))
    return names


def _calls_on_a_client() -> dict[str, set[str]]:
    """Attribute -> modules, for every ``client.<attribute>`` (and ``self.client.<attribute>``)."""
    out: dict[str, set[str]] = {}
    for name, path in modules().items():
        if name.startswith(OWN) or not name.startswith("dos2hl"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            held = (isinstance(owner, ast.Name) and owner.id == "client") or (
                isinstance(owner, ast.Attribute) and owner.attr == "client"
                and isinstance(owner.value, ast.Name) and owner.value.id == "self")
            if held:
                out.setdefault(node.attr, set()).add(name)
    return out


def test_every_operation_the_library_calls_on_a_client_is_in_the_protocol() -> None:
    calls = _calls_on_a_client()
    # storage.py's ``self.client`` is boto3's S3 client, not HighLevel's
    s3 = {a for a, mods in calls.items() if mods == {"dos2hl.storage"}}
    missing = {a: sorted(m) for a, m in calls.items() if a not in _members(Client) and a not in s3}
    assert not missing, f"add these to dos2hl.highlevel.protocols (or stop reaching inside): {missing}"
    assert {"create_contact", "update_record", "list_custom_fields", "stats"} <= set(calls)  # the scan sees


def test_the_client_has_every_member_the_protocol_promises() -> None:
    lacking = [n for n in _members(Client) if not hasattr(HighLevelClient, n)
               and n not in ("location_id", "stats", "tally")]  # instance attributes, set in __init__
    assert not lacking


def test_no_library_module_holds_a_client_as_any() -> None:
    held = re.compile(r"\bclient: Any\b|factory: Callable\[\[str\], Any\]")
    loose = [name for name, path in modules().items()
             if name.startswith("dos2hl") and not name.startswith(OWN[1:]) and held.search(path.read_text())]
    assert not loose, loose
