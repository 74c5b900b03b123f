"""CSV packages for HighLevel's UI importers (Contacts, Opportunities, Custom Objects > Import).

HighLevel has no bulk import API (NOTES.md §3): its web UI imports CSV files of at most 30 MB, in
create / update / create+update mode, without spending API quota. For large record sets dos2hl
writes *packages*: one folder per location and object, holding

* ``<object>-NNN.csv``: UTF-8, a header row (repeated in each file), RFC 4180 quoting, ``\\n`` line
  ends, split so that no file exceeds ``max_bytes``;
* ``package.json``: the ``Package`` (files, row counts, sizes, sha256 digests, columns).

The columns are the ones ``dos2hl.sandbox.imports`` documents (and the UI wizard maps): contact
fields by API name, ``tags`` comma-separated, custom fields by key (``contact.patient_id``);
opportunity fields (``name``, ``pipeline``, ``stage``, ``contactId``, ...); custom-object
properties by field key. ``checklist`` renders the operator's Markdown instructions: file names,
counts, digests and column mappings only, never a row value.

Keys are built from the caller's prefix and the object key only: never from patient data.

Cells go through ``dos2hl.csvsafe`` like every CSV dos2hl writes: a text that a spreadsheet would
run as a formula (``=HYPERLINK(...)``, ``@SUM(...)``) is written ``'``-prefixed and quoted, since an
operator may open a package before uploading it; numbers and phone numbers (``-12.50``,
``+15550100100``) keep their true value. HighLevel's importer stores a neutralised text with its
``'``, so the bulk phase keeps such rows out of the packages (``risky_row``): the API path writes them
with their true value, and no package cell is ever altered in practice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import csvsafe
from ..errors import ConfigError, PayloadTooLargeError
from ..storage import Store

__all__ = ["MAX_FILE_BYTES", "PackageFile", "Package", "contact_row", "record_row", "opportunity_row",
           "write_package", "read_package", "checklist", "file_stem", "MODES", "risky_row"]

MAX_FILE_BYTES = 30 * 1024 * 1024
MODES = ("create", "update", "create_update")
PACKAGE_JSON = "package.json"


@dataclass(frozen=True)
class PackageFile:
    """One CSV file of a package. ``first_row``: 1-based index of its first data row in the whole
    row sequence of the package."""

    key: str
    object: str
    rows: int
    bytes: int
    sha256: str
    first_row: int


@dataclass
class Package:
    """What was written for one location and object, and how to import it."""

    location: str
    object: str
    mode: str
    dedupe: str
    files: list[PackageFile] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Package:
        data = json.loads(text)
        files = [PackageFile(**f) for f in data.pop("files")]
        return cls(files=files, **data)


# -- flattening payloads into CSV rows ---------------------------------------------------------------
def _number(value: float | decimal.Decimal) -> str:
    if isinstance(value, decimal.Decimal):
        if value == value.to_integral_value():
            return str(value.quantize(decimal.Decimal(1)))
        return format(value.normalize(), "f")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    if value.is_integer():
        return str(int(value))
    text = repr(value)
    return format(decimal.Decimal(text), "f") if "e" in text or "E" in text else text


def _scalar(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, decimal.Decimal)):
        try:
            return _number(value)
        except ValueError:
            raise ValueError(f"{name}: not a finite number") from None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    # the message names the field and the type, never the value
    raise ValueError(f"{name}: a {type(value).__name__} has no CSV cell form")


def _cell(value: Any, name: str) -> str:
    """One CSV cell: lists comma-joined (MULTIPLE_OPTIONS, CHECKBOX, tags), numbers without a
    trailing ``.0`` when integral, ``None`` as empty."""
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return ",".join(s for s in (_scalar(v, name).strip() for v in items) if s)
    return _scalar(value, name)


def _custom_items(custom: Any, model: str) -> Iterable[tuple[str, Any]]:
    """``{"contact.key": value}`` (or the API's ``[{"key": ..., "field_value": ...}]``) as
    ``(column, value)``; bare keys get the ``<model>.`` prefix."""
    if custom is None:
        return
    if isinstance(custom, Mapping):
        items: Iterable[tuple[Any, Any]] = custom.items()
    else:
        pairs = []
        for item in custom:
            key = item.get("key") if isinstance(item, Mapping) else None
            if not key:
                raise ValueError("customFields given by id have no CSV column: give them by key")
            pairs.append((key, item.get("field_value", item.get("value"))))
        items = pairs
    for key, value in items:
        key = str(key)
        yield (key if key.startswith(model + ".") else f"{model}.{key}"), value


_DROP = ("locationId",)  # the token (the UI: the sub-account one is in) picks the location


def contact_row(body: Mapping[str, Any]) -> dict[str, str]:
    """A contact payload (``ContactPayload.body``, plus ``assignedTo``) as an import row."""
    row: dict[str, str] = {}
    for key, value in body.items():
        if key in _DROP:
            continue
        if key == "customFields":
            for column, v in _custom_items(value, "contact"):
                row[column] = _cell(v, column)
        elif key == "tags":
            row["tags"] = _cell([] if value is None else value, "tags")
        else:
            row[key] = _cell(value, key)
    return row


def record_row(properties: Mapping[str, Any], *, id: str | None = None) -> dict[str, str]:
    """A custom-object record's properties (short or full field keys) as an import row; ``id``
    (a record id, for update) becomes the ``id`` column."""
    row: dict[str, str] = {}
    if id is not None:
        row["id"] = id
    for key, value in properties.items():
        if key == "id":
            raise ValueError("id: pass a record id as id=..., not as a property")
        row[key] = _cell(value, key)
    return row


def opportunity_row(body: Mapping[str, Any]) -> dict[str, str]:
    """An opportunity payload (name, pipeline, stage, status, monetaryValue, contactId, assignedTo,
    customFields ``{"opportunity.<key>": value}``) as an import row."""
    row: dict[str, str] = {}
    for key, value in body.items():
        if key in _DROP:
            continue
        if key == "customFields":
            for column, v in _custom_items(value, "opportunity"):
                row[column] = _cell(v, column)
        elif key == "status" and isinstance(value, str):
            row[key] = value.lower()
        else:
            row[key] = _cell(value, key)
    return row


# -- writing a package --------------------------------------------------------------------------------
def file_stem(obj: str) -> str:
    """The file name stem of an object's CSV files (``custom_objects.x`` -> ``custom_objects_x``)."""
    return obj.replace(".", "_")


def _line(values: list[str]) -> bytes:
    return csvsafe.line(values).encode("utf-8")


def risky_row(row: Mapping[str, str]) -> bool:
    """Whether a cell of ``row`` would be neutralised in a package (``csvsafe``): such a row is not
    imported by CSV (its text would reach HighLevel with the ``'``), the API path writes it."""
    return any(csvsafe.is_risky(v) for v in row.values() if isinstance(v, str))


def _join(prefix: str, name: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def write_package(store: Store, prefix: str, location: str, object: str,
                  rows: Iterable[Mapping[str, str]], *, mode: str = "create", dedupe: str,
                  max_bytes: int = MAX_FILE_BYTES) -> Package:
    """Write ``rows`` as CSV files ``<prefix>/<object>-NNN.csv`` (a new file before one would exceed
    ``max_bytes``; the header in each) and ``<prefix>/package.json``; return the ``Package``.

    Columns are the union of the rows' keys in first-seen order (a row lacking one has it empty).
    A row that alone does not fit in ``max_bytes`` raises ``PayloadTooLargeError`` (naming its
    row number, not its content) before anything is written.
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not dedupe:
        raise ConfigError("dedupe is required (e.g. email, id or a unique field key)")
    materialised = rows if isinstance(rows, list) else list(rows)
    columns: list[str] = []
    seen: set[str] = set()
    for row in materialised:
        for key in row:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    header = _line(columns)
    stem = file_stem(object)

    # Plan the files first (sizes only), so that an oversized row fails before any write.
    lines: list[bytes] = []
    for n, row in enumerate(materialised, start=1):
        line = _line([_cell(row.get(c), c) for c in columns])
        if len(header) + len(line) > max_bytes:
            raise PayloadTooLargeError(
                f"row {n} of {object} alone is {len(header) + len(line)} bytes with its header, more than "
                f"the {max_bytes}-byte file limit")
        lines.append(line)

    files: list[PackageFile] = []
    start = 0
    while start < len(lines):
        size, end = len(header), start
        while end < len(lines) and size + len(lines[end]) <= max_bytes:
            size += len(lines[end])
            end += 1
        content = header + b"".join(lines[start:end])
        key = _join(prefix, f"{stem}-{len(files) + 1:03d}.csv")
        store.write_bytes(key, content)
        files.append(PackageFile(key=key, object=object, rows=end - start, bytes=len(content),
                                 sha256=hashlib.sha256(content).hexdigest(), first_row=start + 1))
        start = end
    package = Package(location=location, object=object, mode=mode, dedupe=dedupe, files=files,
                      columns=columns)
    store.write_bytes(_join(prefix, PACKAGE_JSON), package.to_json().encode("utf-8"))
    return package


def read_package(store: Store, prefix: str) -> Package:
    """The ``Package`` written at ``prefix`` (its ``package.json``)."""
    return Package.from_json(store.read_bytes(_join(prefix, PACKAGE_JSON)))


# -- the operator's checklist -------------------------------------------------------------------------
_MODE_LABEL = {"create": "Create", "update": "Update", "create_update": "Create and Update"}
_CONTACT_LABELS = {
    "id": "Contact ID", "firstName": "First Name", "lastName": "Last Name", "name": "Full Name",
    "email": "Email", "phone": "Phone", "gender": "Gender", "address1": "Street Address", "city": "City",
    "state": "State", "postalCode": "Postal Code", "country": "Country", "website": "Website",
    "timezone": "Time Zone", "companyName": "Business Name", "source": "Source",
    "dateOfBirth": "Date of Birth",
    "assignedTo": "Contact Owner (user id)", "tags": "Tags", "dnd": "DND",
}
_OPPORTUNITY_LABELS = {
    "id": "Opportunity ID", "name": "Opportunity Name", "pipeline": "Pipeline", "pipelineId": "Pipeline ID",
    "stage": "Stage", "pipelineStageId": "Stage ID", "status": "Status", "monetaryValue": "Opportunity Value",
    "contactId": "Contact ID", "email": "Contact Email", "assignedTo": "Owner (user id)", "source": "Source",
}


def _importer(obj: str) -> str:
    if obj == "contacts":
        return "Contacts > Import"
    if obj == "opportunities":
        return "Opportunities > Import"
    return f"Custom Objects > {obj.split('.', 1)[-1]} > Import"


def _field(obj: str, column: str) -> str:
    if obj == "contacts":
        if column in _CONTACT_LABELS:
            return _CONTACT_LABELS[column]
        return f"custom field `{column}`" if "." in column else f"contact field `{column}`"
    if obj == "opportunities":
        if column in _OPPORTUNITY_LABELS:
            return _OPPORTUNITY_LABELS[column]
        return f"custom field `{column}`" if "." in column else f"opportunity field `{column}`"
    if column == "id":
        return "Record ID"
    full = column if column.startswith(obj + ".") else f"{obj}.{column}"
    return f"field `{full}`"


def _dedupe(obj: str, dedupe: str) -> str:
    if obj == "contacts":
        label = {"email": "Email", "phone": "Phone", "id": "Contact ID"}.get(dedupe)
        if label:
            return label
        return (f"custom field `{dedupe}` (the HighLevel UI dedupes contacts on email, phone or contact "
                "ID only, per the location's duplicate settings: import this package through dos2hl or "
                "switch it to email)")
    if obj == "opportunities":
        return {"contact": "the contact (one opportunity per contact and pipeline)",
                "id": "Opportunity ID"}.get(dedupe, f"`{dedupe}`")
    return "Record ID" if dedupe == "id" else f"unique field `{dedupe}`"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def checklist(packages: list[Package], *, location_names: dict[str, str] | None = None) -> str:
    """Markdown instructions for importing ``packages`` through HighLevel's UI, per location.

    It holds file keys, row counts, sizes, sha256 digests, settings and column mappings: never a
    row value.
    """
    names = location_names or {}
    out = ["# HighLevel CSV import checklist", "",
           "Import the packages in the order listed (contacts before the opportunities and records that "
           "refer to them). Before uploading a file, check its sha256 (`sha256sum <file>`) against the "
           "one listed here.", ""]
    by_location: dict[str, list[Package]] = {}
    for p in packages:
        by_location.setdefault(p.location, []).append(p)
    for location, group in by_location.items():
        title = f"{names[location]} (`{location}`)" if location in names else f"`{location}`"
        out += [f"## Location {title}", "",
                "Switch to this sub-account in HighLevel first: every file below belongs to it.", ""]
        for n, p in enumerate(group, start=1):
            out += [f"### {n}. {p.object}: {p.rows} rows in {len(p.files)} file(s)", "",
                    f"- [ ] Open **{_importer(p.object)}**.",
                    f"- [ ] Import mode: **{_MODE_LABEL.get(p.mode, p.mode)}**.",
                    f"- [ ] Find existing records by: **{_dedupe(p.object, p.dedupe)}**.",
                    "- [ ] Upload each file, one import per file, in this order:", ""]
            out += ["  | file | rows | bytes | sha256 |", "  |---|---:|---:|---|"]
            for f in p.files:
                out.append(f"  | `{_md(f.key)}` | {f.rows} | {f.bytes} | `{f.sha256}` |")
            out += ["", "- [ ] Map the columns (the wizard asks for each):", "",
                    "  | column | HighLevel field |", "  |---|---|"]
            out += [f"  | `{_md(c)}` | {_md(_field(p.object, c))} |" for c in p.columns]
            out += ["",
                    "- [ ] Start the import and wait until Bulk Actions shows it complete.",
                    "- [ ] Afterwards: do not download the result file; confirm in the flow; dos2hl "
                    "reconciles by reading back.", ""]
    return "\n".join(out)
