"""Documents and the IMAGES\\ tree (GENERATOR.md §4.9, EXPORT_FORMAT.md §12).

DOCUMENT rows name a Windows folder (``\\\\DOSSRV\\DOSIMG\\S\\SMITHJOHN000123\\`` or
``D:\\DentOSoft\\Images\\000123\\``) and a file name; the file itself is written under
``export/IMAGES/<folder after the image root>/<file name>`` with valid magic bytes. With
``images=sized`` (and for ``large_docs``) files are extended to their size with a sparse seek, so a
30 MB CBCT costs no disk and no time to write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import unicodedata
from pathlib import Path
from typing import Any

from .context import LocCtx
from .people import Person
from .practice import blank
from .visits import Visit

__all__ = ["ImageStore", "documents_for", "IMAGE_ROOTS"]

IMAGE_ROOTS = ("\\\\DOSSRV\\DOSIMG\\", "D:\\DentOSoft\\Images\\")
_MAGIC = {
    "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
    "pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    "tif": b"II*\x00\x08\x00\x00\x00",
    "dcm": b"\x00" * 128 + b"DICM",
}
_MIME = {
    "jpg": "image/jpeg",
    "pdf": "application/pdf",
    "tif": "image/tiff",
    "dcm": "application/dicom",
    "dxr": "application/octet-stream",
    "img": "application/octet-stream",
}
_MB = 1 << 20


class ImageStore:
    """Writes document files and records their sha256/bytes (streamed to a side file, not kept)."""

    def __init__(self, export_dir: Path, mode: str, index_path: Path) -> None:
        self.root = export_dir / "IMAGES"
        self.mode = mode
        self._index = index_path.open("w", encoding="utf-8")
        self.files = 0
        self.bytes = 0
        self._dirs: set[Path] = set()

    def write(self, rel: str, ext: str, size: int, rng: random.Random, force_size: bool = False) -> int:
        """Write one file; returns its real size. ``rel`` uses '/' separators below IMAGES/."""
        if self.mode == "none":
            return size
        body = _MAGIC.get(ext, b"") + rng.randbytes(rng.randint(64, 512))
        if ext == "jpg":
            body += b"\xff\xd9"
        elif ext == "pdf":
            body += b"\n%%EOF\n"
        target = len(body) if (self.mode == "stub" and not force_size) else max(size, len(body))
        path = self.root / rel
        if path.parent not in self._dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path.parent)
            if len(self._dirs) > 10_000:
                self._dirs.clear()
        h = hashlib.sha256(body)
        with path.open("wb") as f:
            f.write(body)
            if target > len(body):
                f.truncate(target)  # sparse zero padding
        pad = target - len(body)
        zeros = bytes(min(pad, _MB))
        while pad > 0:
            n = min(pad, _MB)
            h.update(zeros[:n])
            pad -= n
        self._index.write(
            json.dumps({"path": "export/IMAGES/" + rel, "bytes": target, "sha256": h.hexdigest()}) + "\n"
        )
        self.files += 1
        self.bytes += target
        return target

    def close(self) -> None:
        self._index.close()


def _folder(lc: LocCtx, p: Person) -> tuple[str, str]:
    """(Windows FILE_PATH, relative folder under IMAGES/) for a patient."""
    pid = f"{p.pat_id:06d}"
    if int(lc.loc.loc_id[1:]) % 2 == 1:
        name = unicodedata.normalize("NFKD", f"{p.lname}{p.fname}").encode("ascii", "ignore").decode().upper()
        letter = name[:1] or "X"
        return f"{IMAGE_ROOTS[0]}{letter}\\{name}{pid}\\", f"{letter}/{name}{pid}"
    return f"{IMAGE_ROOTS[1]}{pid}\\", pid


def _size(rng: random.Random, mb: float) -> int:
    return max(int(rng.lognormvariate(0, 0.4) * mb * _MB), 2048)


def documents_for(
    lc: LocCtx,
    p: Person,
    visits: list[Visit],
    store: ImageStore,
    card_days: list[dt.date],
    txplans: list[dict[str, Any]],
    large: bool,
) -> list[dict[str, Any]]:
    """DOCUMENT rows for one person (and their files)."""
    ctx, rng = lc.ctx, lc.docs
    win, rel = _folder(lc, p)
    out: list[dict[str, Any]] = []
    seen_year: set[int] = set()

    def doc(
        day: dt.date,
        cat: str,
        itype: str,
        fname: str,
        ext: str,
        mb: float,
        *,
        tooth: str | None = None,
        series: str | None = None,
        source: str = "SENSOR",
        prov: str | None = None,
        force: int = 0,
    ) -> dict[str, Any]:
        r = blank("document")
        size = force or _size(rng, mb)
        d: list[tuple[str, str, str, bool]] = []
        if itype == "R" and ctx.mess_on and lc.hit("DOC2"):
            ext = rng.choice(("dxr", "img"))
            fname = fname.rsplit(".", 1)[0] + "." + ext
            d.append(("DOC2", "file_ext", "audit", False))
        if ctx.mess_on and lc.hit("DOC1_PHI") and itype in ("D", "P"):
            fname = rng.choice(
                (f"{p.lname} {p.fname} {cat.lower()}.{ext}", f"{p.lname}, {p.fname} {day:%m-%d-%Y}.{ext}")
            )
            d.append(("DOC1", "file_name", "audit", False))
        file_ext = ext.upper() if rng.random() < 0.3 else ext
        if ctx.mess_on and lc.hit("DOC1_EXT"):
            file_ext = rng.choice((None, "JPG" if ext == "pdf" else "PDF"))
            d.append(("DOC1", "file_ext", "audit", False))
        missing = ctx.mess_on and lc.hit("DOC1_MISSING")
        real = size if missing else store.write(f"{rel}/{fname}", ext, size, rng, force_size=bool(force))
        if missing:
            d.append(("DOC1", "file_name", "audit", False))
        file_size: int | None = real
        if ctx.mess_on and lc.hit("DOC1_SIZE"):
            file_size = rng.choice((0, None, real * 2 + 17))
            d.append(("DOC1", "file_size", "audit", False))
        tm = dt.time(rng.randint(8, 17), rng.randint(0, 59), rng.randint(0, 59))
        r.update(
            doc_id=ctx.ids.next("doc"),
            pat_id=p.pat_id,
            doc_dttm=dt.datetime.combine(day, tm),
            category=cat,
            img_type=itype,
            description=cat.title(),
            file_path=win,
            file_name=fname,
            file_ext=file_ext,
            mime_type=_MIME.get(ext) if (rng.random() < 0.3 or ext in ("dxr", "img")) else None,
            file_size=file_size,
            tooth_list=tooth,
            prov_id=prov,
            series_id=series,
            source=source,
            signed_flg=(cat == "CONSENT") or None,
            deleted_flg=False,
        )
        if d:
            r["__d"] = d
        out.append(r)
        if ctx.mess_on and lc.hit("DOC1_ORPHAN"):
            orphan = f"{rel}/IMG_{rng.randint(1000, 9999)}.jpg"
            store.write(orphan, "jpg", _size(rng, 1), rng)
            lc.orphans.append("export/IMAGES/" + orphan)
        return r

    for v in visits:
        if not v.completed:
            continue
        ymd = f"{v.day:%Y%m%d}"
        for pr in v.procs:
            c = pr.code
            rad_ext = rng.choice(("jpg", "jpg", "tif", "dcm"))
            if c in ("D0272", "D0274"):
                n = (
                    1 if rng.random() < 0.65 else (2 if c == "D0272" else 4)
                )  # a mount image or the single films
                ser = f"BW{v.appt['appt_id']}"
                for i in range(n):
                    doc(
                        v.day,
                        "XBW",
                        "R",
                        f"BW_{ymd}_{i + 1:02d}.{rad_ext}",
                        rad_ext,
                        1,
                        series=ser,
                        prov=v.prov,
                    )
            elif c == "D0210":
                n = 1 if rng.random() < 0.75 else 18
                ser = f"FMX{v.appt['appt_id']}"
                for i in range(n):
                    doc(
                        v.day,
                        "XFMX",
                        "R",
                        f"FMX_{ymd}_{i + 1:02d}.{rad_ext}",
                        rad_ext,
                        1,
                        series=ser,
                        prov=v.prov,
                    )
            elif c == "D0330":
                doc(v.day, "XPANO", "R", f"PANO_{ymd}.{rad_ext}", rad_ext, 4, source="PANO", prov=v.prov)
            elif c == "D0220":
                doc(v.day, "XPA", "R", f"PA_{ymd}.{rad_ext}", rad_ext, 1, tooth=pr.tooth, prov=v.prov)
            elif c[:3] in ("D27", "D33", "D60", "D72") or c in ("D7140", "D4341"):
                doc(
                    v.day, "CONSENT", "D", f"scan{rng.randint(1, 9999):04d}.pdf", "pdf", 0.4, source="SCANNER"
                )
                if c[:3] == "D27" and rng.random() < 0.4:
                    for _ in range(rng.randint(1, 4)):
                        doc(
                            v.day,
                            "PHIO",
                            "P",
                            f"IMG_{rng.randint(1000, 9999)}.jpg",
                            "jpg",
                            3,
                            tooth=pr.tooth,
                            source="CAMERA",
                            prov=v.prov,
                        )
        if v.day.year not in seen_year:
            seen_year.add(v.day.year)
            if rng.random() < 0.25:
                doc(v.day, "MEDHX", "D", f"medhx_{ymd}.pdf", "pdf", 0.3, source="EFORM")
        if large and lc.large_left > 0 and v.kind == "NP":
            lc.large_left -= 1
            doc(
                v.day,
                "CBCT",
                "R",
                f"CBCT_{ymd}.dcm",
                "dcm",
                40,
                source="IMPORT",
                force=rng.randint(26, 60) * _MB,
            )
    for day in card_days:
        for cat in ("INSCF", "INSCB"):
            doc(
                day,
                cat,
                "D",
                f"inscard_{'front' if cat == 'INSCF' else 'back'}_{day:%Y%m%d}.jpg",
                "jpg",
                0.3,
                source="SCANNER",
            )
    for t in txplans:
        if t["signed_flg"]:
            t["doc_id"] = doc(
                t["presented_dt"], "TXPL", "D", f"txplan_{t['txplan_id']}.pdf", "pdf", 0.2, source="EFORM"
            )["doc_id"]
    return out
