"""The sandbox store's filtered listing (``Store.list_where``): SQLite filters before anything is decoded."""

from __future__ import annotations

from pathlib import Path

import pytest

from dos2hl.sandbox.store import Store


def test_list_where_is_list_filtered_by_a_top_level_field_in_order_without_deleted(tmp_path: Path) -> None:
    s = Store(tmp_path)
    for i, (key, loc) in enumerate([("a", "L1"), ("b", "L1"), ("a", "L1"), ("a", "L2"), ("a", "L1")]):
        s.put("cf2_field", loc, {"id": f"f{i}", "objectKey": key}, now=0.0)
    s.delete("cf2_field", "f4", now=0.0)
    got = s.list_where("cf2_field", "L1", "objectKey", "a")
    assert [d["id"] for d in got] == ["f0", "f2"]
    assert got == [d for d in s.list("cf2_field", "L1") if d["objectKey"] == "a"]
    assert s.list_where("cf2_field", "L1", "objectKey", "zzz") == []
    with pytest.raises(ValueError):
        s.list_where("cf2_field", "L1", "x') OR 1=1 --", "a")
    s.close()
