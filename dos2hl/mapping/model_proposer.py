"""The optional model-backed proposer: ``dos2hl map propose --model URL``.

The offline matcher proposes first (it stays the default and the fallback); then an OpenAI-compatible
chat endpoint (a hosted model under the practice's BAA, or a local one) is asked the same question with
file names, column names, masked value shapes, the matcher's proposals and the canonical schema (never
a value: ``model_prompt``), and its answers are merged (``merge``). Requests are bounded
(``model_client``), batched under ``max_prompt_chars``, and cached by the sha256 of URL, model name and
prompt, so a second run on the same export sends nothing. Any failure leaves the affected columns with
the matcher's proposal and a ``model unavailable: <reason>`` line, and is counted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from ..errors import ConfigError
from ..storage import durable_replace, make_private_dirs
from .merge import merge
from .model import Entry, Mapping
from .model_client import Endpoint, ModelUnavailable, chat_json
from .model_prompt import Answer, ColumnAnswer, batches, file_blocks, messages, parse_answer
from .shapes import ColumnShape, export_shapes

__all__ = ["DEFAULT_CACHE", "DEFAULT_KEY_ENV", "ModelOptions", "ModelStats", "candidates",
           "propose_with_model", "refine"]

log = logging.getLogger(__name__)

DEFAULT_KEY_ENV = "DOS2HL_MODEL_API_KEY"
DEFAULT_CACHE = Path("~/.cache/dos2hl/model")
#: the largest prompt of one request (characters; the schema alone is ~7,500): more files, more requests
MAX_PROMPT_CHARS = 48_000
#: the least room for file text a prompt must leave (one file's block is cut to fit it)
MIN_FILE_CHARS = 1_000
#: at most this many requests per run (a bound on cost and time; the rest fall back to the matcher)
MAX_REQUESTS = 40


@dataclass(frozen=True)
class ModelOptions:
    """Which endpoint, which model, where the key and the cache are, and the bounds."""

    url: str
    model: str = "gpt-4o-mini"
    key_env: str = DEFAULT_KEY_ENV
    cache_dir: Path | None = DEFAULT_CACHE  # None: no cache
    timeout: float = 60.0
    retries: int = 2
    max_prompt_chars: int = MAX_PROMPT_CHARS
    max_requests: int = MAX_REQUESTS

    def __post_init__(self) -> None:
        u = urlsplit(self.url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConfigError("--model needs an http(s):// base URL, e.g. https://api.openai.com/v1")
        if u.scheme == "http" and u.hostname not in ("127.0.0.1", "localhost", "::1"):
            log.warning("the model endpoint is plain http on another host: the prompt (names and shapes) "
                        "and any API key travel unencrypted")

    def endpoint(self) -> Endpoint:
        raw = os.environ.get(self.key_env, "")
        return Endpoint(url=self.url, model=self.model, key=SecretStr(raw) if raw else None,
                        timeout=self.timeout, retries=self.retries)


@dataclass
class ModelStats:
    """What the model step did: requests sent, answers read from the cache, columns merged."""

    requests: int = 0  # HTTP requests sent (retries included)
    prompts: int = 0  # prompts the export needed (one per batch of files)
    cache_hits: int = 0
    failed_prompts: int = 0
    fallbacks: int = 0  # columns left to the matcher alone (no usable answer)
    agreed: int = 0
    disagreed: int = 0
    model_only: int = 0
    key: bool = False  # whether a key was found in the environment variable (never the key)
    reasons: dict[str, int] = field(default_factory=dict)  # failure reason -> prompts

    def as_dict(self) -> dict[str, object]:
        return dict(vars(self))

    def describe(self) -> str:
        """One line for the command's output: counts and failure reasons only."""
        why = "; ".join(f"{r} x{n}" for r, n in sorted(self.reasons.items()))
        return (f"model: {self.requests} requests, {self.cache_hits} cache hits, {self.prompts} prompts "
                f"({self.failed_prompts} failed{': ' + why if why else ''}); columns: {self.agreed} agreed, "
                f"{self.disagreed} disagreed, {self.model_only} model only, {self.fallbacks} fell back "
                f"to the matcher" + ("" if self.key else "; no API key was set"))


class _Counting(httpx.BaseTransport):
    """Counts every request that leaves (retries too), for the command's summary."""

    def __init__(self, inner: httpx.BaseTransport, stats: ModelStats) -> None:
        self._inner, self._stats = inner, stats

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._stats.requests += 1
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _cache_key(opts: ModelOptions, msgs: list[dict[str, str]]) -> str:
    blob = json.dumps({"url": opts.url.rstrip("/"), "model": opts.model, "messages": msgs}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cache_read(opts: ModelOptions, key: str) -> str | None:
    if opts.cache_dir is None:
        return None
    p = opts.cache_dir.expanduser() / f"{key}.json"
    try:
        return p.read_text(encoding="utf-8")
    except OSError:
        return None


def _cache_write(opts: ModelOptions, key: str, text: str) -> None:
    if opts.cache_dir is None:
        return
    d = opts.cache_dir.expanduser()
    try:  # 0600 files in 0700 folders, like everything dos2hl writes (the answer names columns)
        make_private_dirs(d)
        tmp = d / f"{key}.json.tmp"
        tmp.write_text(text, encoding="utf-8")
        durable_replace(tmp, d / f"{key}.json")
    except OSError as exc:  # a cache that cannot be written costs a request next time, nothing more
        log.warning("model cache not written: %s", type(exc).__name__)


def _ask(opts: ModelOptions, ep: Endpoint, http: httpx.Client, msgs: list[dict[str, str]],
         asked: dict[str, str], stems: tuple[str, ...], stats: ModelStats) -> Answer:
    key = _cache_key(opts, msgs)
    cached = _cache_read(opts, key)
    if cached is not None:
        try:
            ans = parse_answer(cached, asked, stems)
            stats.cache_hits += 1
            return ans
        except ValueError:
            pass  # a damaged cache file: ask again
    if stats.prompts - stats.cache_hits > opts.max_requests:
        raise ModelUnavailable("request budget spent")
    text = chat_json(ep, msgs, http=http)
    try:
        ans = parse_answer(text, asked, stems)
    except ValueError as exc:
        raise ModelUnavailable(str(exc)) from None
    _cache_write(opts, key, text)
    return ans


def _with_unlisted(mapping: Mapping, shapes: dict[str, ColumnShape]) -> Mapping:
    """The columns of files the matcher gave no table (the map lists none of them), as ``skip`` entries,
    so the model is asked about them too."""
    listed = {e.source for e in mapping.fields}
    extra = [Entry(source=src, target="skip", type="TEXT", confidence=0.0,
                   reasons=["the file matches no table of the export format: not migrated unless you name "
                            "its table under files:"])
             for src in shapes if src not in listed and src.rsplit(".", 1)[0] not in mapping.files]
    return mapping.model_copy(update={"fields": [*mapping.fields, *extra]}) if extra else mapping


def candidates(source: str | Path) -> dict[str, tuple[tuple[str, float], ...]]:
    """The matcher's runners-up per column (``FILE.COLUMN`` -> ((table.column, score), ...)), for the
    prompt's uncertain columns: ``propose`` keeps only the winner in the map."""
    from .match import match_export

    return {f"{Path(fm.file).stem}.{cm.source}": tuple((f"{fm.table}.{c}", s) for c, s in cm.alternatives)
            for fm in match_export(source) if fm.table for cm in fm.columns if cm.alternatives}


def refine(mapping: Mapping, source: str | Path, opts: ModelOptions, *,
           alternatives: dict[str, tuple[tuple[str, float], ...]] | None = None,
           transport: httpx.BaseTransport | None = None) -> tuple[Mapping, ModelStats]:
    """Ask the model about every column of ``mapping`` (proposed from ``source``) and merge its answers.
    ``alternatives``: the matcher's runners-up (``candidates``), shown for columns below 0.8."""
    stats = ModelStats()
    ep = opts.endpoint()
    stats.key = ep.key is not None
    shapes = export_shapes(source)
    mapping = _with_unlisted(mapping, shapes)
    budget = opts.max_prompt_chars - sum(len(m["content"]) for m in messages([]))
    if budget < MIN_FILE_CHARS:
        raise ConfigError(f"the model's prompt limit ({opts.max_prompt_chars} characters) leaves no room for "
                          f"the files: the schema alone takes {opts.max_prompt_chars - budget}")
    answers: dict[str, ColumnAnswer | None] = {}
    files: dict[str, str | None] = {}
    failed: dict[str, str] = {}
    inner = transport or httpx.HTTPTransport()
    with httpx.Client(transport=_Counting(inner, stats), follow_redirects=False) as http:
        for batch in batches(file_blocks(mapping, shapes, budget, alternatives or {}), budget):
            stats.prompts += 1
            asked = {shown: src for b in batch for shown, src in b.asked.items()}
            stems = tuple(dict.fromkeys(b.stem for b in batch))
            try:
                ans = _ask(opts, ep, http, messages(batch), asked, stems, stats)
            except Exception as exc:  # noqa: BLE001 - offline is the fallback on any error
                # a ModelUnavailable's reason is a fixed phrase; anything else is named by its type only
                # (a message could quote the response)
                why = exc.reason if isinstance(exc, ModelUnavailable) else f"unexpected {type(exc).__name__}"
                stats.failed_prompts += 1
                stats.reasons[why] = stats.reasons.get(why, 0) + 1
                failed.update({s: f"model unavailable: {why}" for s in asked.values()})
                continue
            answers.update(ans.columns)
            files.update(ans.files)
            failed.update(ans.rejected)
    merged, n = merge(mapping, answers, files, failed)
    stats.fallbacks, stats.agreed, stats.disagreed = n.fallbacks, n.agreed, n.disagreed
    stats.model_only = n.model_only
    log.info("model proposer: %d prompts, %d requests, %d cache hits, %d fallbacks", stats.prompts,
             stats.requests, stats.cache_hits, stats.fallbacks)
    return merged, stats


def propose_with_model(source: str | Path, opts: ModelOptions, *, profile: str = "reference",
                       transport: httpx.BaseTransport | None = None) -> tuple[Mapping, ModelStats]:
    """The offline proposal of ``source``, refined by the model (``propose`` then ``refine``, with the
    matcher's runners-up: the export's samples are read twice, a second or two, against a model's
    seconds)."""
    from .propose import propose

    return refine(propose(source, profile=profile), source, opts, alternatives=candidates(source),
                  transport=transport)
