"""The dos2hl error tree. Messages name the file/row/field and the fix; never PHI or tokens.

* Dos2hlError
  + ConfigError (also ValueError)      bad settings, profile, mapping or command-line input
  + SourceError                         an export cannot be read as a whole
    - MissingFileError                  a required file (e.g. PATIENT) is absent
    - UnreadableFileError               a file is binary, empty or undecodable
  + StorageError                        staging storage (local or s3://) failed
"""

from __future__ import annotations

__all__ = [
    "Dos2hlError", "ConfigError", "SourceError", "MissingFileError", "UnreadableFileError",
    "StorageError",
]


class Dos2hlError(Exception):
    """Root of every error dos2hl raises on purpose."""

    exit_code = 1


class ConfigError(Dos2hlError, ValueError):
    """Settings, a profile, a mapping or a command-line value is wrong."""

    exit_code = 2


class SourceError(Dos2hlError):
    """An export (or one of its files) cannot be read."""

    exit_code = 2


class MissingFileError(SourceError):
    """A required export file is missing: raised before anything is written."""


class UnreadableFileError(SourceError):
    """A file is binary, empty or in no encoding we can read."""


class StorageError(Dos2hlError):
    """Reading or writing the staging store failed."""
