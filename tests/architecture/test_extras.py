"""The product ships without its test kit (issue 15): the migration imports and its command runs on an
install without the rehearsal tools' extras (sandbox: openapi-core, starlette, uvicorn; generate:
faker); the tools' commands then say which extra they need. (psutil, now in the dev group, comes with Ray.)"""

from __future__ import annotations

import subprocess
import sys

from tests.architecture.imports import modules

#: Modules an install without extras must not need (a None in sys.modules makes their import fail).
ABSENT = ("faker", "openapi_core", "starlette", "uvicorn")
TOOLS = ("dos2hl.sandbox", "dos2hl.generate")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    block = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in ABSENT)
    return subprocess.run([sys.executable, "-c", block + code], capture_output=True, text=True, timeout=300)


def test_the_library_and_its_command_import_without_the_extras() -> None:
    library = sorted(m for m in modules() if m.startswith("dos2hl") and not m.startswith(TOOLS))
    code = ("import importlib\n"
            f"for m in {library!r}: importlib.import_module(m)\n"
            "from typer.testing import CliRunner\n"
            "from dos2hl.cli import app\n"
            "r = CliRunner().invoke(app, ['--help'])\n"
            "assert r.exit_code == 0, r.output\n"
            "print('ok', len(sys.modules))\n")
    out = _run(code)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stderr[-3000:]


def test_a_rehearsal_command_without_its_extra_names_it() -> None:
    code = ("from typer.testing import CliRunner\n"
            "from dos2hl.cli import app\n"
            "for args in (['generate', '/nonexistent'], ['sandbox', 'dump', '--state', '/nonexistent'], "
            "['demo']):\n"
            "    r = CliRunner().invoke(app, args)\n"
            "    assert r.exit_code == 2 and 'extra' in r.output and 'Traceback' not in r.output, (args, "
            "r.output)\n"
            "print('ok')\n")
    out = _run(code)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:] + out.stdout[-2000:]
