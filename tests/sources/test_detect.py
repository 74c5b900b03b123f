"""File-format sniffing: encodings, delimiters, quote chars, banner/trailer, header, binary input."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dos2hl.errors import UnreadableFileError
from dos2hl.sources.detect import SAMPLE_BYTES, FileFormat, is_trailer, sniff, trailer_count

COLS = ["PAT_ID", "CHART_NO", "LNAME", "FNAME", "BIRTHDATE", "ZIP", "HPHONE", "EMAIL", "MED_ALERT",
        "BAL_TOTAL"]
ROWS = [
    ["000412", "A412", "GARCIA JR", "JOSÉ", "03/15/45", "1103", "(413) 555-0142",
     "pepe@example.com; garcia.fam@example.com", "PCN allergy\r\npremed - knee", "-45.00"],
    ["000413", "", "Garcia", "María", "07/30/1978", "1103", "(413) 555-0142", "garcia.fam@example.com",
     "", ""],
    ["000977", "A977", "Garcia", "Jose", "03/15/1945", "01103", "", "", "says \"hi\", then leaves", "0.00"],
]


def csv_text(delim: str = ",", quote: str = '"', eol: str = "\r\n", header: bool = True,
             banner: list[str] | None = None, trailer: str | None = None, ragged: bool = False,
             rows: list[list[str]] | None = None) -> str:
    """A small export, quoting fields only when needed."""
    def field(v: str) -> str:
        if any(ch in v for ch in (delim, quote, "\r", "\n")) or quote == "~":
            return quote + v.replace(quote, quote * 2) + quote
        return v

    lines = list(banner or [])
    if header:
        lines.append(delim.join(field(c) for c in COLS) + (delim if ragged else ""))
    for r in rows or ROWS:
        lines.append(delim.join(field(v) for v in r) + (delim if ragged else ""))
    if trailer:
        lines.append(trailer)
    return eol.join(lines) + eol


@pytest.mark.parametrize(("encoding", "prefix", "expect_enc", "bom"), [
    ("cp1252", b"", "cp1252", False),
    ("utf-8", b"", "utf-8", False),
    ("utf-8", b"\xef\xbb\xbf", "utf-8-sig", True),
    ("utf-16", b"", "utf-16", True),  # Python's utf-16 codec writes a BOM
    ("utf-16-le", b"\xff\xfe", "utf-16", True),
    ("utf-16-le", b"", "utf-16-le", False),
])
def test_encodings(encoding: str, prefix: bytes, expect_enc: str, bom: bool) -> None:
    data = prefix + csv_text().encode(encoding)
    fmt = sniff(data, name="PATIENT.CSV")
    assert (fmt.encoding, fmt.bom) == (expect_enc, bom)
    assert fmt.header == COLS and fmt.has_header and fmt.delimiter == ","
    decoded = data.decode(fmt.encoding)
    assert decoded.lstrip("\ufeff").startswith("PAT_ID")
    assert "JOSÉ" in decoded


def test_pure_ascii_is_utf8() -> None:
    assert sniff(b"A,B\r\n1,2\r\n").encoding == "utf-8"


def test_greek_cp1253() -> None:
    text = "PAT_ID;LNAME;FNAME\r\n1;ΠΑΠΑΔΟΠΟΥΛΟΣ;ΓΙΩΡΓΟΣ\r\n2;Νικολάου;Μαρία\r\n3;Οικονόμου;Ελένη\r\n"
    fmt = sniff(text.encode("cp1253"))
    assert (fmt.encoding, fmt.delimiter) == ("cp1253", ";")


def test_western_accents_stay_cp1252() -> None:
    text = "PAT_ID,LNAME,FNAME\r\n1,Peña,José\r\n2,Müller,Zoë\r\n3,Garçon,Renée\r\n"
    assert sniff(text.encode("cp1252")).encoding == "cp1252"


@pytest.mark.parametrize("delim", [",", "|", "\t", ";"])
def test_delimiters(delim: str) -> None:
    fmt = sniff(csv_text(delim=delim).encode("cp1252"))
    assert fmt.delimiter == delim and fmt.quotechar == '"'
    assert fmt.header == COLS


def test_pipe_file_with_commas_in_fields() -> None:
    rows = [["1", "A1", "Smith, Jr", "Ann, B", "01/02/1980", "01103", "", "", "a, b, c", "1.00"]] * 5
    fmt = sniff(csv_text(delim="|", rows=rows).encode())
    assert fmt.delimiter == "|"


def test_softdent_style_banner_tilde_trailer_ragged() -> None:
    text = csv_text(quote="~", banner=["Dent-O-Soft Export 2.3 - 04/12/2024 10:22"],
                    trailer="*** 3 records ***", ragged=True)
    fmt = sniff(text.encode("cp1252"), name="PATIENT.CSV", expected_columns=COLS)
    assert fmt == FileFormat(encoding="cp1252", bom=False, delimiter=",", quotechar="~", banner_lines=1,
                             has_header=True, header=COLS, trailing_delimiter=True, line_ending="\r\n",
                             export_timestamp=dt.datetime(2024, 4, 12, 10, 22))


def test_banner_without_expected_columns_and_lf() -> None:
    text = csv_text(eol="\n", banner=["Dent-O-Soft Export 2.3 - 04/12/2024 10:22", ""])
    fmt = sniff(text.encode())
    assert fmt.banner_lines == 2 and fmt.header == COLS and fmt.line_ending == "\n"
    assert fmt.export_timestamp == dt.datetime(2024, 4, 12, 10, 22)


def test_ragged_rows_without_ragged_header() -> None:
    rows = [["1", "A", "B", "C", "01/02/1980", "01103", "", "", "x", "1.00"]] * 4
    text = csv_text(rows=rows).replace("1.00\r\n", "1.00,\r\n")
    fmt = sniff(text.encode())
    assert fmt.trailing_delimiter and fmt.header == COLS


def test_no_header() -> None:
    rows = [["000412", "A412", "GARCIA", "JOSE", "03/15/1945", "01103", "4135550142", "", "", "1.00"]] * 3
    text = csv_text(header=False, rows=rows)
    fmt = sniff(text.encode(), expected_columns=COLS)
    assert not fmt.has_header and fmt.header == [] and fmt.banner_lines == 0
    fmt = sniff(text.encode())
    assert not fmt.has_header


def test_header_found_by_expected_columns_case_insensitive() -> None:
    text = "Practice report\r\nRun by admin\r\npat_id,lname,fname\r\n1,A,B\r\n"
    fmt = sniff(text.encode(), expected_columns=["PAT_ID", "LNAME", "FNAME"])
    assert fmt.banner_lines == 2 and fmt.header == ["pat_id", "lname", "fname"]


def test_quoted_header_names_are_stripped() -> None:
    fmt = sniff(b'"PAT_ID" , " LNAME "\r\n1,A\r\n')
    assert fmt.header == ["PAT_ID", "LNAME"]


def test_sample_cut_mid_multibyte_character() -> None:
    body = csv_text(rows=ROWS * 2000).encode("utf-8")
    cut = body.index("É".encode()) + 1  # inside the 2-byte É
    fmt = sniff(body[:cut], name="PATIENT.CSV")
    assert fmt.encoding == "utf-8" and fmt.header == COLS
    big = body[:SAMPLE_BYTES]
    for k in range(4):  # every cut position of the last character
        fmt = sniff(big[: len(big) - k], name="PATIENT.CSV")
        assert fmt.encoding == "utf-8" and fmt.header == COLS


def test_sample_cut_mid_utf16_code_unit() -> None:
    data = csv_text().encode("utf-16")
    fmt = sniff(data[:-1])
    assert fmt.encoding == "utf-16" and fmt.header == COLS


def test_sample_cut_inside_quoted_memo() -> None:
    text = csv_text() + '000999,,X,Y,01/01/1990,01103,,,"an open memo that goes on' + " and on" * 20000
    fmt = sniff(text.encode()[:SAMPLE_BYTES])
    assert fmt.header == COLS and fmt.delimiter == ","


@pytest.mark.parametrize(("data", "fragment"), [
    (b"", "empty"),
    (b"PK\x03\x04" + bytes(100), "Excel"),
    (b"%PDF-1.7\n" + bytes(100), "PDF"),
    (b"PAT_ID,LNAME\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03" * 50, "binary"),
    (bytes(range(256)) * 8, "binary"),
    (b"\r\n \r\n", "no text"),
])
def test_unreadable(data: bytes, fragment: str) -> None:
    with pytest.raises(UnreadableFileError) as err:
        sniff(data, name="PATIENT.CSV")
    msg = str(err.value)
    assert "PATIENT.CSV" in msg and fragment in msg and "re-export" in msg


def test_a_few_nul_characters_in_a_note_are_not_binary() -> None:
    text = csv_text(rows=ROWS * 50).replace("premed", "pre\x00med")
    fmt = sniff(text.encode("cp1252"))
    assert fmt.header == COLS


@pytest.mark.parametrize(("line", "count"), [
    ("*** 48213 records ***", 48213), ("48213 records", 48213), ("Total records: 12", 12),
    ("Records: 12", 12), ("~*** 5 records ***~,", 5), ('"1,204 records"', 1204), ("(3 rows affected)", 3),
    ("END OF REPORT", None), ("*** END ***", None), ("End of file", None),
])
def test_trailers(line: str, count: int | None) -> None:
    assert is_trailer(line)
    assert trailer_count(line) == count


@pytest.mark.parametrize("line", ["GARCIA", "12 Elm St", "000412", "records", "", "Dent-O-Soft Export 2.3"])
def test_not_trailers(line: str) -> None:
    assert not is_trailer(line)
    assert trailer_count(line) is None


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_only_raise_unreadable(data: bytes) -> None:
    try:
        fmt = sniff(data, name="X.CSV")
    except UnreadableFileError as exc:
        assert "X.CSV" in str(exc)
        return
    assert fmt.delimiter in (",", "|", "\t", ";") and fmt.quotechar in ('"', "~")
    data.decode(fmt.encoding, errors="replace")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400), st.sampled_from(["cp1252", "utf-8", "utf-16", "utf-8-sig"]))
def test_random_text_only_raises_unreadable(text: str, encoding: str) -> None:
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        return
    try:
        sniff(data, expected_columns=COLS)
    except UnreadableFileError:
        pass
