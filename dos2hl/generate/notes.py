"""Clinical notes and the communication log (GENERATOR.md §4.7): templated progress notes with
variable fragments, TXT/RTF/HTML formats, amendments, and reminder/recall contacts.

Messy content (multi-line memos with quotes and commas, cp1252 punctuation, embedded images) is
produced only when a mess profile is on, so a ``clean`` run stays free of logged defects.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
from typing import Any

from .context import LocCtx
from .people import Person
from .practice import blank
from .visits import Visit

__all__ = ["notes_for", "commlog_for"]

_ANESTH = (
    "1 carp 2% lido 1:100k epi",
    "2 carps 4% articaine 1:100k epi",
    "topical only",
    "no anesthetic",
    "1.8ml 3% mepivacaine plain",
)
_MATERIAL = (
    "composite A2, bonded, cured",
    "composite A3, etch/bond",
    "amalgam placed, carved",
    "temp crown placed",
    "final crown cemented with RMGI",
    "gutta percha obturation",
)
_POSTOP = (
    "Pt tolerated well.",
    "Post-op instructions given.",
    "Rx ibuprofen 600mg prn.",
    "Pt to call if pain persists.",
)
_HYG = (
    "Light calculus, generalized marginal gingivitis.",
    "Moderate plaque LL.",
    "Healthy gingiva.",
    "BOP localized UR.",
    "Heavy stain, polished.",
)
_FANCY = (
    "Pt’s mother asked about “sealants” – info given.",
    "Café au lait spot noted on cheek – benign.",
    "Pt said “no pain” – résumé of meds updated.",
)
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _text(rng: random.Random, v: Visit | None, rich: bool) -> str:
    if v is None:
        base = rng.choice(
            (
                "Pt called re billing question.",
                "Medical history updated, no changes.",
                "Pt called with sensitivity, advised desensitizing toothpaste.",
                "Rx refill requested.",
            )
        )
    elif v.kind in ("RCL", "PERIO", "NP"):
        base = (
            f"Pt presented for {'new patient exam' if v.kind == 'NP' else 'recall'}. Med hx reviewed. "
            f"{rng.choice(_HYG)} {'Perio maint' if v.kind == 'PERIO' else 'Prophy'} completed. OHI given."
        )
    else:
        t = next((pr for pr in v.procs if pr.tooth), None)
        where = f"#{t.tooth} {t.surf or ''}".strip() if t else "site"
        base = f"{where}: {rng.choice(_ANESTH)}. {rng.choice(_MATERIAL)}. {rng.choice(_POSTOP)}"
    if rich:
        if rng.random() < 0.10:
            base += " " + rng.choice(_FANCY)
        if rng.random() < 0.15:
            visit = rng.choice(("crown prep", "recall", "check bite"))
            base += f'\nNext visit: "{visit}", confirm by phone.\nDr reviewed.'
    return base


def _format(rng: random.Random, text: str, rich: bool, img_rate: float) -> tuple[str, str, bool]:
    u = rng.random()
    if u < 0.60:
        return "TXT", text, False
    if u < 0.95:
        body = text.encode("cp1252").decode("latin-1")
        body = "".join(c if ord(c) < 128 else f"\\'{ord(c):02x}" for c in body).replace(
            "\n", "\\par\n" if rich else "\\par "
        )
        pict = rich and rng.random() < img_rate * 2.5
        img = "{\\pict\\pngblip\\picw1\\pich1 " + _PNG.hex() + "}" if pict else ""
        return (
            "RTF",
            "{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Arial;}}\\f0\\fs20 " + body + img + "}",
            pict,
        )
    img = rich and rng.random() < img_rate * 10
    html = "<html><body><p>" + text.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>") + "</p>"
    if img:
        html += f'<img src="data:image/png;base64,{base64.b64encode(_PNG).decode()}">'
    return "HTML", html + "</body></html>", img


def notes_for(lc: LocCtx, p: Person, visits: list[Visit]) -> list[dict[str, Any]]:
    """Progress notes per completed visit (+15% amendments) and ~0.3 other notes per year."""
    ctx, rng = lc.ctx, lc.notes
    rich = ctx.mess_on
    img_rate = 0.005 * (3 if ctx.pl.mess_factor > 1 else 1)
    out: list[dict[str, Any]] = []
    done = [v for v in visits if v.completed]
    others: list[dt.date] = []
    if done:
        years = (done[-1].day - done[0].day).days / 365.25
        others = sorted(
            done[0].day + dt.timedelta(days=rng.randint(0, max(int(years * 365), 1)))
            for _ in range(int(years * 0.3 + rng.random()))
        )
    items: list[tuple[dt.date, Visit | None]] = [(v.day, v) for v in done] + [(d, None) for d in others]
    items.sort(key=lambda x: (x[0], 0 if x[1] is None else x[1].appt["appt_id"]))
    for day, v in items:
        tm = v.appt["dismissed_tm"] if v else dt.time(rng.randint(8, 17), rng.randint(0, 59))
        tm = tm.replace(second=0)
        fmt, text, img = _format(rng, _text(rng, v, rich), rich, img_rate)
        n = blank("clinnote")
        when = dt.datetime.combine(day, tm)
        prov = v.prov if v else lc.active_provider(rng, "D", day)
        n.update(
            note_id=ctx.ids.next("note"),
            pat_id=p.pat_id,
            note_dt=day,
            note_tm=tm,
            prov_id=prov,
            entered_by=rng.choice(lc.loc.staff),
            appt_id=v.appt["appt_id"] if v else None,
            proc_code=v.procs[-1].code if v and v.procs else None,
            tooth=next((pr.tooth for pr in v.procs if pr.tooth), None) if v else None,
            note_type=("PROG" if v.kind != "NP" else "EXAM") if v else rng.choice(("PHONE", "MED")),
            note_fmt=fmt,
            note_text=text,
            signed_flg=rng.random() < 0.8,
            locked_flg=False,
            void_flg=False,
            created_dt=when,
            modified_dt=when,
        )
        if n["signed_flg"]:
            n["signed_dt"] = when
            n["locked_flg"] = True
            if rng.random() < 0.05:
                n["sig_data"] = ";".join(f"{rng.randint(0, 200)},{rng.randint(0, 60)}" for _ in range(12))
        d = []
        if img:
            d.append(("NOTE1", "note_text", "repair", False))
        if ctx.mess_on and v is not None and lc.hit("NOTE2"):
            if len(v.procs) > 1 and rng.random() < 0.5:
                n["proc_code"] = ",".join(pr.code for pr in v.procs[:3])
                d.append(("NOTE2", "proc_code", "audit", False))
            else:
                n["prov_id"] = rng.choice(lc.loc.staff).upper()
                d.append(("NOTE2", "prov_id", "audit", False))
        if d:
            n["__d"] = d
        out.append(n)
        if rng.random() < 0.15 and day + dt.timedelta(days=3) <= ctx.export:
            a = dict(n)
            a.pop("__d", None)
            later = when + dt.timedelta(days=rng.randint(0, 3), minutes=rng.randint(5, 600))
            if later.date() > ctx.export:
                later = when
            a.update(
                note_id=ctx.ids.next("note"),
                amends_note_id=n["note_id"],
                note_fmt="TXT",
                note_text="Addendum: "
                + rng.choice(("pt called, doing well.", "corrected tooth number.", "added shade info.")),
                created_dt=later,
                modified_dt=later,
                signed_dt=later if n["signed_flg"] else None,
                note_tm=later.time().replace(second=0),
                note_dt=later.date(),
                sig_data=None,
            )
            out.append(a)
    return out


def commlog_for(lc: LocCtx, p: Person, visits: list[Visit]) -> list[dict[str, Any]]:
    """Reminders and confirmations per appointment, recall attempts, and no-show follow-ups."""
    ctx, rng = lc.ctx, lc.notes
    out: list[dict[str, Any]] = []
    for v in visits:
        day = v.day - dt.timedelta(days=rng.randint(1, 3))
        if day > ctx.export or day < ctx.start:
            continue
        mode = rng.choice(("TX", "TX", "EM", "PH"))
        out.append(_comm(lc, p, day, mode, "S", "APPT", f"Appt reminder sent for {v.day:%m/%d}"))
        if v.status == "CMP" and rng.random() < 0.5:
            out.append(_comm(lc, p, day, "TX", "R", "APPT", "Confirmed via text"))
        if v.status == "BRK":
            out.append(
                _comm(
                    lc,
                    p,
                    min(v.day + dt.timedelta(days=1), ctx.export),
                    "PH",
                    "S",
                    "APPT",
                    "No-show, left message to reschedule",
                )
            )
        if rng.random() < 0.35:
            out.append(
                _comm(
                    lc,
                    p,
                    min(v.day + dt.timedelta(days=150), ctx.export),
                    rng.choice(("ML", "EM", "TX")),
                    "S",
                    "RECALL",
                    "Recall reminder",
                )
            )
    return out


def _comm(
    lc: LocCtx, p: Person, day: dt.date, mode: str, direction: str, ctype: str, note: str
) -> dict[str, Any]:
    rng = lc.notes
    r = blank("commlog")
    r.update(
        comm_id=lc.ctx.ids.next("comm"),
        pat_id=p.pat_id,
        comm_dttm=dt.datetime.combine(
            day, dt.time(rng.randint(8, 18), rng.randint(0, 59), rng.randint(0, 59))
        ),
        mode=mode,
        direction=direction,
        comm_type=ctype,
        note=note,
        user=rng.choice(lc.loc.staff),
    )
    return r
