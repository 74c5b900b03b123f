"""A small export in another vendor's naming, with distinctive fake values (the canary: none of them may
reach the review page), its proposed map on disk, and a running review server.

The map is the proposer's answer for this export as it was when these tests were written
(tests/fixtures/review/mapping.yaml: the postcode proposed as a custom field, confidence 0.30), kept as a
file so the review page's tests do not move with the proposer's tuning."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import Thread

from dos2hl.mapping.model import load_mapping, save_mapping
from dos2hl.mapping.review import pick_values, read_export
from dos2hl.mapping.review_server import ReviewServer
from dos2hl.provision.impact import schema_impact

__all__ = ["CANARIES", "MAPPING", "running", "write_export"]

MAPPING = Path(__file__).resolve().parents[1] / "fixtures" / "review" / "mapping.yaml"

PATIENTS = """\
PatID,LastName,FirstName,MobilePhone,PostCode,Status,BirthDate,Gender,MedAlert
1,Quixotesque,Zebulon,555-867-5309,97201,A,1984-02-29,M,Allergic to penicillin
2,Zamboni,Ophelia,555-201-4444,97202,I,1990-01-01,F,
3,Brown,Al,555-201-4445,97203,A,1975-05-05,M,
4,Green,Bea,555-201-4446,97204,A,1965-06-06,F,
"""
APPOINTMENTS = """\
ApptID,PatID,ApptDate,ApptStatus,Codes
10,1,2026-01-02,CMP,D0120;D1110
11,2,2026-01-03,SCH,D0150
12,3,2026-01-04,BRK,
13,1,2026-01-05,CMP,D2391
"""
#: patient values of the fixture: names, a phone, a birth date, a postcode, a medical alert
CANARIES = ("Quixotesque", "Zebulon", "Zamboni", "Ophelia", "867-5309", "5558675309", "1984-02-29", "97201",
            "penicillin", "Allergic")


def write_export(root: Path) -> tuple[Path, Path]:
    """The export folder and its proposed (unconfirmed) mapping.yaml."""
    export = root / "export"
    export.mkdir()
    (export / "Patients.csv").write_text(PATIENTS, encoding="utf-8")
    (export / "Appointments.csv").write_text(APPOINTMENTS, encoding="utf-8")
    m = load_mapping(MAPPING)
    path = save_mapping(m.model_copy(update={"export": m.export.model_copy(update={"source": str(export)})}),
                        root / "mapping.yaml")
    return export, path


@contextmanager
def running(path: Path, export: Path, idle_s: float = 120.0) -> Iterator[ReviewServer]:
    """A review server of ``path`` on 127.0.0.1 (port 0), serving in a thread; stopped on exit."""
    shapes, cells = read_export(export)
    server = ReviewServer(path, shapes, pick_values(load_mapping(path), cells), schema_impact, idle_s=idle_s)
    t = Thread(target=server.serve, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.stop()
        t.join(timeout=10)
