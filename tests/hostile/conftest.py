"""The adversarial suite's shared pieces (issue 14): a canary, and where to look for it.

A hostile test plants ``CANARY`` in patient values (names, notes, file names) and asserts that it never
reaches what the project promises holds ids and counts only: logs, the ledger, reports, artifacts,
file names, exception texts. ``leaks(root, *texts)`` names every place it was found.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

CANARY = "Zyxcanaryqw"  # a surname no generator produces; planted in patient values


def leaks(root: Path | None, *texts: str, canary: str = CANARY) -> list[str]:
    """Where ``canary`` appears: in any text given (a log, an exception's text), or under ``root`` in
    any file's name or bytes (Parquet included: it is searched as bytes, so an unencrypted column shows)."""
    found = [f"text #{i}" for i, t in enumerate(texts) if canary.casefold() in t.casefold()]
    if root is not None:
        needle = canary.encode()
        for p in sorted(root.rglob("*")):
            if canary.casefold() in p.name.casefold():
                found.append(f"name {p.relative_to(root)}")
            elif p.is_file() and not p.is_symlink():
                try:
                    if needle in p.read_bytes():
                        found.append(f"file {p.relative_to(root)}")
                except OSError:
                    continue
    return found


def peak_rss_mib() -> float:
    """This process's peak resident set (MiB), printed by the suite's memory-bound tests."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture()
def phi_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run storage and a PHI key under ``tmp_path``; yields the storage root."""
    from dos2hl.phi import create_key_file

    storage = tmp_path / "runs"
    monkeypatch.setenv("DOS2HL_STORAGE", str(storage))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    yield storage
