"""``parse_yaml``: a text parsed once per process, every caller its own copy, an edit parsed again."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from dos2hl.sources import profile
from dos2hl.sources.profile import parse_yaml

TEXT = ("fields:\n  - table: patient\n    column: lname\n    values: {A: Active}\n"
        "confirmed: {at: 2026-12-01}\n")


def test_a_text_seen_before_is_not_parsed_again_and_each_caller_gets_its_own_copy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = yaml.load
    text = TEXT + f"# {id(calls)}\n"  # a text no other test parsed in this process
    expected = yaml.safe_load(text)

    def counting(*a, **k):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(profile.yaml, "load", counting)
    first = parse_yaml(text)
    first["fields"][0]["values"]["A"] = "changed by its caller"
    second = parse_yaml(text)
    assert len(calls) == 1
    assert second == expected  # the first caller's change is not in the second's copy
    assert second["confirmed"]["at"] == dt.date(2026, 12, 1)
    assert second is not first

    edited = parse_yaml(text.replace("lname", "fname"))
    assert len(calls) == 2
    assert edited["fields"][0]["column"] == "fname"


def test_only_the_last_texts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile, "_PARSED_CAP", 3)
    for i in range(5):
        parse_yaml(f"n: {i}\n# cap test {id(monkeypatch)}\n")
    assert len(profile._parsed) == 3


def test_invalid_yaml_raises_and_is_not_kept() -> None:
    before = len(profile._parsed)
    with pytest.raises(yaml.YAMLError):
        parse_yaml("a: [unclosed\n")
    assert len(profile._parsed) == before
