"""The map's list columns (``split``) and the compatibility of maps confirmed before it existed."""

from __future__ import annotations

from pathlib import Path

import pytest

from dos2hl.errors import ConfigError
from dos2hl.mapping.model import Entry, Mapping, load_mapping, require_confirmed, save_mapping

FIXTURE = Path(__file__).parents[1] / "fixtures" / "confirmed_v1_mapping.yaml"


def test_a_map_confirmed_before_list_columns_existed_is_still_confirmed() -> None:
    # written and confirmed by the release before ``split``: its hash and entry digests must still hold
    m = require_confirmed(FIXTURE)
    assert m.confirmed is not None and m.confirmed.by == "Dr. Example"


def test_a_list_column_is_part_of_the_confirmed_content(tmp_path: Path) -> None:
    m = load_mapping(FIXTURE)
    e = m.fields[0]
    listed = m.model_copy(update={"fields": [e.model_copy(update={"split": ";"}), *m.fields[1:]]})
    path = save_mapping(listed, tmp_path / "m.yaml")
    with pytest.raises(ConfigError, match=rf"{e.source} changed"):
        require_confirmed(path)
    assert load_mapping(path).fields[0].split == ";"


@pytest.mark.parametrize("entry", [
    dict(source="V.Codes", target="skip", type="TEXT", confidence=0.5, split=";"),
    dict(source="V.Codes", table="apptproc", column="proc_code", target="skip", type="TEXT",
         confidence=0.5, split=""),
    dict(source="V.Codes", table="nosuch", column="x", target="skip", type="TEXT", confidence=0.5),
])
def test_a_list_column_needs_its_separators_table_and_column(entry: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Mapping(fields=[Entry.model_validate(entry)])
