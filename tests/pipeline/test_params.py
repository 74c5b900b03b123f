"""One parameter model per pipeline, with one set of defaults: the CLI's options, the flows'
parameters and prefect.yaml's deployments are the same model (issue 15)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dos2hl.params import DeltaParams, MigrateParams, RollbackParams

ROOT = Path(__file__).resolve().parents[2]


def _cli_defaults(command: str, app: Any) -> dict[str, Any]:
    """The command's parameters and their defaults, as typer declares them."""
    for cmd in app.registered_commands:
        if (cmd.name or cmd.callback.__name__) == command:
            sig = inspect.signature(cmd.callback)
            return {name: (p.default if p.default is not inspect.Parameter.empty else ...)
                    for name, p in sig.parameters.items()}
    raise AssertionError(f"no command {command}")


@pytest.mark.parametrize(("command", "model", "cli_only"), [
    # --wait-for-quota: the terminal's own way to wait (a deployment reschedules itself: flows/migrate.py)
    ("migrate", MigrateParams, {"as_json", "wait_for_quota"}),
    ("rollback", RollbackParams, {"as_json"}),
])
def test_every_cli_option_is_a_field_of_the_pipelines_model_with_its_default(command: str, model: Any,
                                                                             cli_only: set[str]) -> None:
    from dos2hl.cli import app

    cli = _cli_defaults(command, app)
    fields = model.model_fields
    assert set(cli) - cli_only <= set(fields), set(cli) - cli_only - set(fields)
    for name, default in cli.items():
        if name in cli_only or default is ...:
            continue
        assert fields[name].default == default, (name, default, fields[name].default)
    # what the model has and the command does not offer: gate timeouts (a deployment's), executor of rollback
    assert set(fields) - set(cli) <= {"approval_timeout_s", "executor"}


def test_the_delta_commands_options_are_the_delta_model() -> None:
    import typer

    from dos2hl.cli.ops import register

    app = typer.Typer()
    register(app)
    cli = _cli_defaults("delta", app)
    fields = DeltaParams.model_fields
    assert set(cli) - {"as_json"} <= set(fields)
    for name, default in cli.items():
        if name != "as_json" and default is not ...:
            assert fields[name].default == default, name


@pytest.mark.parametrize(("flow", "model"), [("flows.migrate:migrate_flow", MigrateParams),
                                            ("flows.delta:delta_flow", DeltaParams),
                                            ("flows.rollback:rollback_flow", RollbackParams)])
def test_each_flow_takes_the_librarys_model(flow: str, model: Any) -> None:
    import importlib

    mod, name = flow.split(":")
    fn = getattr(importlib.import_module(mod), name)
    assert inspect.signature(fn.fn).parameters["params"].annotation in (model, model.__name__)
    assert getattr(importlib.import_module(mod), model.__name__) is model  # re-exported, not redeclared


def test_every_deployment_of_prefect_yaml_validates_against_its_model() -> None:
    models = {"flows/migrate.py:migrate_flow": MigrateParams, "flows/delta.py:delta_flow": DeltaParams,
              "flows/rollback.py:rollback_flow": RollbackParams}
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    seen = 0
    for d in doc["deployments"]:
        model = models.get(d["entrypoint"])
        if model is not None:
            model.model_validate(d["parameters"]["params"])  # extra="forbid": a typo is an error
            seen += 1
    assert seen >= 3


def test_an_invalid_option_is_a_usage_error_naming_it_not_a_traceback(tmp_path: Path) -> None:
    from dos2hl.cli import app

    out = CliRunner().invoke(app, ["migrate", str(tmp_path), "--mapping", str(tmp_path / "m.yaml"),
                                   "--locations", str(tmp_path / "l.yaml"), "--executor", "fork"])
    assert out.exit_code == 2
    assert "--executor" in out.output and "Traceback" not in out.output


def test_a_params_typo_is_refused() -> None:
    with pytest.raises(ValueError, match="sampel"):
        MigrateParams(source="x", mapping="m", locations="l", sampel=3)  # type: ignore[call-arg]


def test_a_runs_env_saves_the_governors_usage_when_it_ends_even_on_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The governor saves its usage every few seconds while it runs; a run shorter than that (or its
    last seconds) reached ``state/governor.json`` only if the env closed it: ``dos2hl status`` and the
    next run would count too few requests today."""
    import json

    from dos2hl.pipeline import open_env

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    lf = tmp_path / "locations.yaml"
    lf.write_text(yaml.safe_dump({"target": "http://127.0.0.1:9", "locations": [
        {"source": "L001", "location_id": "loc-1", "token_env": "DOS2HL_TEST_TOKEN"}]}))
    params = RollbackParams(run_id="r-env", locations=str(lf))
    state = tmp_path / "runs" / "state" / "governor.json"
    with pytest.raises(RuntimeError), open_env(params) as env:
        env.permits.acquire("loc-1", 3)
        raise RuntimeError("the run fails after its requests")
    used = json.loads(state.read_text())["keys"]
    assert [sum(v["days"].values()) for k, v in used.items() if k.endswith("/loc-1")] == [3]
