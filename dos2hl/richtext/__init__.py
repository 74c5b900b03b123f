"""Clinical note text (RTF, HTML or plain) -> readable plain text + inline images, and revision chains
-> one composed record per chain. No dependency on the rest of dos2hl."""

from __future__ import annotations

from .notes import Chain, Converted, InlineImage, compose, detect_format, revision_chains, to_text

__all__ = ["Chain", "Converted", "InlineImage", "compose", "detect_format", "revision_chains", "to_text"]
