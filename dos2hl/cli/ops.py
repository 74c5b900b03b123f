"""Operations commands of the CLI: ``plan`` (quota), ``workflows`` (rebuild reference), ``phi`` (keys,
decrypt), ``status`` (a run's progress, read only) and ``delta`` (cutover and nightly syncs);
``dos2hl.cli`` registers them on its app."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional, get_args

import typer

from ..errors import ConfigError, Dos2hlError
from ..params import Executor
from ..settings import Dos2hlSettings
from .common import (
    ExportDateOpt,
    JsonOpt,
    LocationsOpt,
    MappingOpt,
    StorageOpt,
    TargetOpt,
    _fail,
    params_or_exit,
)


def register(app: typer.Typer) -> None:
    """Add the operations commands to ``app``."""
    phi_app = typer.Typer(help="PHI field encryption: keys and the decrypt command.", no_args_is_help=True)
    app.add_typer(phi_app, name="phi")


    @phi_app.command("new-key")
    def phi_new_key(
        out: Annotated[Path, typer.Option("--out", help="Where to write the key file (never overwritten).")],
        kms_key_id: Annotated[Optional[str], typer.Option("--kms-key-id",
                                                          help="Wrap the data key with this AWS KMS "
                                                          "key: the file alone opens nothing.")] = None,
    ) -> None:
        """Create the key the map's 'encrypt' fields are sealed with (point DOS2HL_PHI_KEY_FILE at it)."""
        from ..phi import create_key_file

        try:
            typer.echo(f"PHI key: {create_key_file(out, kms_key_id=kms_key_id)}")
        except Dos2hlError as exc:
            _fail(exc)


    @phi_app.command("rotate-key")
    def phi_rotate_key(
        key_file: Annotated[Optional[Path],
                            typer.Option("--key-file", help="Default DOS2HL_PHI_KEY_FILE.")] = None,
        kms_key_id: Annotated[Optional[str], typer.Option("--kms-key-id",
                                                          help="Wrap the new data key with this "
                                                          "AWS KMS key.")] = None,
    ) -> None:
        """Append a new key to the key file: it seals from now on, the older keys still open their values."""
        from ..phi import rotate_key_file

        try:
            path = key_file or Dos2hlSettings().phi_key_file
            if not path:
                raise ConfigError("no key file: pass --key-file or set DOS2HL_PHI_KEY_FILE")
            typer.echo(f"PHI key {rotate_key_file(path, kms_key_id=kms_key_id)} added to {path}; it seals "
                       f"from now on")
        except Dos2hlError as exc:
            _fail(exc)


    @phi_app.command("decrypt")
    def phi_decrypt(
        field: Annotated[str, typer.Option("--field", help="The value's target key, e.g. "
                                           "custom_objects.clinical_notes.note_text.")],
        record: Annotated[str, typer.Option("--record",
                                            help="The record the value belongs to: its stable key "
                                            "(the ledger's stable_key), or LOC/OBJECT/SOURCE_ID, e.g. "
                                            "L001/clinical_note/402 (values are bound to their "
                                            "record).")] = "",
        value: Annotated[Optional[str],
                         typer.Argument(help="The enc: value (default: read from stdin).")] = None,
        key_file: Annotated[Optional[Path],
                            typer.Option("--key-file", help="Default DOS2HL_PHI_KEY_FILE.")] = None,
    ) -> None:
        """Open one value a migration stored encrypted in HighLevel (prints the plain text)."""
        from ..phi import load_sealer
        from ..planning.keys import stable_key

        try:
            if record.count("/") == 2:
                record = stable_key(*record.split("/"))
            sealer = load_sealer(key_file or Dos2hlSettings().phi_key_file)
            typer.echo(sealer.open((value or sys.stdin.read()).strip(), field, record))
        except Dos2hlError as exc:
            _fail(exc)


    @app.command()
    def plan(
        source: Annotated[str, typer.Argument(help="Export folder or s3://bucket/prefix.")],
        mapping: Annotated[Path, typer.Option("--mapping", help="The mapping.yaml (confirmed or not).")],
        bulk_threshold: Annotated[int, typer.Option("--bulk-threshold",
                                                    help="Records per object and location "
                                                    "above which the CSV bulk path is planned.")] = 5000,
        sample: Annotated[int,
                          typer.Option("--sample", help="Patients in the sample phase (read back).")] = 300,
        verify: Annotated[str, typer.Option("--verify", help="The run's read-back: 'sample' or 'full' "
                                            "(every record, by search pages).")] = "sample",
        export_date: ExportDateOpt = None,
        executor: Annotated[str, typer.Option("--executor", help="The run's executor, for the group's "
                                              "elapsed time: 'threads' (at most 64 shards at once) or "
                                              "'ray'.")] = "threads",
        workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="The run's --workers "
                                                    "(default: the run's default).")] = None,
        staged: Annotated[Optional[str], typer.Option("--staged", help="Plan from this staging of the "
                                                      "export (dos2hl stage SOURCE --to URI --profile "
                                                      "MAPPING) instead of staging it again; refused when "
                                                      "it is another export's or profile's, or a file "
                                                      "changed.")] = None,
        jobs: Annotated[Optional[int], typer.Option("--jobs", min=1, help="Processes that count the "
                                                    "shards (default: this machine's CPUs, for an export "
                                                    "of many shards; 1: in this process).")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Requests (writes and every read: schema, discovery, verification) and time at HighLevel's limits
        per location and object, with and without the bulk path; for a group, the elapsed time with every
        location at once and which location finishes last."""
        from ..quota import plan_quota, render_plan

        g = Dos2hlSettings().governor
        try:
            if executor not in get_args(Executor):  # the run's own choices (MigrateParams.executor)
                raise ConfigError(f"--executor is one of {', '.join(get_args(Executor))}, not {executor!r}")
            out = plan_quota(source, mapping, bulk_threshold=bulk_threshold, sample=sample, burst=g.burst,
                             window_s=g.window_s, daily=g.daily,
                             export_date=export_date.date() if export_date else None,
                             verify=verify, executor=executor, workers=workers, staged=staged,
                             check_staged=staged is not None, jobs=jobs)
        except Dos2hlError as exc:
            _fail(exc)
        typer.echo(json.dumps(out) if as_json else render_plan(out))


    @app.command()
    def workflows(
        source: Annotated[str, typer.Argument(help="Export folder or s3://bucket/prefix.")],
        mapping: Annotated[Path,
                           typer.Option("--mapping", help="The mapping.yaml (names the export's files).")],
        out: Annotated[Path, typer.Option("--out", help="Folder for workflows.md and workflows.json.")],
        export_date: ExportDateOpt = None,
    ) -> None:
        """The workflow rebuild reference (recalls, reminders, follow-ups) for a HighLevel admin."""
        import tempfile

        from ..api import stage_export
        from ..staging import require_balanced
        from ..storage import open_store
        from ..workflows import write_workflow_reference

        try:
            with tempfile.TemporaryDirectory(prefix="dos2hl-wf-") as tmp:
                result = stage_export(source, tmp, profile=str(mapping),
                                      export_date=export_date.date() if export_date else None)
                require_balanced(result, "the export's staging")
                staged = open_store(tmp)
                locs = sorted({k.split("location=", 1)[1].split("/", 1)[0] for k in staged.list("patient/")
                               if "location=" in k})
                write_workflow_reference(staged, open_store(out), locs)
        except Dos2hlError as exc:
            _fail(exc)
        typer.echo(f"workflow reference: {out / 'workflows.md'}")


    @app.command()
    def status(
        run_id: Annotated[str, typer.Argument(help="The run's id.")],
        storage: StorageOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Where a run stands, from its storage: per location and object source, written, failed, held,
        pending; requests today and left; paused locations and why; an ETA in flight. A write phase in
        flight (a resumed run's too) shows its progress.json (refreshed every DOS2HL_PROGRESS_EVERY_S
        seconds), a finished run its report. Read only; ids and counts only. Exit 0 when found, 2 when
        the storage holds no such run."""
        from ..execution.status import render, run_status

        try:
            st = run_status(storage or Dos2hlSettings().storage, run_id)
        except Dos2hlError as exc:
            _fail(exc)
        typer.echo(json.dumps(st, default=str) if as_json else render(st))

    @app.command()
    def delta(
        source: Annotated[str, typer.Argument(help="The new export (folder or s3://bucket/prefix).")],
        since_run: Annotated[str, typer.Option("--since-run", help="The run (migration or delta) it follows; "
                                               "'latest': the newest completed run of the storage.")],
        mapping: MappingOpt,
        locations: LocationsOpt,
        target: TargetOpt = None,
        storage: StorageOpt = None,
        run_id: Annotated[Optional[str], typer.Option("--run-id", help="Resume this delta run.")] = None,
        deleted: Annotated[str, typer.Option("--deleted",
                                             help="Rows deleted in the source: 'tag' the contact "
                                             "and report (default) or 'delete' them.")] = "tag",
        export_date: ExportDateOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """New, changed and deleted rows since a run: create, update in place (before-images kept), tag.
        Progress as migrate's (a live table, or a line per location every DOS2HL_PROGRESS_EVERY_S s)."""
        from ..params import DeltaParams
        from ..pipeline import delta_step, open_env
        from ..progress import terminal_sinks

        if deleted not in ("tag", "delete"):
            typer.echo("error: --deleted is 'tag' or 'delete'", err=True)
            raise typer.Exit(2)
        params = params_or_exit(DeltaParams, source=source, since_run=since_run, mapping=mapping,
                                locations=locations, target=target, storage=storage, run_id=run_id,
                                deleted=deleted,
                                export_date=export_date.date() if export_date else None)
        try:
            with open_env(params) as env:
                env.progress = terminal_sinks()  # a live table on a terminal, else a line a location each N s
                out = delta_step(env, params)
        except Dos2hlError as exc:
            _fail(exc)
        since = out.delta.since  # ('latest' resolved)
        summary = {"run_id": out.run_id, "status": out.status, "since": since,
                   "delta": out.delta.model_dump(), "report": out.report}
        typer.echo(json.dumps(summary, default=str) if as_json else
                   f"delta {out.run_id} since {since}: {out.status}; "
                   f"{json.dumps(out.delta.changes)}; "
                   f"report: {out.report}")
        if out.status == "paused":  # a location paused (issue 17): nothing failed; resume after the fix
            raise typer.Exit(4)
        if out.status == "waiting_for_quota":  # its daily quota spent: the next delta after the reset
            raise typer.Exit(5)
        if out.status != "completed":
            raise typer.Exit(1)
