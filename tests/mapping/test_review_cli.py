"""``dos2hl map review`` as a command: it prints the page's address (loopback, token), serves until the
page confirms, and exits 0 with the map confirmed; without a readable export it refuses (exit 2)."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from dos2hl.cli import app
from dos2hl.mapping.model import require_confirmed
from tests.mapping.review_fixture import write_export


def test_the_command_serves_the_page_and_exits_0_once_confirmed(tmp_path: Path) -> None:
    export, path = write_export(tmp_path)
    code = "from dos2hl.cli import app; app()"
    proc = subprocess.Popen([sys.executable, "-c", code, "map", "review", str(path), "--source", str(export),
                             "--no-plan", "--idle-timeout", "120"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)", line)
        assert m, line
        port, token = int(m.group(1)), m.group(2)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/confirm", body=json.dumps({"by": "Dr. Rivera"}),
                     headers={"X-Review-Token": token, "Content-Type": "application/json"})
        assert conn.getresponse().status == 200
        conn.close()
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0 and "confirmed by Dr. Rivera" in out
    done = require_confirmed(path)
    assert done.confirmed is not None and done.confirmed.sha256 == done.content_hash()


def test_the_command_refuses_without_a_local_export(tmp_path: Path) -> None:
    _, path = write_export(tmp_path)
    result = CliRunner().invoke(app, ["map", "review", str(path), "--source", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "local export folder" in result.output
