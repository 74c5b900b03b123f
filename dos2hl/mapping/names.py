"""Column and file names as tokens: split (camelCase, digits, glued words segmented against the
vocabulary), normalised through ``synonyms`` (``Dt`` -> ``date``, ``Pt`` -> ``patient``), and compared
(exact, abbreviation, fuzzy). The matcher's half that looks at names only.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from ..model import TABLES
from . import synonyms as syn

__all__ = ["name_similarity", "normalize", "tokenize"]

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _raw_tokens(name: str) -> list[str]:
    """Split on separators, camelCase and digits: ``PatLast`` -> pat, last; ``ZIPCode`` -> zip, code."""
    return _join_initials(_split_words(name))


def _split_words(name: str) -> list[str]:
    out: list[str] = []
    for part in re.split(r"[^A-Za-z0-9]+", name.replace("#", " no ")):  # Chart #, Group #
        out.extend(m.group(0).lower() for m in _CAMEL.finditer(part))
    return out


def _join_initials(tokens: list[str]) -> list[str]:
    """Single letters: ``M.I.`` (m, i) is one initialism ``mi``; ``LName``/``E-mail`` (l, name / e, mail)
    glue the letter to the next word when that makes a known word (lname, email); any other lone
    letter among words says nothing and is dropped."""
    out: list[str] = []
    run: list[str] = []
    known = _vocabulary()
    for tok in [*tokens, ""]:
        if len(tok) == 1 and tok.isalpha():
            run.append(tok)
            continue
        if len(run) > 1:
            out.append("".join(run))
        elif run and tok and (run[0] + tok in known or run[0] + tok in syn.TOKEN_SYNONYMS):
            tok = run[0] + tok
        elif run and not any(len(t) > 1 for t in tokens):
            out.append(run[0])
        run = []
        if tok:
            out.append(tok)
    return out


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    """Every word the matcher knows: used to segment glued words (``lastname``, ``patnum``)."""
    words: set[str] = set(syn.TOKEN_SYNONYMS)
    for normal in syn.TOKEN_SYNONYMS.values():
        words.update(normal.split())
    for phrases in syn.COLUMN_SYNONYMS.values():
        for p in phrases:
            words.update(_split_words(p))
    for t in TABLES.values():
        for c in t.columns:
            words.update(_split_words(c.name))
    return frozenset(w for w in words if len(w) >= 2 and w.isalpha())


@lru_cache(maxsize=20000)
def _segment(token: str) -> tuple[str, ...] | None:
    """Split a glued word into the fewest known words (``dateofbirth`` -> date, of, birth), or None."""
    vocab = _vocabulary()
    n = len(token)
    best: list[tuple[str, ...] | None] = [None] * (n + 1)
    best[0] = ()
    for i in range(n):
        if best[i] is None:
            continue
        for j in range(i + 2, n + 1):
            piece = token[i:j]
            if piece in vocab or piece in ("of", "to", "by", "in"):
                cand = best[i] + (piece,)  # type: ignore[operator]
                if best[j] is None or len(cand) < len(best[j]):  # type: ignore[arg-type]
                    best[j] = cand
    seg = best[n]
    return seg if seg and len(seg) > 1 else None


@lru_cache(maxsize=20000)
def _segment_loose(token: str) -> tuple[str, ...] | None:
    """A glued word of known words plus one initial or one abbreviated word, the way terse UPPER
    headers are written (``FVISITDT``: f, visit, dt; ``MEDALRT``: med, alrt): the initial or the
    abbreviation is then matched as one (``f``/first, ``alrt``/alert)."""
    n = len(token)
    for i in range(1, n - 1):  # an initial or an abbreviation in front: f+visitdt, m+init
        head, rest = token[:i], token[i:]
        if i > 1 and not _vocab_abbrev(head):
            continue
        tail = (rest,) if rest in _vocabulary() or rest in syn.TOKEN_SYNONYMS else _segment(rest)
        if tail:
            return (head, *tail)
    for i in range(n - 3, 1, -1):  # known words, then an abbreviation: med+alrt
        head, rest = token[:i], token[i:]
        lead = (head,) if head in _vocabulary() or head in syn.TOKEN_SYNONYMS else _segment(head)
        if lead and _vocab_abbrev(rest):
            return (*lead, rest)
    return None


@lru_cache(maxsize=20000)
def _vocab_abbrev(piece: str) -> bool:
    """An unknown 3-5 letter piece that abbreviates a known word (``alrt``/alert)."""
    return 3 <= len(piece) <= 5 and any(_is_abbreviation(piece, w) for w in _vocabulary())


def tokenize(name: str) -> tuple[str, ...]:
    """Lower-case word tokens of a name, glued words segmented (before synonym normalisation)."""
    out: list[str] = []
    vocab = _vocabulary()
    for tok in _raw_tokens(name):
        if tok in vocab or tok in syn.TOKEN_SYNONYMS or not tok.isalpha() or len(tok) < 4:
            out.append(tok)
            continue
        seg = _segment(tok) or (_segment_loose(tok) if len(tok) >= 5 else None)
        out.extend(seg if seg else (tok,))
    return tuple(out)


@lru_cache(maxsize=50000)
def normalize(name: str, glue: bool = True) -> tuple[str, ...]:
    """Tokens in normal form (synonyms applied, noise dropped): ``Pt_Surname`` -> patient, last, name."""
    out: list[str] = []
    toks = list(tokenize(name))
    i = 0
    while i < len(toks):
        pair = f"{toks[i]} {toks[i + 1]}" if i + 1 < len(toks) else ""
        if pair in syn.NUMBER_RANGES:  # aging buckets: Bal_31_60 is the 30-day bucket
            out.append(syn.NUMBER_RANGES[pair])
            i += 2
            continue
        glued = syn.TOKEN_SYNONYMS.get(pair.replace(" ", ""), "") if pair and glue else ""
        apart = {*syn.TOKEN_SYNONYMS.get(toks[i], toks[i]).split(),
                 *syn.TOKEN_SYNONYMS.get(toks[i + 1], toks[i + 1]).split()} if pair else set()
        if glued and not set(glued.split()) <= apart:  # two words of one known word: Post Code -> zip
            out.extend(glued.split())
            i += 2
            continue
        if i == len(toks) - 1 and toks[i] in ("on", "at") and i and toks[i - 1].endswith("ed"):
            out.append("date")  # Entered On, Created At: the date of the event
            i += 1
            continue
        out.extend(syn.TOKEN_SYNONYMS.get(toks[i], toks[i]).split())
        i += 1
    # a leading initial is a word's first letter (FVISITDT), not the flag suffix F (SMS_F)
    kept = [t for i, t in enumerate(out) if t not in syn.NOISE_TOKENS or (i == 0 and len(t) == 1 < len(out))]
    return tuple(kept or out)


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    """Words in normal form or with a known normal form: never read as someone's abbreviation."""
    return _vocabulary() | frozenset(w for n in syn.TOKEN_SYNONYMS.values() for w in n.split())


def _is_abbreviation(short: str, word: str) -> bool:
    """``sq``/sequence, ``dsc``/description, ``elg``/eligibility: an unknown short token whose letters
    appear in order in a longer word with the same first letter (how people shorten words)."""
    if not (2 <= len(short) <= 4 and len(word) >= max(4, len(short) + 1)) or short[0] != word[0] \
            or not short.isalpha():
        return False
    if short in _known():
        return False
    it = iter(word)
    return all(ch in it for ch in short)


@lru_cache(maxsize=200000)
def _tok_match(a: str, b: str) -> float:
    """1 for the same token, 0.6 for a prefix or an abbreviation (``surfc``/surface, ``dsc``/description)."""
    if a == b:
        return 1.0
    if min(len(a), len(b)) == 1 and max(len(a), len(b)) >= 3 and a[0] == b[0] and (a + b).isalpha():
        return 0.5  # an initial split off a glued word (FVISITDT: f/first)
    if min(len(a), len(b)) >= 3 and (a.startswith(b) or b.startswith(a)):
        return 0.6
    return 0.6 if _is_abbreviation(a, b) or _is_abbreviation(b, a) else 0.0


def name_similarity(a: tuple[str, ...], b: tuple[str, ...], fuzzy: bool = True) -> float:
    """Similarity of two normalised names in [0, 1].

    Soft token overlap (Dice): equal tokens count 1, a prefix or abbreviation 0.6, and (``fuzzy``) a
    near-identical token (a typo, ``adress``/address) up to 0.8. Fuzzy also compares the glued names as
    strings, which catches words glued in an unknown way; only near-identical strings count, so
    ``last name`` never drifts to ``first name`` on shared letters."""
    if not a or not b:
        return 0.0
    sa, sb = set(a), set(b)
    if sa == sb:
        return 1.0
    match = _fuzzy_tok_match if fuzzy else _tok_match
    hits = sum(max(match(x, y) for y in sb) for x in sa)
    hits_b = sum(max(match(x, y) for x in sa) for y in sb)
    dice = (hits + hits_b) / (len(sa) + len(sb))
    if not fuzzy or dice >= 0.8:
        return dice
    sm = difflib.SequenceMatcher(None, "".join(a), "".join(b), autojunk=False)
    if sm.real_quick_ratio() < 0.85 or sm.quick_ratio() < 0.85:
        return dice
    return max(dice, 0.85 * sm.ratio())


@lru_cache(maxsize=200000)
def _fuzzy_tok_match(a: str, b: str) -> float:
    m = _tok_match(a, b)
    if m >= 1 or min(len(a), len(b)) < 4:
        return m
    r = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    return max(m, 0.8 * r) if r >= 0.8 else m
