"""Every subcommand has --help; errors exit with the documented codes."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dos2hl.cli import app

runner = CliRunner()
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]
GROUPS = {g.name: g.typer_instance for g in app.registered_groups}
SUBCOMMANDS = sorted(
    (group, c.name or c.callback.__name__)  # type: ignore[union-attr]
    for group, sub in GROUPS.items() for c in sub.registered_commands  # type: ignore[union-attr]
)


def test_commands_are_registered() -> None:
    assert {"generate", "audit", "stage", "quarantine", "demo", "version"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.mark.parametrize(("group", "command"), SUBCOMMANDS)
def test_every_subcommand_has_help(group: str, command: str) -> None:
    result = runner.invoke(app, [group, command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_sandbox_group_is_registered() -> None:
    assert ("sandbox", "serve") in SUBCOMMANDS and ("sandbox", "dump") in SUBCOMMANDS


def test_stage_without_patient_file_exits_2_and_writes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "export"
    src.mkdir()
    (src / "LOCATION.CSV").write_bytes(b"LOC_ID,LOC_NAME\r\nL001,Main\r\n")
    out = tmp_path / "staged"
    result = runner.invoke(app, ["stage", str(src), "--to", str(out)])
    assert result.exit_code == 2
    assert "no PATIENT.CSV" in result.output
    assert not out.exists()


def test_stage_then_list_quarantine_by_file_and_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.test_staging import APPT, LOCATION, PATIENT

    src = tmp_path / "export"
    src.mkdir()
    for name, data in {"LOCATION.CSV": LOCATION, "PATIENT.CSV": PATIENT, "APPT.CSV": APPT}.items():
        (src / name).write_bytes(data)
    out = tmp_path / "staged"
    result = runner.invoke(app, ["stage", str(src), "--to", str(out), "--export-date", "2024-06-28"])
    assert result.exit_code == 0, result.output
    assert "PATIENT.CSV: 41 records = 40 clean + 0 repaired + 1 quarantined" in result.output
    assert "2 rows quarantined" in result.output
    listed = runner.invoke(app, ["quarantine", str(out)])
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].startswith("APPT.CSV:43 (record 42) FK1:")
    assert lines[1].startswith("PATIENT.CSV:42 (record 41) CSV2: 3 fields where 5 were expected")
    assert "Broken" not in listed.output  # the row's text (patient data) is never printed
    as_csv = runner.invoke(app, ["quarantine", str(out), "--csv", "--table", "patient"])
    assert as_csv.output.splitlines()[0] == "file,line,record,table,code,reason"
    assert len(as_csv.output.splitlines()) == 2
