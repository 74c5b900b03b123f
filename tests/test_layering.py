"""The library stays importable without Prefect; only the governor may import Ray."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import dos2hl


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(dos2hl.__path__, "dos2hl."))


def test_library_imports_neither_prefect_nor_ray() -> None:
    mods = [m for m in _modules() if m not in ("dos2hl.governor.actor", "dos2hl.execution.pool")]
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "bad = [m for m in ('prefect', 'ray') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"dos2hl imports {out.stdout.strip()}"
    assert len(mods) > 10
