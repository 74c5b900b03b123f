"""The writer's fast paths against the plain code they stand for, on whole generated exports: the
compiled row formatter (``formats.row_formatter``) against one ``formatter`` call per cell, and the
mess rules' compiled quiet path (``TableMess._compile_quiet``) against running every rule on every
row. Same bytes in every file (export, truth, defects)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL

from dos2hl.generate import GenerateParams, generate, mess, writer
from dos2hl.generate.formats import FileStyle, RowFmt, formatter
from dos2hl.model import Column


def _per_cell(cols: Sequence[Column], style: FileStyle) -> RowFmt:
    fmts = [(c.name, formatter(c, style)) for c in cols]
    return lambda row: ["" if (v := row[c]) is None else f(v) for c, f in fmts]


def _files(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fixture, params", [
    ("nasty", dict(seed=7, mess="nasty", large_docs=True)),
    ("softdent", dict(seed=11, format="softdent_like", locations=2)),
])
def test_fast_paths_write_what_the_plain_code_writes(fixture: str, params: dict[str, Any], tmp_path: Path,
                                                     request: pytest.FixtureRequest,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fast = request.getfixturevalue(fixture)
    monkeypatch.setattr(writer, "row_formatter", _per_cell)
    monkeypatch.setattr(mess.TableMess, "_compile_quiet", lambda self: None)
    generate(tmp_path, GenerateParams(**{**SMALL, **params}))  # type: ignore[arg-type]
    assert _files(tmp_path) == _files(fast)
