"""Sniff how one export file is written: encoding, delimiter, quote character, banner, header,
trailer and line ending, from the first bytes of the file.

Examples:
    >>> fmt = sniff(b"PAT_ID,LNAME\\r\\n000412,GARCIA\\r\\n", name="PATIENT.CSV")
    >>> fmt.encoding, fmt.delimiter, fmt.header, fmt.line_ending
    ('utf-8', ',', ['PAT_ID', 'LNAME'], '\\r\\n')
    >>> trailer_count("*** 48213 records ***")
    48213
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from ..errors import UnreadableFileError

__all__ = ["FileFormat", "sniff", "is_trailer", "trailer_count", "SAMPLE_BYTES"]

#: How much of a file ``sniff`` wants to see.
SAMPLE_BYTES = 64 * 1024
_DELIMITERS = (",", "|", "\t", ";")
_MAX_RECORDS = 200
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive or an Excel .xlsx workbook"),
    (b"\xd0\xcf\x11\xe0", "an Excel .xls / Office binary document"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"SQLite format 3", "an SQLite database"),
)
_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D}


@dataclass(frozen=True)
class FileFormat:
    """How one export file is written (what the reader needs to parse it).

    Attributes:
        encoding: Python codec to decode the whole file with (``utf-8-sig`` strips the BOM).
        bom: the file starts with a byte-order mark.
        delimiter: field separator.
        quotechar: ``"`` or ``~`` (SoftDent style).
        banner_lines: physical lines before the header (or before the first record without one).
        has_header: the first non-banner line holds column names.
        header: column names (quotes stripped, trimmed, a ragged trailing empty name removed);
            empty when ``has_header`` is False.
        trailing_delimiter: rows end with one extra, empty field.
        line_ending: ``\\r\\n`` or ``\\n`` (of the header line).
        export_timestamp: from a banner such as ``Dent-O-Soft Export 2.3 - 04/12/2024 10:22``.
    """

    encoding: str
    bom: bool
    delimiter: str
    quotechar: str
    banner_lines: int
    has_header: bool
    header: list[str] = field(default_factory=list)
    trailing_delimiter: bool = False
    line_ending: str = "\r\n"
    export_timestamp: dt.datetime | None = None


# ---- encoding ------------------------------------------------------------------------------------
def _unreadable(name: str, what: str) -> UnreadableFileError:
    return UnreadableFileError(f"{name} {what}: re-export the table as a CSV text file")


def _check_binary(sample: bytes, name: str) -> None:
    for magic, what in _MAGIC:
        if sample.startswith(magic):
            raise _unreadable(name, f"looks like {what}, not a CSV export")
    head = sample[:8192]
    nul = head.count(0)
    if nul and nul > max(2, len(head) // 100):
        raise _unreadable(name, f"looks binary (NUL bytes, first at offset {head.index(0)})")
    ctrl = sum(1 for b in head if b in _CONTROL)
    if ctrl > max(8, len(head) // 20):
        raise _unreadable(name, "looks binary (mostly non-text bytes)")


def _utf16_without_bom(sample: bytes) -> str | None:
    head = sample[:4096]
    if len(head) < 4:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    half = len(head) // 2
    if odd >= half * 0.3 and even <= odd * 0.1:
        return "utf-16-le"
    if even >= half * 0.3 and odd <= even * 0.1:
        return "utf-16-be"
    return None


def _decode(sample: bytes, encoding: str) -> str:
    """Decode a sample that may end mid-character (incremental decoder, not final)."""
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    return dec.decode(sample, final=False)


def _greek_runs(sample: bytes) -> float:
    """Share of high bytes next to another high byte: high in Greek/Cyrillic words, low in
    Western text where accents sit alone inside ASCII words (``José``)."""
    hi = [i for i, b in enumerate(sample) if b >= 0xC0]
    if not hi:
        return 0.0
    s = set(hi)
    return sum(1 for i in hi if i - 1 in s or i + 1 in s) / len(hi)


def _single_byte(sample: bytes) -> str:
    """Pick a Windows code page for a non-UTF-8 sample (cp1252 unless it is clearly another)."""
    best = "cp1252"
    try:
        from charset_normalizer import from_bytes

        candidates = ["cp1252", "cp1253", "cp1250", "cp1251"]
        match = from_bytes(sample[:SAMPLE_BYTES], cp_isolation=candidates).best()
        if match is not None:
            best = codecs.lookup(match.encoding).name
    except Exception:  # noqa: BLE001 - detection is best effort; cp1252 is the documented default
        best = "cp1252"
    # Another code page only on clear evidence: enough accented bytes, mostly in runs (Greek or
    # Cyrillic words). A few accented Western names ("Ibáñez") must not tip a file into cp1250.
    if best != "cp1252" and (sum(1 for b in sample if b >= 0xC0) < 40 or _greek_runs(sample) < 0.5):
        best = "cp1252"
    return best


def _encoding(sample: bytes, name: str) -> tuple[str, bool, str]:
    """(codec, has BOM, decoded sample without BOM)."""
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", True, _decode_or_fail(sample[3:], "utf-8", name)
    if sample.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32", True, _decode_or_fail(sample, "utf-32", name)
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16", True, _decode_or_fail(sample, "utf-16", name)
    u16 = _utf16_without_bom(sample)
    if u16:
        return u16, False, _decode_or_fail(sample, u16, name)
    _check_binary(sample, name)
    try:
        return "utf-8", False, _decode(sample, "utf-8")
    except UnicodeDecodeError:
        pass
    enc = _single_byte(sample)
    return enc, False, sample.decode(enc, errors="replace")


def _decode_or_fail(sample: bytes, encoding: str, name: str) -> str:
    try:
        text = _decode(sample, encoding)
    except UnicodeDecodeError as exc:
        # A few bad code units (a lone surrogate) do not make the file unreadable: the reader reads
        # them as U+FFFD and counts them. Many mean the encoding is wrong.
        text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=False)
        if text.count("\ufffd") > max(2, len(text) // 1000):
            raise _unreadable(name, f"is not valid {encoding} (bad bytes at offset {exc.start})") from None
    if text.count("\x00") > max(2, len(text) // 100):
        raise _unreadable(name, f"looks binary after decoding as {encoding}")
    return text


# ---- trailer -------------------------------------------------------------------------------------
_TRAILER_COUNT = (
    re.compile(r"(?i)^\**\s*\(?\s*(\d[\d,]*)\s+(?:records?|rows?)(?:\s+(?:exported|affected|selected))?"
               r"\s*\)?\s*\**\.?$"),
    re.compile(r"(?i)^\**\s*(?:total\s+)?(?:records?|rows?|count)(?:\s+exported)?\s*[:=]?\s*"
               r"(\d[\d,]*)\s*\**$"),
)
_TRAILER_END = re.compile(r"(?i)^\**\s*(?:end\s+of\s+(?:report|file|export|data)|eof|end)\s*\**\.?$")


def _trailer_text(text: str) -> str:
    return text.strip().strip(",|\t;").strip().strip("\"~").strip()


def trailer_count(text: str) -> int | None:
    """The record count a trailer line states (``*** 48213 records ***`` -> 48213), else None."""
    t = _trailer_text(text)
    for rx in _TRAILER_COUNT:
        m = rx.match(t)
        if m:
            return int(m.group(1).replace(",", ""))
    return None


def is_trailer(text: str) -> bool:
    """True for a trailer line: ``*** 48213 records ***``, ``48213 records``, ``END OF REPORT``,
    ``Total records: 12``. ``text`` is the whole line (or its only field)."""
    t = _trailer_text(text)
    return bool(t) and (trailer_count(t) is not None or _TRAILER_END.match(t) is not None)


# ---- layout ------------------------------------------------------------------------------------------
def _records(text: str, delimiter: str, quotechar: str) -> list[tuple[int, list[str]]]:
    """(first physical line index, fields) of the first records, quote-aware."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quotechar,
                        strict=False)
    out: list[tuple[int, list[str]]] = []
    start = 0
    try:
        for row in reader:
            out.append((start, row))
            start = reader.line_num
            if len(out) >= _MAX_RECORDS:
                break
    except csv.Error:
        pass
    return out


def _quotechar(text: str) -> str:
    tilde = len(re.findall(r"(?:^|[,|\t;])~[^~\r\n]*~(?=[,|\t;]|\r?$)", text, re.M))
    dquote = len(re.findall(r"(?:^|[,|\t;])\"", text, re.M))
    return "~" if tilde > dquote else '"'


def _score(records: list[tuple[int, list[str]]]) -> tuple[float, int]:
    counts = [len(r) for _, r in records if len(r) > 1]
    if not counts:
        return 0.0, 0
    width, freq = Counter(counts).most_common(1)[0]
    nonblank = sum(1 for _, r in records if any(f.strip() for f in r))
    return freq / max(nonblank, 1), width


def _known_columns(records: list[tuple[int, list[str]]], expected: set[str]) -> int:
    """How many of the table's known column names the best of the first lines splits into (0 below 2)."""
    best = 0
    for _, r in records[:20]:
        best = max(best, sum(1 for f in r if f.strip().strip("\"~").strip().upper() in expected))
    return best if best >= 2 else 0


_DATA_CELL = re.compile(r"^[\d\s.,/:$()+\-]*$")


def _looks_like_data(fields: list[str]) -> bool:
    cells = [f.strip() for f in fields if f.strip()]
    if not cells:
        return True
    return sum(1 for f in cells if _DATA_CELL.match(f)) / len(cells) >= 0.5


_BANNER_TS = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?"
    r"|(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?")


def _banner_timestamp(lines: list[str]) -> dt.datetime | None:
    for line in lines:
        m = _BANNER_TS.search(line)
        if not m:
            continue
        g = m.groups()
        try:
            if g[0] is not None:
                a, b, y = int(g[0]), int(g[1]), int(g[2])
                y = y + 2000 if y < 100 else y
                mo, da = (a, b) if a <= 12 else (b, a)
                h, mi, s = int(g[3] or 0), int(g[4] or 0), int(g[5] or 0)
                if g[6]:
                    h = h % 12 + (12 if g[6].lower() == "pm" else 0)
            else:
                y, mo, da = int(g[7]), int(g[8]), int(g[9])
                h, mi, s = int(g[10] or 0), int(g[11] or 0), int(g[12] or 0)
            return dt.datetime(y, mo, da, h, mi, s)
        except ValueError:
            continue
    return None


def _drop_partial_tail(text: str, sample_len: int) -> str:
    """Drop a last line cut by the sample boundary (only when the sample is a prefix)."""
    if sample_len < SAMPLE_BYTES or text.endswith("\n"):
        return text
    cut = text.rfind("\n")
    return text[: cut + 1] if cut > 0 else text


def sniff(sample: bytes, *, name: str = "<file>",
          expected_columns: Collection[str] | None = None) -> FileFormat:
    """Detect the format of an export file from its first bytes (about ``SAMPLE_BYTES``).

    Args:
        sample: the start of the file; it may end mid-line or mid-character.
        name: the file name, for error messages.
        expected_columns: column names the profile expects; the header is the first line sharing at
            least two of them (case-insensitive), and without such a line a data-looking first line
            means the file has no header.

    Raises:
        UnreadableFileError: the file is empty, binary (NUL or control bytes, a known binary
            signature) or undecodable.
    """
    if not sample:
        raise _unreadable(name, "is empty (0 bytes)")
    encoding, bom, text = _encoding(sample, name)
    text = _drop_partial_tail(text.replace("\x00", ""), len(sample))
    if not text.strip():
        raise _unreadable(name, "holds no text (only blank lines)")
    nl = text.find("\n")
    line_ending = "\r\n" if nl > 0 and text[nl - 1] == "\r" else "\n"
    quotechar = _quotechar(text)
    expected = {c.strip().upper() for c in expected_columns or ()}
    # The delimiter under which a line splits into the table's known columns wins over the field
    # counts of the rows: a memo with a ';' on each of its lines must not make ';' the delimiter.
    best: tuple[tuple[int, float, int], str, list[tuple[int, list[str]]]] | None = None
    for d in _DELIMITERS:
        recs = _records(text, d, quotechar)
        sc = (_known_columns(recs, expected), *_score(recs))
        if best is None or sc > best[0]:
            best = (sc, d, recs)
    assert best is not None
    (_, _, width), delimiter, records = best
    records = [(i, r) for i, r in records if any(f.strip() for f in r) or len(r) > 1]

    header_at: int | None = None
    if expected:
        for k, (_, r) in enumerate(records[:20]):
            if sum(1 for f in r if f.strip().upper() in expected) >= 2:
                header_at = k
                break
    # The first record about as wide as the table (a banner line may hold a stray delimiter; a
    # header may lack the ragged trailing empty field).
    first_multi = next((k for k, (_, r) in enumerate(records) if len(r) >= max(2, width - 1)), None)
    if first_multi is None:
        first_multi = next((k for k, (_, r) in enumerate(records) if len(r) > 1), None)
    if header_at is None and first_multi is not None and not _looks_like_data(records[first_multi][1]):
        header_at = first_multi
    has_header = header_at is not None
    start_rec = header_at if has_header else first_multi
    banner_lines = records[start_rec][0] if start_rec is not None and records else 0
    banner_text = text.splitlines()[:banner_lines]

    header: list[str] = []
    after = records[(start_rec or 0) + (1 if has_header else 0):]
    data = [r for _, r in after if len(r) > 1 or not is_trailer(r[0] if r else "")]
    trailing = False
    if has_header and header_at is not None:
        header = [f.strip().strip("\"~").strip() for f in records[header_at][1]]
        if len(header) > 1 and header[-1] == "":
            header.pop()
            trailing = True
        elif data:
            wide = [r for r in data if len(r) == len(header) + 1]
            trailing = len(wide) * 2 > len(data) and all(r[-1].strip() == "" for r in wide)
    elif data:
        n_exp = len(expected)
        if n_exp and all(len(r) == n_exp + 1 and not r[-1].strip() for r in data):
            trailing = True
        elif not n_exp and len(data) >= 2 and all(len(r) > 1 and not r[-1].strip() for r in data):
            trailing = True
    return FileFormat(
        encoding=encoding, bom=bom, delimiter=delimiter, quotechar=quotechar, banner_lines=banner_lines,
        has_header=has_header, header=header, trailing_delimiter=trailing, line_ending=line_ending,
        export_timestamp=_banner_timestamp(banner_text),
    )
