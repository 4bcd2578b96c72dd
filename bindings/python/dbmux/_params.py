"""Python values to the C library's `dbmux_value` array."""

import ctypes
import datetime
import decimal
from ctypes import c_void_p

from . import _errors, _ffi
from ._errors import DataError, ProgrammingError


def to_values(params):
    """Converts Python values to a dbmux_value array (and keeps the buffers alive)."""
    if not params and params is not None and isinstance(params, (tuple, list)):
        return None, 0, ()
    if params is None:
        return None, 0, ()
    if isinstance(params, (str, bytes)) or not hasattr(params, "__len__"):
        raise ProgrammingError("parameters must be a sequence (tuple or list) of values, in ? order",
                               _errors.INVALID_PARAMETER)
    n = len(params)
    arr = (_ffi.Value * n)()
    keep = []
    for i, v in enumerate(params):
        slot = arr[i]
        if v is None:
            slot.type = _ffi.NULL
        elif isinstance(v, bool):
            slot.type, slot.int64 = _ffi.INT64, int(v)
        elif isinstance(v, int):
            if not -(1 << 63) <= v < (1 << 63):
                raise DataError(f"parameter {i + 1}: integer {v} does not fit in 64 bits", _errors.TYPE_MISMATCH)
            slot.type, slot.int64 = _ffi.INT64, v
        elif isinstance(v, float):
            slot.type, slot.real = _ffi.DOUBLE, v
        else:
            if isinstance(v, str):
                kind, data = _ffi.TEXT, v.encode("utf-8")
            elif isinstance(v, (bytes, bytearray, memoryview)):
                kind, data = _ffi.BLOB, bytes(v)
            elif isinstance(v, datetime.datetime):
                kind, data = _ffi.TEXT, v.isoformat(sep=" ").encode()
            elif isinstance(v, (datetime.date, datetime.time)):
                kind, data = _ffi.TEXT, v.isoformat().encode()
            elif isinstance(v, decimal.Decimal):
                kind, data = _ffi.TEXT, str(v).encode()
            else:
                raise ProgrammingError(
                    f"parameter {i + 1}: values of type {type(v).__name__} are not supported; use None, "
                    "int, float, str, bytes, bool, date, time, datetime or Decimal", _errors.INVALID_PARAMETER)
            buf = ctypes.create_string_buffer(data, len(data))
            keep.append(buf)
            slot.type, slot.ptr, slot.len = kind, ctypes.cast(buf, c_void_p), len(data)
    return arr, n, keep
