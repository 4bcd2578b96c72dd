"""The PEP 249 cursor: compiled (`dbmux._dbmux.Cursor`). `execute` runs
the statement with the GIL released and keeps the result as tuples; the
fetches are slices of it."""

from ._dbmux import Cursor

__all__ = ["Cursor"]
