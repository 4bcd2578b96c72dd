"""The base class of every object that owns a native dbmux handle (the
wasmtime-py pattern): `close()` frees the handle once, `with` closes it, and
garbage collection closes what was forgotten."""

import threading


class NativeHandle:
    """Owns `_h`, a handle from libdbmux. Subclasses say how to free it in
    `_free(h)`; a borrowed handle (`borrowed=True`) is never freed."""

    def __init__(self, handle, borrowed=False):
        self._lock = threading.RLock()
        self._h = handle
        self._borrowed = borrowed

    def _free(self, handle):  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _handle(self):
        """The live handle, or the subclass's `_closed_error()`."""
        if not self._h:
            raise self._closed_error()
        return self._h

    def _closed_error(self):  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    @property
    def closed(self):
        return not self._h

    def close(self):
        """Frees the native handle; later calls do nothing."""
        with self._lock:
            h, self._h = self._h, None
            if h and not self._borrowed:
                self._free(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass
