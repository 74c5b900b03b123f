"""A run whose Ray cluster has more than one alive node refuses local storage, before anything is written
(issue 16). The node list is faked: no Ray cluster is started here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from dos2hl.errors import ConfigError
from dos2hl.execution.cluster import require_shared_storage, worker_uris
from dos2hl.planning.plan import ShardSpec

TWO = ["node-a", "node-b"]


def _locations(tmp_path: Path) -> Path:
    path = tmp_path / "locations.yaml"
    path.write_text(yaml.safe_dump({"target": "http://127.0.0.1:9", "locations": [
        {"source": "L001", "location_id": "loc1", "token_env": "DOS2HL_TEST_TOKEN_L001"}]}))
    return path


def _params(tmp_path: Path, storage: str) -> Any:
    from dos2hl.params import MigrateParams

    return MigrateParams(source=str(tmp_path / "export"), mapping=str(tmp_path / "mapping.yaml"),
                         locations=str(_locations(tmp_path)), storage=storage, executor="ray", workers=2)


@dataclass
class FakeCluster:
    alive: list[str]  # what pool.alive_nodes answers
    opened: list[Any] = field(default_factory=list)  # the settings each open_governor call got


@pytest.fixture()
def nodes(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    """Two alive nodes as ``pool.alive_nodes`` reports them, and a governor that only counts its openings."""
    import dos2hl.execution.pool as pool
    import dos2hl.governor as governor

    cluster = FakeCluster(list(TWO))
    monkeypatch.setattr(pool, "alive_nodes", lambda address=None: list(cluster.alive))

    def fake_open(settings: Any, **kw: Any) -> Any:
        cluster.opened.append(settings)
        return type("Permits", (), {"for_class": lambda self, cls: self})()

    monkeypatch.setattr(governor, "open_governor", fake_open)
    return cluster


def test_two_nodes_and_a_local_storage_root_is_refused_naming_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        require_shared_storage(TWO, {"the storage root": "runs", "the governor's state": "s3://b/state/g.json"})
    msg = str(err.value)
    assert "2 alive nodes" in msg and "the storage root: runs" in msg
    assert "--storage s3://bucket/prefix" in msg and "DOS2HL_STORAGE" in msg and "nothing was written" in msg
    assert "governor's state" not in msg.split("(")[1].split(")")[0]  # only the local one is named


def test_one_node_keeps_local_storage_and_two_nodes_take_s3() -> None:
    require_shared_storage(["only"], {"the storage root": "runs"})
    require_shared_storage(TWO, {"the storage root": "s3://b/runs", "the governor's state": "s3://b/g.json",
                                 "the export (document files)": None})


def test_the_export_counts_only_when_the_map_sends_documents() -> None:
    def spec(tables: list[str]) -> ShardSpec:
        fields = [{"table": t, "target": "x.y"} for t in tables] + [{"table": "commlog", "target": "skip"}]
        return ShardSpec("r", "s3://b/runs/r", "s3://b/runs/r/staged", {"fields": fields}, "L001", 0, {},
                         source="/exports/practice")

    assert worker_uris(spec(["patient"]))["the export (document files)"] is None
    assert worker_uris(spec(["patient", "document"]))["the export (document files)"] == "/exports/practice"
    with pytest.raises(ConfigError, match="document files"):
        require_shared_storage(TWO, worker_uris(spec(["document"])))


def test_open_env_refuses_local_storage_on_two_nodes_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nodes: FakeCluster) -> None:
    from dos2hl.pipeline import open_env

    monkeypatch.delenv("DOS2HL_GOVERNOR_STATE", raising=False)
    local = tmp_path / "runs"
    with pytest.raises(ConfigError, match="the storage root: .*runs"):
        open_env(_params(tmp_path, str(local)))
    assert not local.exists()
    assert nodes.opened == []  # refused before the governor was opened
    nodes.alive = ["only"]  # one node: a local folder is that node's disk, as before
    env = open_env(_params(tmp_path, str(local)))
    assert env.settings.storage == str(local)


def test_open_env_takes_s3_on_two_nodes_and_the_governor_state_follows_the_run_storage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nodes: FakeCluster) -> None:
    from dos2hl.governor import state_uri
    from dos2hl.pipeline import open_env

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "default-runs"))  # a local default, overridden
    monkeypatch.delenv("DOS2HL_GOVERNOR_STATE", raising=False)
    env = open_env(_params(tmp_path, "s3://bucket/runs"))
    assert state_uri(env.settings) == "s3://bucket/runs/state/governor.json"
    assert len(nodes.opened) == 1
    monkeypatch.setenv("DOS2HL_GOVERNOR_STATE", str(tmp_path / "gov.json"))  # a local state: refused too
    with pytest.raises(ConfigError, match="the governor's state"):
        open_env(_params(tmp_path, "s3://bucket/runs"))


def test_run_on_ray_refuses_a_local_run_before_any_worker_or_governor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nodes: FakeCluster) -> None:
    import dos2hl.execution.pool as pool
    from dos2hl.locations import load_locations
    from dos2hl.settings import Dos2hlSettings

    def no(*a: Any, **kw: Any) -> Any:
        raise AssertionError("reached past the check")

    monkeypatch.setattr(pool, "connect", no)
    settings = Dos2hlSettings(storage="s3://bucket/runs")
    spec = ShardSpec("r", str(tmp_path / "runs" / "r"), str(tmp_path / "runs" / "r" / "staged"),
                     {"fields": []}, "L001", 0, {})
    with pytest.raises(ConfigError, match="the run .ledger"):
        pool.run_on_ray([spec], no, load_locations(_locations(tmp_path)), settings, workers=2)


def test_a_phase_counts_its_shards_per_node_and_the_ones_started_again() -> None:
    from dos2hl.execution.results import WriteResult

    shards = [{"location": "L001", "shard": 0, "node": "n1"}, {"location": "L001", "shard": 1, "node": "n2"},
              {"location": "L002", "shard": 0, "node": "n1", "retried": 2}]
    assert WriteResult(phase="full", shards=shards).nodes() == {
        "shards": {"n1": 2, "n2": 1}, "retried": {"shards": 1, "attempts": 2}}
    threads = [{"location": "L001", "shard": 0, "node": ""}]  # this process's threads: nothing to show
    assert WriteResult(phase="full", shards=threads).nodes() == {}


class _Ready:
    def remote(self) -> str:
        return "ready-ref"


class _FakeActor:
    __ray_ready__ = _Ready()


def test_a_lost_worker_is_dead_only_once_ray_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unavailable actor's task "may or may not have been executed" and may still run: its shard runs
    again only after Ray reports the actor dead (review of issue 16), so it never runs twice at once."""
    from ray.exceptions import ActorDiedError, ActorUnavailableError

    from dos2hl.execution import pool

    answers: list[Exception | None] = [ActorUnavailableError("gone for now", None), None, ActorDiedError()]
    kills: list[object] = []

    def get(ref: object, timeout: float | None = None) -> None:
        got = answers.pop(0)
        if got is not None:
            raise got

    monkeypatch.setattr(pool.ray, "get", get)
    monkeypatch.setattr(pool.ray, "kill", kills.append)
    monkeypatch.setattr(pool.time, "sleep", lambda s: None)
    actor = _FakeActor()
    assert pool._confirmed_dead(actor) is True
    assert answers == [] and kills == [actor]  # still alive once in between: ended again


def test_a_worker_never_confirmed_dead_is_not_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    from dos2hl.execution import pool

    monkeypatch.setattr(pool.ray, "get", lambda ref, timeout=None: None)  # it keeps answering
    monkeypatch.setattr(pool.ray, "kill", lambda actor: None)
    assert pool._confirmed_dead(_FakeActor(), timeout=0.05) is False


def test_a_replacement_never_goes_to_a_node_that_joined_a_local_storage_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage check passed with one node and a local folder; a node joined since (an autoscaler): a
    worker lost on the first node is not replaced on the new one, whose disk the run never reads."""
    from dos2hl.execution import pool

    monkeypatch.setattr(pool, "alive_nodes", lambda address=None: ["head", "joined"])
    placement = pool._Placement(["head"], lambda alive: pool.require_shared_storage(
        alive, {"the storage root": "/srv/runs"}))
    made: list[object] = []
    with pytest.raises(ConfigError, match="2 alive nodes"):
        placement.place(made.append, lost="head")
    assert made == []


def test_open_env_refuses_a_local_export_whose_documents_are_sent_before_anything_is_staged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nodes: FakeCluster) -> None:
    """The document files' worker reads the export's IMAGES/: on two nodes a local export is refused at
    the start with the storage, not in the write phase after the export was staged (review of issue 16)."""
    from dos2hl.mapping.model import save_mapping
    from dos2hl.mapping.propose import reference_mapping
    from dos2hl.pipeline import open_env

    monkeypatch.delenv("DOS2HL_GOVERNOR_STATE", raising=False)
    fmap = reference_mapping()
    assert any(e.table == "document" and e.target not in ("skip", "reference") for e in fmap.fields)
    save_mapping(fmap.confirm("Test Runner"), tmp_path / "mapping.yaml")
    with pytest.raises(ConfigError, match="the export \\(document files\\)"):
        open_env(_params(tmp_path, "s3://bucket/runs"))
    assert nodes.opened == []
    skip_docs = fmap.model_copy(update={"fields": [
        e.model_copy(update={"target": "skip"}) if e.table == "document" else e for e in fmap.fields]})
    save_mapping(skip_docs.confirm("Test Runner"), tmp_path / "mapping.yaml")
    assert open_env(_params(tmp_path, "s3://bucket/runs")).settings.storage == "s3://bucket/runs"
