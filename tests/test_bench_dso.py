"""bench/dso.py's printed summary: the ratio from the first size to the last, and with three sizes the
curve's last segment, which says whether memory still grows with the rows."""

from __future__ import annotations

from typing import Any

from bench.dso import summarize


def _size(patients: int, audit_mb: int, audit_tree_mb: int, rows: int) -> dict[str, Any]:
    return {"patients": patients, "steps": {
        "audit": {"peak_rss_mb": audit_mb, "tree_rss_mb": audit_tree_mb, "rows": rows},
        "map_confirm": {"peak_rss_mb": 82, "tree_rss_mb": 70, "rows": None},  # reads no rows
    }}


def test_two_sizes_give_the_ratio_and_no_last_segment() -> None:
    out = summarize([_size(20_000, 255, 250, 2_566_841), _size(1_000_000, 295, 271, 129_423_020)])
    assert out["rss_ratio_by_step"] == {"audit": 1.16, "map_confirm": 1.0}
    assert out["peak_rss_mb"] == 295 and out["under_2048_mb"]
    assert "rss_ratio_last_by_step" not in out and "rss_mb_per_m_rows_last" not in out


def test_three_sizes_say_how_much_the_last_segment_still_grows_per_million_rows() -> None:
    runs = [_size(20_000, 255, 250, 2_566_841), _size(200_000, 276, 261, 25_910_311),
            _size(1_000_000, 295, 300, 129_423_020)]  # the largest's process tree is its peak
    out = summarize(runs)
    assert out["rss_ratio_by_step"]["audit"] == round(300 / 255, 2)
    assert out["rss_ratio_last_by_step"] == {"audit": round(300 / 276, 2), "map_confirm": 1.0}
    # (300 - 276) MB over 103.5 M more rows; a step that reports no rows has no slope
    assert out["rss_mb_per_m_rows_last"] == {"audit": 0.23}


def test_a_level_curve_has_a_slope_of_zero() -> None:
    runs = [_size(20_000, 250, 240, 1_000_000), _size(200_000, 300, 290, 10_000_000),
            _size(1_000_000, 300, 280, 50_000_000)]
    out = summarize(runs)
    assert out["rss_mb_per_m_rows_last"] == {"audit": 0.0}
    assert out["rss_ratio_last_by_step"]["audit"] == 1.0
