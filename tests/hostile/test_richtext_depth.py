"""Issue 14 finding 9: rich text that the converter cannot render whole is never silently cut.

HTML nested 255 levels or more: lxml stops building the tree and every word below (and after) is gone,
and verification converts the same way, so only the converter itself can notice. An RTF picture group
of tens of MB stays bounded in time and memory, is reported (over the upload limit) instead of decoded,
and the text after it is kept.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

from tests.hostile.conftest import CANARY, leaks, peak_rss_mib


def _deep(depth: int, tag: str = "div") -> str:
    return (f"<p>first words</p>{f'<{tag}>' * depth}deep words {CANARY}{f'</{tag}>' * depth}"
            "<p>last words</p>")


@pytest.mark.parametrize("depth", [255, 256, 300, 5000])
def test_deep_html_keeps_every_word_and_says_it_fell_back(depth: int) -> None:
    from dos2hl.richtext.notes import to_text

    c = to_text(_deep(depth), "HTML")
    for words in ("first words", f"deep words {CANARY}", "last words"):
        assert words in c.text, (depth, words)
    assert c.plain_fallback and c.fmt == "HTML"
    assert "<div>" not in c.text


def test_shallow_html_is_rendered_by_the_library_and_not_flagged() -> None:
    from dos2hl.richtext.notes import to_text

    c = to_text(_deep(40, "span") + "<ul><li>one</li><li>two</li></ul><script>var x = 1</script>", "HTML")
    assert not c.plain_fallback
    assert "deep words" in c.text and "* one" in c.text and "var x" not in c.text


def test_text_after_the_closing_html_tag_is_not_lost_either() -> None:
    from dos2hl.richtext.notes import to_text

    c = to_text("<html><body><p>seen</p></body></html>addendum typed after the end", "HTML")
    assert "addendum typed after the end" in c.text and c.plain_fallback


def test_stray_brackets_do_not_make_the_fallback_quadratic() -> None:
    from dos2hl.richtext.notes import to_text

    text = "<div>" * 300 + "a <" * 200_000 + " end" + "</div>" * 300
    t = time.monotonic()
    c = to_text(text, "HTML")
    assert time.monotonic() - t < 30
    assert c.text.endswith("end")


def test_compose_names_the_revisions_kept_as_plain_text() -> None:
    from dos2hl.richtext.notes import compose, revision_chains

    rows = [{"note_id": 7, "pat_id": 1, "note_text": "<p>ok</p>", "note_fmt": "HTML"},
            {"note_id": 9, "pat_id": 1, "amends_note_id": 7, "note_text": _deep(400), "note_fmt": "HTML"}]
    (chain,) = revision_chains(rows)
    lost: list[int] = []
    body, _images = compose(chain, fallbacks=lost)
    assert lost == [9]
    assert "deep words" in body and "last words" in body


def test_the_runs_notices_sum_the_notes_kept_as_plain_text() -> None:
    from dos2hl.execution.report import _notices

    class Phase:
        shards = [{"notices": {"notes_as_plain_text": [12, 40]}}, {"notices": {"notes_as_plain_text": [41]}}]

    assert _notices([Phase()])["notes_as_plain_text"] == {"count": 3, "note_ids": [12, 40, 41]}


def _rtf_with_picture(hex_mb: int) -> str:
    line = "89504e470d0a1a0a" + "ab" * 56 + "\n"
    pict = "{\\pict\\pngblip\\picw10\\pich10 " + line * (hex_mb * 2**20 // len(line)) + "}"
    return "{\\rtf1\\ansi before the picture " + pict + " after the picture " + CANARY + "\\par}"


def test_a_huge_pict_is_reported_not_decoded_and_the_text_after_it_is_kept() -> None:
    from dos2hl.richtext.notes import to_text

    s = _rtf_with_picture(56)  # 28 MB of picture: over the upload limit
    tracemalloc.start()
    t = time.monotonic()
    try:
        c = to_text(s, "RTF")
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    took = time.monotonic() - t
    print(f"56 MB \\pict: {took:.1f} s, traced peak {peak / 2**20:.0f} MiB, process peak "
          f"{peak_rss_mib():.0f} MiB")
    assert "before the picture" in c.text and f"after the picture {CANARY}" in c.text
    (img,) = c.images
    assert img.data is None and img.error == "picture over the 25 MB upload limit"
    assert not leaks(None, img.error)
    assert peak < 1.5 * len(s), "the picture is never copied more than once beside the note"
    assert took < 120


def test_a_picture_under_the_limit_is_still_decoded() -> None:
    from dos2hl.richtext.notes import to_text

    c = to_text(_rtf_with_picture(2), "RTF")
    (img,) = c.images
    assert img.data is not None and img.mime == "image/png" and len(img.data) > 0.9 * 2**20
    assert "after the picture" in c.text


def test_a_huge_data_uri_is_reported_not_decoded() -> None:
    from dos2hl.richtext.notes import to_text

    c = to_text('<p>x</p><img src="data:image/png;base64,' + "QUFB" * (9 * 2**20) + '"><p>after</p>', "HTML")
    (img,) = c.images
    assert img.data is None and img.error == "picture over the 25 MB upload limit"
    assert "after" in c.text
