"""Document checks of the source audit (DOC1, DOC2; GENERATOR.md §6, EXPORT_FORMAT.md §12).

DOCUMENT rows name a folder (an absolute Windows or UNC path such as ``\\\\SRV\\IMG\\S\\SMITHJ000123\\``)
and a file name; the export carries the files under an ``IMAGES`` folder with the part of the path
below the practice's image root. Real roots differ from export to export, so a row is matched to a
file by its **file name** (case-insensitive, as on Windows) and, when several files share that name,
by the **last folder** of FILE_PATH. A file that no row matches is an orphan.

- ``DOC1``: the referenced file is missing (no matching file, no inline EMBED_B64), FILE_SIZE is blank,
  0 or differs from the real file, FILE_EXT is blank or disagrees with the file name's extension, or
  the file name contains the patient's last name (PHI in a file name); plus orphan files on disk
  (counted, never listed: their paths can hold names).
- ``DOC2``: a proprietary image format (``.dxr``, ``.img``, ``.rvg`` ...) or MIME type
  application/octet-stream, which HighLevel cannot preview and which needs converting first.

The last names used for the PHI test stay in memory (folded to upper-case letters, ``LastNames``); no
name, path or file name is ever written to a finding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from ..sources.idmap import IdMap
from .checks_base import Findings, Store, flat, fold_letters, true
from .docindex import UNSAFE_FILE, DocumentIndex

__all__ = ["DocumentChecks", "LastNames", "PROPRIETARY_EXT", "UNSAFE_FILE"]

PROPRIETARY_EXT = frozenset({"dxr", "img", "rvg", "sid", "pvt", "xdr", "dxp", "tdo"})
_SAME_EXT = {"jpeg": "jpg", "tiff": "tif", "htm": "html", "dicom": "dcm"}
_SEP = re.compile(r"[\\/]+")
_TOKENS = re.compile(r"[^A-Z]+")


def _ext(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    e = ext.lower() if dot and stem else ""
    return _SAME_EXT.get(e, e)


class LastNames:
    """Each patient's folded last name, for the PHI test of file names: every distinct name once, and
    per patient id an index into them (``sources.idmap.IdMap``: a few bytes a patient, where the ids and
    names as arrays were ~17 MB at a 1 M-patient DSO, and finding a chunk's patients among them built a
    hash table of every id per chunk). Read from ``store`` (pat_id, l) a piece at a time."""

    def __init__(self, store: Store) -> None:
        self._ids = IdMap()
        self._names = pa.array([], pa.string())
        for b in store.batches():
            names = b["l"].cast(pa.string())
            idx = pc.index_in(names, value_set=self._names)
            new = pc.unique(names.filter(pc.and_(pc.is_null(idx), pc.is_valid(names))))
            if len(new):
                self._names = pa.concat_arrays([self._names, flat(new)])
                idx = pc.index_in(names, value_set=self._names)
            self._ids.add(b["pat_id"], idx, pa.nulls(b.num_rows, pa.string()))

    def of(self, pat_ids: pa.Array | pa.ChunkedArray) -> list[str | None]:
        """The folded last name of each patient (None: no such patient, or no name)."""
        idx, _ = self._ids.lookup(pat_ids)
        out: list[str | None] = pc.take(self._names, idx).to_pylist()
        return out

    @property
    def nbytes(self) -> int:
        return int(self._ids.nbytes + self._names.nbytes)


class DocumentChecks:
    def __init__(self, findings: Findings, documents: DocumentIndex | Mapping[str, int] | None) -> None:
        self.f = findings
        if documents is not None and not isinstance(documents, DocumentIndex):
            documents = DocumentIndex.from_sizes(documents)
        self.docs = documents  # the export's files: compact arrays, not a Python object per file

    def _find(self, path: str | None, name: str) -> int | None:
        """The position in the index of the file a row names, or None."""
        parts = [p for p in _SEP.split(name) if p]
        if not parts or self.docs is None:
            return None
        folder = [p for p in _SEP.split(path or "") if p and not p.endswith(":")] + parts[:-1]
        cands = self.docs.candidates(parts[-1])
        if not cands:
            return None
        last = folder[-1].lower() if folder else None
        for parent, key in cands:
            if parent == last:
                return key
        if len(cands) == 1 and (last is None or cands[0][0] in ("images", "")):
            return cands[0][1]  # no folder given, or the export keeps files flat
        return None

    def add(self, data: pa.Table, lnames: LastNames | None) -> None:
        """Check one DOCUMENT chunk; ``lnames``: the patients' folded last names."""
        n = data.num_rows
        lname = lnames.of(data["pat_id"]) if lnames is not None else [None] * n
        fname = fold_letters(data["file_name"], keep_spaces=True).to_pylist()
        cols = {
            c: data[c].to_pylist() for c in ("file_path", "file_name", "file_ext", "file_size", "mime_type")
        }
        inline = true(pc.is_valid(data["embed_b64"])).to_pylist()
        deleted = true(data["deleted_flg"]).to_pylist()
        kinds = ("missing", "size", "extension", "name_has_patient_name")
        hit = {k: [False] * n for k in kinds}
        prop = [False] * n
        for i in range(n):
            name, ext, size = cols["file_name"][i], cols["file_ext"][i], cols["file_size"][i]
            real_ext = _ext(_SEP.split(name)[-1]) if name else ""
            given = _SAME_EXT.get(
                (ext or "").strip().lstrip(".").lower(), (ext or "").strip().lstrip(".").lower()
            )
            mime = (cols["mime_type"][i] or "").strip().lower()
            prop[i] = (
                real_ext in PROPRIETARY_EXT or given in PROPRIETARY_EXT or mime == "application/octet-stream"
            )
            hit["extension"][i] = not given or given != real_ext
            last = lname[i]
            if last and fname[i]:
                want = [t for t in last.split() if len(t) >= 2]
                have = set(fname[i].split())
                hit["name_has_patient_name"][i] = bool(want) and all(t in have for t in want)
            if not size:
                hit["size"][i] = True
            if self.docs is None:
                continue
            key = self._find(cols["file_path"][i], name) if name else None
            if key is None:
                hit["missing"][i] = not inline[i] and not deleted[i]
                continue
            real = self.docs.match(key)
            if size and real >= 0 and size != real:
                hit["size"][i] = True
        any_hit = [any(hit[k][i] for k in kinds) for i in range(n)]
        self.f.flag(
            "DOC1",
            "document",
            data,
            pa.array(any_hit, pa.bool_()),
            detail={k: sum(v) for k, v in hit.items()},
        )
        self.f.flag("DOC2", "document", data, pa.array(prop, pa.bool_()))

    def finish(self) -> None:
        if self.docs is not None:
            self.f.add("DOC1", self.docs.orphans(), "orphan_files")
            self.f.add("DOC1", self.docs.unsafe, "unsafe_files")  # links, FIFOs, devices: never read/listed
