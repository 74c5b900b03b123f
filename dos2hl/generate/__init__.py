"""Synthetic Dent-O-Soft exports with exact truth (``dos2hl generate``).

Spec: ../shared/dentosoft/GENERATOR.md and EXPORT_FORMAT.md; output contract: docs/architecture.md.

Examples:
    >>> from dos2hl.generate import GenerateParams, generate
    >>> summary = generate(Path("out/solo"), GenerateParams(seed=42, tier="solo"))  # doctest: +SKIP
"""

from __future__ import annotations

from .params import GENERATOR_VERSION, GenerateParams
from .run import generate

__all__ = ["GENERATOR_VERSION", "GenerateParams", "generate"]
