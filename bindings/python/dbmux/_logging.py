"""dbmux's log lines (Rust's `log` records) into Python `logging`, under the
`dbmux` logger (`dbmux.sqlite`, `dbmux.pool`, ...). Installed on import."""

import logging

from . import _ffi
from ._errors import InterfaceError

_lib = _ffi.lib

_logger = logging.getLogger("dbmux")
_LEVELS = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG, 5: logging.DEBUG}


@_ffi.LOG_FN
def _log_bridge(level, target, message, _user_data):
    try:
        _logger.getChild(target.decode().replace("::", ".").removeprefix("dbmux").lstrip(".") or "core") \
            .log(_LEVELS.get(level, logging.INFO), "%s", message.decode("utf-8", "replace"))
    except Exception:  # never let an exception cross into Rust
        pass


try:
    _lib.dbmux_set_log_callback(_log_bridge, None)
except InterfaceError:  # another logger owns Rust's log facade in this process
    pass
