"""``propose``: an export in, a reviewable ``Mapping`` out (offline; no row value leaves the machine).

The matcher says which canonical column each source column is (names, synonyms, value profiles);
the object map says where that canonical column goes in HighLevel. A source column that matches
nothing is kept visible: in the patient file it is proposed as a contact custom field (so nothing is
lost), elsewhere as ``skip`` with the reason, always with low confidence so a person looks at it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..sources.rowrules import LOC_COLUMN
from .match import FileMatch, match_export
from .model import Entry, ExportInfo, Mapping
from .objectmap import VALUE_LABELS, target_for

__all__ = ["DEFAULT_LOCATION", "mapping_from_matches", "propose", "reference_mapping", "single_office"]

DEFAULT_LOCATION = "L001"  # the office code a single-office export's rows get unless --location names one


def propose(source: str | Path, *, profile: str = "reference", location: str | None = None) -> Mapping:
    """Match ``source`` (an export folder) and turn the matches into a mapping to review
    (``location``: the office code of a single-office export, default ``DEFAULT_LOCATION``)."""
    where = str(source) if "://" in str(source) else str(Path(source).resolve())
    return mapping_from_matches(match_export(source), profile=profile, source=where, location=location)


def single_office(fields: list[Entry]) -> bool:
    """True when no file of the export says which office a row belongs to (no location column on the
    patient, provider, appointment or ledger rows): the export is one office's."""
    return not any(e.table is not None and e.column is not None and LOC_COLUMN.get(e.table) == e.column
                   for e in fields)


def mapping_from_matches(matches: list[FileMatch], *, profile: str = "reference",
                         source: str | None = None, location: str | None = None) -> Mapping:
    files: dict[str, str] = {}
    fields: list[Entry] = []
    fp = hashlib.sha256()
    for fm in sorted(matches, key=lambda f: f.file.upper()):
        stem = Path(fm.file).stem
        fp.update(f"{fm.file}\x00{','.join(c.source for c in fm.columns)}\n".encode())
        if fm.table is None:
            for cm in fm.columns:
                fields.append(Entry(source=f"{stem}.{cm.source}", target="skip", type="TEXT", confidence=0.0,
                                    reasons=[*fm.reasons, "the file matches no table of the export format: "
                                             "not migrated unless you name its table under files:"]))
            continue
        files[stem] = fm.table
        per_file: list[Entry] = []
        for cm in fm.columns:
            conf = round(min(fm.confidence, cm.confidence), 3)
            if cm.column is None:
                per_file.append(_unmatched(stem, fm.table, cm.source, list(cm.reasons)))
                continue
            table = cm.table or fm.table
            ft = target_for(table, cm.column)
            reasons = list(cm.reasons) + ([ft.reason] if ft.reason else [])
            per_file.append(Entry(source=f"{stem}.{cm.source}", table=table, column=cm.column,
                                  target=ft.target, type=ft.type, confidence=conf, reasons=reasons,
                                  phi=ft.phi, label=ft.label or None,
                                  values=VALUE_LABELS.get((table, cm.column)),
                                  split=cm.split))
        fields += sorted(per_file, key=lambda e: e.confidence)  # the ones to look at first
    office = (location or DEFAULT_LOCATION) if files and single_office(fields) else None
    return Mapping(export=ExportInfo(profile=profile, fingerprint=fp.hexdigest(), source=source,
                                     location=office), files=files, fields=fields)


def _unmatched(stem: str, table: str, column: str, reasons: list[str]) -> Entry:
    if table == "patient":
        key = re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_") or "field"
        return Entry(source=f"{stem}.{column}", table=table, target=f"contact.source_{key}", type="TEXT",
                     confidence=0.3, label=column,
                     reasons=[*reasons,
                              "no column of the export format matches: kept as a contact custom field "
                              "so nothing is lost (set target: skip to leave it behind)"])
    return Entry(source=f"{stem}.{column}", table=table, target="skip", type="TEXT", confidence=0.0,
                 reasons=[*reasons, "no column of the export format matches: not migrated unless you set a "
                          "target"])


def reference_mapping(tables: list[str] | None = None) -> Mapping:
    """The map of an export in the reference layout itself: every canonical column, confidence 1, the
    object map's targets (what ``propose`` yields for a reference export, without reading one)."""
    from ..model import TABLES

    fields = []
    for t in tables or list(TABLES):
        for c in TABLES[t].columns:
            ft = target_for(t, c.name)
            fields.append(Entry(source=f"{t.upper()}.{c.name.upper()}", table=t, column=c.name,
                                target=ft.target,
                                type=ft.type, confidence=1.0, phi=ft.phi, label=ft.label or None,
                                reasons=["reference layout"], values=VALUE_LABELS.get((t, c.name))))
    return Mapping(files={t.upper(): t for t in tables or TABLES}, fields=fields)
