"""ctypes bindings to libdbmux: the library, the foreign functions in one
table, and one errcheck that turns status codes into exceptions."""

import ctypes
import glob
import os
from ctypes import (
    CFUNCTYPE, POINTER, Structure, c_bool, c_char_p, c_double, c_int, c_int32, c_int64,
    c_size_t, c_uint32, c_uint64, c_void_p,
)

from . import _errors
from ._version import __version__ as PACKAGE_VERSION

# dbmux_value_type
NULL, INT64, DOUBLE, TEXT, BLOB = 0, 1, 2, 3, 4


class Value(Structure):
    """struct dbmux_value: a tagged parameter value."""
    _fields_ = [
        ("type", c_int),
        ("int64", c_int64),
        ("real", c_double),
        ("ptr", c_void_p),
        ("len", c_size_t),
    ]


class _Opaque(Structure):
    pass


Manager_p = POINTER(_Opaque)
Conn_p = POINTER(_Opaque)
Result_p = POINTER(_Opaque)

LOG_FN = CFUNCTYPE(None, c_int32, c_char_p, c_char_p, c_void_p)
PROGRESS_FN = CFUNCTYPE(c_bool, c_uint64, c_uint64, c_void_p)
BACKUP_COMPACT, BACKUP_OVERWRITE = 1, 2


def _find_library():
    override = os.environ.get("DBMUX_LIBRARY")
    if override:
        return override
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "_libdbmux*.so")) + glob.glob(os.path.join(here, "libdbmux*.so"))
                   + glob.glob(os.path.join(here, "_libdbmux*.dylib")) + glob.glob(os.path.join(here, "_libdbmux*.pyd")))
    if not found:
        raise ImportError(
            "dbmux: the native library is missing from the package; reinstall with "
            "'pip install ./bindings/python', or point DBMUX_LIBRARY at a built libdbmux.so")
    return found[0]


def _load():
    path = _find_library()
    try:
        return ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(f"dbmux: cannot load the native library {path}: {e}") from e


lib = _load()

# The package and the library must come from the same release: check before
# declaring anything else, so that a mismatched library fails clearly.
lib.dbmux_version.restype = c_char_p
lib.dbmux_version.argtypes = []
NATIVE_VERSION = lib.dbmux_version().decode("utf-8", "replace")
if not NATIVE_VERSION.startswith(f"dbmux {PACKAGE_VERSION} "):
    raise ImportError(
        f"dbmux: the native library is {NATIVE_VERSION!r} but this package is {PACKAGE_VERSION}; "
        "rebuild it ('pip install ./bindings/python') or point DBMUX_LIBRARY at a matching libdbmux")


def _errcheck(status, func, args):
    """Turns a dbmux_status into the matching PEP 249 exception."""
    if status != 0:
        ptr = lib.dbmux_last_error_message()
        msg = None
        if ptr:
            try:
                msg = ctypes.cast(ptr, c_char_p).value.decode("utf-8", "replace")
            finally:
                lib.dbmux_string_free(ptr)
        raise _errors.from_status(status, msg or f"{func.__name__} failed with status {status}")
    return status


S = c_int  # enum dbmux_status

# name: (restype, argtypes, checked)
_TABLE = {
    "dbmux_version": (c_char_p, [], False),
    "dbmux_sqlite_version": (c_char_p, [], False),
    "dbmux_status_name": (c_char_p, [c_int], False),
    "dbmux_last_error_message": (c_void_p, [], False),
    "dbmux_string_free": (None, [c_void_p], False),
    "dbmux_manager_open": (S, [c_char_p, POINTER(Manager_p)], True),
    "dbmux_manager_close": (None, [Manager_p], False),
    "dbmux_global": (S, [POINTER(Manager_p)], True),
    "dbmux_global_shutdown": (None, [], False),
    "dbmux_health_json": (S, [Manager_p, POINTER(c_void_p)], True),
    "dbmux_debug_info_json": (S, [Manager_p, POINTER(c_void_p)], True),
    "dbmux_conn_get": (S, [Manager_p, POINTER(Conn_p)], True),
    "dbmux_conn_get_read": (S, [Manager_p, c_char_p, POINTER(Conn_p)], True),
    "dbmux_conn_write_token": (S, [Conn_p, POINTER(c_void_p)], True),
    "dbmux_conn_release": (None, [Conn_p], False),
    "dbmux_begin": (S, [Conn_p], True),
    "dbmux_commit": (S, [Conn_p], True),
    "dbmux_rollback": (S, [Conn_p], True),
    "dbmux_execute": (S, [Conn_p, c_char_p, POINTER(Value), c_size_t, POINTER(c_uint64)], True),
    "dbmux_query": (S, [Conn_p, c_char_p, POINTER(Value), c_size_t, POINTER(Result_p)], True),
    "dbmux_last_insert_id": (S, [Conn_p, POINTER(c_int64)], True),
    "dbmux_result_column_count": (S, [Result_p, POINTER(c_size_t)], True),
    "dbmux_result_column_name": (S, [Result_p, c_size_t, POINTER(c_char_p)], True),
    "dbmux_result_column_decltype": (S, [Result_p, c_size_t, POINTER(c_char_p)], True),
    "dbmux_result_next": (S, [Result_p, POINTER(c_bool)], True),
    "dbmux_result_value_type": (S, [Result_p, c_size_t, POINTER(c_int)], True),
    "dbmux_result_int64": (S, [Result_p, c_size_t, POINTER(c_int64)], True),
    "dbmux_result_double": (S, [Result_p, c_size_t, POINTER(c_double)], True),
    "dbmux_result_text": (S, [Result_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)], True),
    "dbmux_result_blob": (S, [Result_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)], True),
    "dbmux_result_rows_affected": (S, [Result_p, POINTER(c_uint64)], True),
    "dbmux_result_free": (None, [Result_p], False),
    "dbmux_result_pymarshal": (S, [Result_p, POINTER(c_void_p), POINTER(c_size_t)], True),
    "dbmux_bytes_free": (None, [c_void_p, c_size_t], False),
    "dbmux_query_pymarshal": (S, [Conn_p, c_char_p, POINTER(Value), c_size_t, POINTER(c_void_p), POINTER(c_size_t)], True),
    "dbmux_set_log_callback": (S, [LOG_FN, c_void_p], True),
    "dbmux_backup": (S, [Manager_p, c_char_p, c_uint32, PROGRESS_FN, c_void_p, POINTER(c_void_p)], True),
    "dbmux_restore": (S, [Manager_p, c_char_p], True),
    "dbmux_migrate_dir": (S, [Manager_p, c_char_p, POINTER(c_void_p)], True),
    "dbmux_migration_status": (S, [Manager_p, c_char_p, POINTER(c_void_p)], True),
}

for _name, (_res, _args, _checked) in _TABLE.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args
    if _checked:
        _f.errcheck = _errcheck


# The status names, from the library: the one list of codes lives in Rust.
for _n in range(0, 100):
    _status_name = lib.dbmux_status_name(_n)
    if _status_name is not None and _n != 0:
        _errors.NAMES[_n] = _status_name.decode("ascii")


def take_string(ptr):
    """Decodes and frees a caller-owned string returned by dbmux."""
    try:
        return ctypes.cast(ptr, c_char_p).value.decode("utf-8")
    finally:
        lib.dbmux_string_free(ptr)
