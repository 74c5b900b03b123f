"""The ``dos2hl`` command: one Typer app (``main``) and its command groups, each a module here
(``migrate``: the pipeline's commands; ``ops``: plan, workflows, phi, delta; ``mapping``,
``governor``, ``sandbox``). Every command calls the library; nothing here holds logic."""

from __future__ import annotations

from .main import _setup_logging, app

__all__ = ["_setup_logging", "app"]
