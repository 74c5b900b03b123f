"""Small generated exports shared by the generator tests (session scope: each is built once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dos2hl.generate import GenerateParams, generate

SMALL = dict(patients=300, images="stub")


def _run(tmp_path_factory: pytest.TempPathFactory, name: str, **kw: object) -> Path:
    out = tmp_path_factory.mktemp(name)
    generate(out, GenerateParams(**{**SMALL, **kw}))  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="session")
def typical(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory, "typical", seed=7)


@pytest.fixture(scope="session")
def nasty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory, "nasty", seed=7, mess="nasty", large_docs=True)


@pytest.fixture(scope="session")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory, "clean", seed=7, mess="clean")


@pytest.fixture(scope="session")
def softdent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory, "softdent", seed=11, format="softdent_like", locations=2)


@pytest.fixture(scope="session")
def drcr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory, "drcr", seed=5, ledger_sign="drcr", images="none", mess="clean")


@pytest.fixture(scope="session")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory, "split", seed=5, ledger_sign="split_columns", images="none", mess="clean")


@pytest.fixture(scope="session", params=["typical", "nasty", "softdent"])
def messy(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(request.param)
