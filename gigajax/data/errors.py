"""Errors raised by `gigajax.data`.

Both are `ValueError`s, so a caller validating a whole config can catch one type; the
not-found one is also a `FileNotFoundError`, so code that already handles missing files keeps
working. Messages always name the offending path, file, spec or argument.
"""

from __future__ import annotations


class DataError(ValueError):
    """A dataset spec, its files or its labels are not usable as given."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset path does not exist, or a TFDS dataset has not been prepared on disk."""
