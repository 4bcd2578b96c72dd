"""The package's version: the one place it is written (pyproject.toml reads
it, and the native library must report the same)."""

__version__ = "0.1.0"
