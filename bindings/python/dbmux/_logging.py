"""dbmux's log lines (Rust's `log` records) into Python `logging`, under the
`dbmux` logger (`dbmux.sqlite`, `dbmux.pool`, ...). Installed on import."""

import logging

from . import _dbmux

_logger = logging.getLogger("dbmux")


def _sink(level, target, message):
    name = target.replace("::", ".").removeprefix("dbmux").lstrip(".") or "core"
    _logger.getChild(name).log(level, "%s", message)


# False when another logger owns Rust's log facade in this process
_dbmux.install_log_bridge(_sink)
