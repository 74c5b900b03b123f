"""Render ``audit.json`` as ``audit.md``, the source schema document a person reads."""

from __future__ import annotations

__all__ = ["render_markdown"]


def _t(rows: list[list[object]], head: list[str]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows]
    return out + [""]


def render_markdown(doc: dict) -> str:  # type: ignore[type-arg]
    L: list[str] = [f"# Source audit: {doc['source']}", ""]
    L += [f"- profile: `{doc['profile']}`; export date: {doc['export_date']}",
          f"- identity: **{doc['identity']}** ({'balanced' if doc['balanced'] else 'NOT BALANCED'})",
          f"- document files found: {doc['document_files']}; unknown files: {len(doc['unknown_files'])}", ""]
    L += ["## Files", ""]
    rows = []
    for key, f in doc["files"].items():
        fmt = f.get("format") or {}
        rows.append([key, f["table"], fmt.get("encoding"), repr(fmt.get("delimiter")), fmt.get("quotechar"),
                     f["banner_lines"], f["trailer_lines"], f["records"], f["clean"], f["repaired"],
                     f["quarantined"], f.get("error") or "; ".join(f.get("warnings") or [])])
    L += _t(rows, ["file", "table", "encoding", "delim", "quote", "banner", "trailer", "records", "clean",
                   "repaired", "quarantined", "notes"])
    L += ["## Objects and where they go in HighLevel", ""]
    L += _t([[n, o["title"], o["rows"], o["highlevel"]["target"], o["highlevel"]["detail"],
              ", ".join(f"{k}: {v}" for k, v in o["by_location"].items())]
             for n, o in doc["objects"].items()],
            ["object", "title", "rows", "HighLevel", "detail", "rows by location"])
    L += ["## Columns", ""]
    for n, o in doc["objects"].items():
        L += [f"### {n} ({o['title']})", ""]
        L += _t([[c, a["kind"], a["phi"], a["null_rate"], a["distinct"],
                  ", ".join(f"{k}={v}" for k, v in list((a.get("values") or {}).items())[:8])]
                 for c, a in o["columns"].items()],
                ["column", "type", "PHI", "null rate", "distinct", "values (codes only)"])
    L += ["## Custom fields", ""]
    cf = doc["custom_fields"]
    L += _t([[d["field_id"], d["field_name"], d["field_type"]] for d in cf["definitions"]],
            ["field id", "name", "type"])
    L += _t([[c, a["null_rate"], a["distinct"]] for c, a in cf["wide_columns"].items()],
            ["wide column", "null rate", "distinct"])
    if cf.get("unmapped"):
        L += ["Columns no profile maps (type inferred from their values; treated as PHI until mapped):", ""]
        L += _t([[u["file"], u["column"], u["kind"], u["null_rate"], u["distinct"]]
                 for u in cf["unmapped"].values()],
                ["file", "column", "inferred type", "null rate", "distinct"])
    L += ["## Data-quality findings", "", "Row references are file, line and record ids only.", ""]
    L += _t([[f["code"], f["action"], f["count"], f["reason"],
              "; ".join(f"{r['file']}:{r['line']}" for r in f.get("refs", [])[:5])] for f in doc["findings"]],
            ["code", "action", "count", "meaning", "first rows"])
    L += ["## Orphan foreign keys", ""]
    L += _t([[o["table"], o["column"], o["refers_to"], o["missing_ids"], ", ".join(o["sample_ids"])]
             for o in doc["orphans"]], ["table", "column", "refers to", "missing ids", "sample ids"])
    d = doc["duplicates"]
    L += ["## Duplicate-person candidates", "", f"Rule: {d.get('rule', '')}.",
          f"{d.get('pairs_count', 0)} candidate pairs in {len(d.get('clusters', []))} clusters.", ""]
    L += _t([[", ".join(map(str, c))] for c in d.get("clusters", [])[:50]], ["pat_ids"])
    L += ["## PHI classes per column", "", "D direct identifier, H health, F financial, R reference, "
          "S sensitive non-patient.", ""]
    L += _t([[f, ", ".join(f"{c}:{p}" for c, p in cols.items())] for f, cols in doc["phi"].items()],
            ["file", "column:class"])
    return "\n".join(L) + "\n"
