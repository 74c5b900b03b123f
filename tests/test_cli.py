"""Every subcommand has --help; errors exit with the documented codes."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dos2hl.cli import app

runner = CliRunner()
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]


def test_commands_are_registered() -> None:
    assert {"generate", "audit", "stage", "demo", "version"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_stage_without_patient_file_exits_2_and_writes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "export"
    src.mkdir()
    (src / "LOCATION.CSV").write_bytes(b"LOC_ID,LOC_NAME\r\nL001,Main\r\n")
    out = tmp_path / "staged"
    result = runner.invoke(app, ["stage", str(src), "--to", str(out)])
    assert result.exit_code == 2
    assert "no PATIENT.CSV" in result.output
    assert not out.exists()
