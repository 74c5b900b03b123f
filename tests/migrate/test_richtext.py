"""Clinical note rich text: RTF/HTML/TXT -> readable text, inline images, revision chains, composition."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import struct
import threading
import zlib
from typing import Any

import pytest

from dos2hl.richtext.notes import (
    Chain,
    Converted,
    InlineImage,
    compose,
    detect_format,
    revision_chains,
    to_text,
)


def _png() -> bytes:
    """A real 1x1 RGBA PNG built here (signature, IHDR, IDAT, IEND with correct CRCs)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00\xff")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


PNG = _png()
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(40)) + b"\xff\xd9"


def _hex_wrapped(data: bytes, width: int = 16) -> str:
    h = data.hex()
    return "\r\n".join(h[i: i + width] for i in range(0, len(h), width))


# --- RTF -------------------------------------------------------------------------------------------


def test_rtf_escapes_par_and_pict_image_round_trip() -> None:
    rtf = (
        r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss\fcharset0 Arial;}}{\colortbl;\red0\green0\blue0;}"
        r"\f0\fs20 Pt\'92s mother asked about \'93sealants\'94 \'96 caf\'e9.\par" "\r\n"
        r"Unicode \u8364? and \u-3913?\par "
        r"X-ray below:{\pict\pngblip\picw1\pich1\picwgoal15\pichgoal15" "\r\n" + _hex_wrapped(PNG) + "\r\n}"
        r"\par Dr reviewed.}"
    )
    c = to_text(rtf, "RTF")
    assert c.fmt == "RTF"
    lines = c.text.split("\n")
    assert lines[0] == "Pt’s mother asked about “sealants” – café."
    assert lines[1] == "Unicode € and \uf0b7"  # \u-3913 is U+F0B7; the "?" fallbacks are skipped
    assert lines[2] == "X-ray below: [image 1]"
    assert lines[3] == "Dr reviewed."
    assert "\\" not in c.text and "{" not in c.text and "}" not in c.text
    assert not re.search(r"\b(rtf1|ansicpg|fonttbl|pngblip|picw|Arial)\b", c.text)
    (img,) = c.images
    assert img.index == 1 and img.mime == "image/png" and img.ext == "png" and img.error == ""
    assert img.data == PNG
    assert img.sha256 == __import__("hashlib").sha256(PNG).hexdigest()


def test_rtf_blip_types_and_output_tidy() -> None:
    dib = struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, 4, 0, 0, 0, 0) + b"\x00\x00\xff\x00"
    rtf = (
        r"{\rtf1\ansi a   \par\par\par\par\par\par b"
        r"{\pict\jpegblip " + JPEG.hex() + "}"
        r"{\pict\emfblip 01000000}{\pict\wmetafile8\picw10 0100090000}{\pict\dibitmap0 " + dib.hex() + "}}"
    )
    c = to_text(rtf)
    assert c.text.startswith("a\n\n\nb")  # trailing spaces gone, at most 2 blank lines in a row
    assert [(i.index, i.mime, i.ext) for i in c.images] == [
        (1, "image/jpeg", "jpg"), (2, "image/x-emf", "emf"),
        (3, "image/x-wmf", "wmf"), (4, "image/bmp", "bmp"),
    ]
    assert c.images[0].data == JPEG
    bmp = c.images[3].data
    assert bmp is not None and bmp.startswith(b"BM") and bmp.endswith(dib)  # a .bmp file around the DIB
    assert all(f"[image {n}]" in c.text for n in range(1, 5))


def test_shppict_and_nonshppict_count_once() -> None:
    rtf = (
        r"{\rtf1\ansi Before "
        r"{\*\shppict{\pict{\*\picprop\shplid1025{\sp{\sn shapeType}{\sv 75}}}\pngblip\picw1\pich1 "
        + PNG.hex() + r"}}"
        "\r\n"
        r"{\nonshppict{\pict\wmetafile8\picw1\pich1 0100090000036e00000000004500000000000400}}"
        r" after.}"
    )
    c = to_text(rtf)
    assert len(c.images) == 1
    assert c.images[0].mime == "image/png" and c.images[0].data == PNG
    assert c.text == "Before [image 1] after."
    assert "shapeType" not in c.text


def test_lone_nonshppict_is_still_a_picture() -> None:
    c = to_text(r"{\rtf1 x {\nonshppict{\pict\wmetafile8 0100090000}} y}")
    assert [(i.mime, i.data) for i in c.images] == [("image/x-wmf", bytes.fromhex("0100090000"))]


# --- HTML and TXT ----------------------------------------------------------------------------------


def test_html_data_uri_and_external_image() -> None:
    b64 = base64.b64encode(PNG).decode()
    html = (
        "<html><body><p>Tom &amp; Jerry&#8217;s visit<br>second line</p>"
        "<ul><li>one</li><li>two</li></ul>"
        f'<p>scan: <img alt="x-ray" src="data:image/png;base64,{b64[:20]}\n{b64[20:]}"></p>'
        "<img src='http://imaging.example/xray/123.jpg' width=10>"
        f"<p>jpeg <IMG SRC=data:image/jpeg;base64,{base64.b64encode(JPEG).decode()}></p></body></html>"
    )
    c = to_text(html, "HTML")
    assert c.fmt == "HTML"
    assert "<" not in c.text and "&amp;" not in c.text
    lines = [ln.strip() for ln in c.text.split("\n") if ln.strip()]
    assert lines[:2] == ["Tom & Jerry’s visit", "second line"]
    assert "* one" in lines and "* two" in lines
    assert "scan: [image 1]" in lines
    assert "[image 2: external reference not migrated]" in c.text
    assert "jpeg [image 3]" in lines
    one, two, three = c.images
    assert (one.index, one.mime, one.ext, one.data) == (1, "image/png", "png", PNG)
    assert (two.index, two.data, two.error) == (2, None, "external image reference")
    assert "imaging.example" not in two.error
    assert (three.mime, three.ext, three.data) == ("image/jpeg", "jpg", JPEG)


def test_txt_normalises_line_ends_and_trailing_whitespace() -> None:
    c = to_text('Line one  \r\nLine "two",\twith tab\rLine three\t\r\n\r\n', "TXT")
    assert c == Converted('Line one\nLine "two",\twith tab\nLine three', "TXT", ())
    assert to_text(None) == Converted("", "TXT", ()) == to_text("", "RTF")


def test_txt_is_not_reinterpreted() -> None:
    c = to_text("BP < 120 > ok & see [image 1]\n\n\n\n\nend", None)
    assert c == Converted("BP < 120 > ok & see [image 1]\n\n\n\n\nend", "TXT", ())


def test_format_detection_content_wins() -> None:
    rtf = r"{\rtf1\ansi\ansicpg1252 Hello\par World}"
    assert detect_format(rtf, "TXT") == "RTF"
    assert detect_format("\ufeff  " + rtf, None) == "RTF"
    c = to_text(rtf, "TXT")
    assert (c.fmt, c.text) == ("RTF", "Hello\nWorld")
    assert detect_format("<p>Hello<br>World</p>", None) == "HTML"
    assert to_text("<p>Hello<br>World</p>", None).text == "Hello\nWorld"
    assert detect_format("<P>Hello</P>", "RTF") == "HTML"
    assert detect_format("Pain 3 < 5 > 2, see <tooth #3>", "HTML") == "TXT"
    assert detect_format("Tom &amp; Jerry", "HTML") == "HTML"
    assert detect_format("Tom &amp; Jerry", None) == "TXT"
    assert detect_format(r"bold \b text\b0\par", "RTF") == "RTF"
    assert detect_format(r"C:\temp\xrays", "TXT") == "TXT"


# --- broken input ----------------------------------------------------------------------------------

SECRET = "Zebulon Quartermain"
RTF = r"{\rtf1\ansi " + SECRET


@pytest.mark.parametrize(
    ("note", "error"),
    [
        (RTF + r" {\pict\pngblip " + PNG.hex()[:-1] + r"} end}", "invalid hex in \\pict (odd length)"),
        (RTF + r" {\pict\pngblip 89504eZZ" + SECRET + r"} end}", "invalid hex in \\pict"),
        (RTF + r" {\pict\pngblip " + PNG.hex(), "unterminated \\pict group"),
        (RTF + r" {\*\shppict{\pict\pngblip " + PNG.hex() + "}", "unterminated \\pict group"),
        ("<p>" + SECRET + '</p><img src="data:image/png;base64,' + base64.b64encode(PNG).decode()[:-3] + '">',
         "invalid base64 in data: URI"),
        ("<p>" + SECRET + '</p><img src="data:image/png;base64,iVBO' + SECRET, "invalid base64 in data: URI"),
        ("<p>" + SECRET + "</p><img src=\"data:image/png;base64\">", "malformed data: URI"),
    ],
)
def test_broken_input_never_raises_and_reports_the_image(note: str, error: str) -> None:
    c = to_text(note)
    assert SECRET in c.text
    (img,) = c.images
    assert img.data is None and img.sha256 is None
    assert img.error == error
    assert "[image 1]" in c.text
    assert "\\pict" not in c.text and "base64" not in c.text


def test_unterminated_rtf_and_garbage_still_give_text() -> None:
    c = to_text(r"{\rtf1\ansi\ansicpg1252 caf\'e9 {\b bold\par more \uc")  # a bare \uc crashes striprtf
    assert c.fmt == "RTF" and c.text == "café bold\nmore"
    # striprtf raises on a code point beyond U+10FFFF: the fallback still decodes escapes and \par
    c = to_text(r"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}} caf\'e9 \u99999999? \u8364?5\par next")
    assert c.fmt == "RTF" and c.text == "café \ufffd €5\nnext"
    c = to_text("<html><body><p>a\x00b<br>c" + "<div>" * 50)
    assert c.fmt == "HTML" and c.text.split("\n")[:2] == ["ab", "c"]


# --- revision chains and composition --------------------------------------------------------------

T0 = dt.datetime(2024, 3, 1, 9, 30)


def _row(note_id: int, amends: int | None = None, minutes: int = 0, text: str | None = None,
         fmt: str | None = "TXT", void: bool = False, created: bool = True) -> dict[str, Any]:
    when = T0 + dt.timedelta(minutes=minutes)
    return {
        "note_id": note_id, "pat_id": 1, "note_dt": when.date(), "note_tm": when.time(), "prov_id": "DR1",
        "appt_id": None, "proc_code": None, "tooth": None, "surf": None, "note_type": "PROG",
        "note_fmt": fmt, "note_text": f"text {note_id}" if text is None else text, "signed_flg": True,
        "signed_dt": when, "locked_flg": True, "amends_note_id": amends, "void_flg": void,
        "created_dt": when if created else None, "modified_dt": when if created else None,
    }


def _img_rtf(*payloads: bytes) -> str:
    return r"{\rtf1\ansi rtf" + "".join(r" {\pict\pngblip " + p.hex() + "}" for p in payloads) + "}"


def _img_html(payload: bytes) -> str:
    return f'<p>html <img src="data:image/png;base64,{base64.b64encode(payload).decode()}"></p>'


def _chains_in_time(rows: list[dict[str, Any]], seconds: float = 10.0) -> list[Chain]:
    """revision_chains in a daemon thread, so a cycle that is not broken fails the test instead of hanging."""
    out: list[list[Chain]] = []
    t = threading.Thread(target=lambda: out.append(revision_chains(rows)), daemon=True)
    t.start()
    t.join(seconds)
    assert out, "revision_chains did not return (cycle not broken?)"
    return out[0]


def _chain_of(chains: list[Chain], note_id: int) -> Chain:
    return next(c for c in chains if note_id in c.ids)


def test_three_revisions_compose_in_order_with_renumbered_images() -> None:
    a, b, c, d = b"\x89PNG\r\n\x1a\nA", b"\x89PNG\r\n\x1a\nB", b"\x89PNG\r\n\x1a\nC", b"\x89PNG\r\n\x1a\nD"
    rows = [
        _row(12, amends=11, minutes=60, text=_img_html(c), fmt=None),
        _row(10, minutes=0, text=_img_rtf(a, b), fmt="RTF"),
        _row(13, amends=12, minutes=120, text=_img_rtf(d), fmt="TXT"),  # wrong declared format
        _row(11, amends=10, minutes=30, text="plain addendum"),
    ]
    (chain,) = revision_chains(rows)
    assert (chain.head_id, chain.root_id, chain.ids) == (13, 10, (10, 11, 12, 13))
    assert chain.latest is rows[2]
    assert [r["note_id"] for r in chain.history] == [10, 11, 12]
    assert chain.voided is False
    text, images = compose(chain)
    assert text == (
        "rtf [image 1]\n\n"
        "Amendment history\n"
        "2024-03-01 09:30 (note 10):\nrtf [image 2] [image 3]\n\n"
        "2024-03-01 10:00 (note 11):\nplain addendum\n\n"
        "2024-03-01 10:30 (note 12):\nhtml [image 4]"
    )
    assert [(i.index, i.data) for i in images] == [(1, d), (2, a), (3, b), (4, c)]
    # a custom converter gets its placeholders renumbered the same way
    text2, images2 = compose(chain, convert=lambda t, f: to_text(t, f))
    assert (text2, images2) == (text, images)


def test_single_note_has_no_history_section() -> None:
    (chain,) = revision_chains([_row(5, text=_img_rtf(PNG), fmt="RTF")])
    assert (chain.head_id, chain.root_id, chain.ids, chain.history) == (5, 5, (5,), ())
    assert compose(chain) == ("rtf [image 1]", (InlineImage(1, "image/png", "png", PNG),))


def test_fork_latest_is_newest_leaf_then_highest_id() -> None:
    rows = [_row(1), _row(2, amends=1, minutes=10), _row(3, amends=1, minutes=50),
            _row(4, amends=2, minutes=20)]
    (chain,) = revision_chains(rows)
    assert chain.head_id == 3 and chain.root_id == 1
    assert chain.ids == (1, 2, 4, 3)
    # equal timestamps: the highest note_id wins
    rows = [_row(1), _row(7, amends=1, minutes=10), _row(6, amends=1, minutes=10)]
    (chain,) = revision_chains(rows)
    assert chain.head_id == 7 and chain.ids == (1, 6, 7)
    # no timestamps at all on one leaf: a dated leaf wins
    rows = [_row(1), _row(9, amends=1, created=False), _row(8, amends=1, minutes=5)]
    rows[1]["note_dt"] = rows[1]["note_tm"] = None
    (chain,) = revision_chains(rows)
    assert chain.head_id == 8


def test_cycle_is_broken_deterministically_and_missing_parent_starts_a_chain() -> None:
    rows = [_row(21, amends=23, minutes=0), _row(22, amends=21, minutes=10), _row(23, amends=22, minutes=20),
            _row(24, amends=24, minutes=5),  # amends itself
            _row(31, amends=999, minutes=0), _row(32, amends=31, minutes=5, void=True)]
    for order in (rows, rows[::-1]):
        chains = _chains_in_time(order)
        assert [(c.root_id, c.head_id, c.ids) for c in chains] == [
            (21, 23, (21, 22, 23)), (24, 24, (24,)), (31, 32, (31, 32))]
    orphan = _chain_of(chains, 32)
    assert orphan.root_id == 31 and orphan.voided is True
    assert sorted(i for c in chains for i in c.ids) == [21, 22, 23, 24, 31, 32]


def test_chains_cover_duplicate_ids_once_each() -> None:
    rows = [_row(1), _row(1, minutes=5), _row(2, amends=1, minutes=9)]
    (chain,) = revision_chains(rows)
    assert chain.head_id == 2 and len(chain.history) == 2 and sorted(chain.ids) == [1, 1, 2]


# --- on generated data -----------------------------------------------------------------------------

# staged clinnote rows, and the note_ids the generator embedded an image in
Generated = tuple[list[dict[str, Any]], set[int]]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    from dos2hl.api import stage_export
    from dos2hl.generate import GenerateParams, generate
    from dos2hl.planning.plan import read_staged
    from dos2hl.storage import open_store

    root = tmp_path_factory.mktemp("richtext")
    generate(root / "practice", GenerateParams(seed=3, patients=40, locations=1, mess="nasty", images="none",
                                               history_years=2))
    stage_export(root / "practice" / "export", root / "staged", shards=1, export_date=dt.date(2024, 6, 28))
    table = read_staged(open_store(root / "staged"), "clinnote", "L001")
    assert table is not None
    rows = table.to_pylist()
    # the generator logs one NOTE1 defect per note it embedded an image in (one image each)
    truth = set()
    for line in (root / "practice" / "truth" / "defects.jsonl").read_text().splitlines():
        d = json.loads(line)
        if d["defect_id"] == "NOTE1":
            truth.add(d["key"]["note_id"])
    return rows, truth


def test_generated_notes_convert_cleanly(generated: Generated) -> None:
    rows, truth = generated
    fmts = {r["note_fmt"] for r in rows}
    assert {"TXT", "RTF", "HTML"} <= fmts
    with_images: set[int] = set()
    raw_pictures = 0
    for r in rows:
        raw = r["note_text"] or ""
        raw_pictures += raw.count("\\pict") + raw.count("data:image/")
        c = to_text(raw, r["note_fmt"])
        assert c.fmt == r["note_fmt"]
        assert "{\\rtf" not in c.text and "\\par" not in c.text and "\\" not in c.text
        assert "<p>" not in c.text and "<br" not in c.text and "<img" not in c.text and "</" not in c.text
        if c.fmt != "TXT":
            assert c.text.strip()
        for img in c.images:
            assert img.data is not None and img.mime == "image/png" and img.data.startswith(b"\x89PNG")
            assert f"[image {img.index}]" in c.text
        if c.images:
            with_images.add(r["note_id"])
        assert to_text(raw, None) == c  # content detection alone gets the same result
    assert truth and with_images == truth
    assert raw_pictures == sum(len(to_text(r["note_text"], r["note_fmt"]).images) for r in rows)


def test_generated_revision_chains_cover_every_row_once(generated: Generated) -> None:
    rows, _ = generated
    chains = revision_chains(rows)
    ids = [i for c in chains for i in c.ids]
    assert sorted(ids) == sorted(r["note_id"] for r in rows)
    assert len(ids) == len(set(ids))
    amended = [c for c in chains if c.history]
    assert amended, "the generator amends ~15% of notes"
    for c in amended:
        assert c.latest["amends_note_id"] in c.ids
        text, images = compose(c)
        assert text.startswith(to_text(c.latest["note_text"], c.latest["note_fmt"]).text)
        assert "\nAmendment history\n" in text
        assert [i.index for i in images] == list(range(1, len(images) + 1))
        assert re.findall(r"\[image (\d+)\]", text) == [str(i.index) for i in images]
