"""PEP 249 type objects and constructors, and the one table of declared
column types: which DB-API kind each is, and how its values read back."""

import datetime
import decimal
import time


def _to_bool(v):
    return bool(v) if isinstance(v, int) else v


def _to_date(v):
    return datetime.date.fromisoformat(v) if isinstance(v, str) else v


def _to_datetime(v):
    return datetime.datetime.fromisoformat(v.replace(" ", "T")) if isinstance(v, str) else v


def _to_time(v):
    return datetime.time.fromisoformat(v) if isinstance(v, str) else v


def _to_decimal(v):
    if isinstance(v, str):
        return decimal.Decimal(v)
    if isinstance(v, float):
        return decimal.Decimal(repr(v))
    if isinstance(v, int):
        return decimal.Decimal(v)
    return v


_STRING_NAMES = ("NAME", "JSON", "JSONB", "UUID", "XML", "CITEXT")
_NUMBER_NAMES = ("FLOAT4", "FLOAT8", "MONEY")

# (matches the upper-cased declared type, DB-API kind, converter of values read
# back or None): the first row that matches wins. SQLite's affinity rules,
# extended with PostgreSQL's type names.
DECLARED_TYPES = (
    (lambda t: t == "OID" or "ROWID" in t, "ROWID", None),
    (lambda t: "BOOL" in t, "NUMBER", _to_bool),
    (lambda t: t == "DATE", "DATETIME", _to_date),
    (lambda t: "TIMESTAMP" in t or t == "DATETIME", "DATETIME", _to_datetime),
    (lambda t: t in ("TIME", "TIMETZ") or t.startswith("TIME "), "DATETIME", _to_time),
    (lambda t: "DATE" in t or "TIME" in t, "DATETIME", None),
    (lambda t: "BLOB" in t or "BYTEA" in t or "BINARY" in t, "BINARY", None),
    (lambda t: "CHAR" in t or "CLOB" in t or "TEXT" in t or t in _STRING_NAMES, "STRING", None),
    (lambda t: "NUMERIC" in t or "DECIMAL" in t, "NUMBER", _to_decimal),
    (lambda t: any(w in t for w in ("INT", "REAL", "FLOA", "DOUB", "NUM", "DEC")) or t in _NUMBER_NAMES,
     "NUMBER", None),
)


def declared(decl):
    """(kind, converter) of a declared type name; STRING and no conversion
    for names the table does not know."""
    t = decl.upper()
    for matches, kind, convert in DECLARED_TYPES:
        if matches(t):
            return kind, convert
    return "STRING", None


def converter(decl):
    """A function converting values of a column declared `decl` (None passes
    through, and a value that does not parse stays as it came), or None when
    its values need no conversion."""
    if decl is None:
        return None
    convert = declared(decl)[1]
    if convert is None:
        return None

    def safe(v):
        try:
            return convert(v)
        except ValueError:
            return v
    return safe


def expr_type(first_row, i):
    """The type code of a column without a declared type: from its first value."""
    if first_row is None or first_row[i] is None:
        return None
    v = first_row[i]
    if isinstance(v, (int, float)):
        return "NUMERIC"
    if isinstance(v, bytes):
        return "BLOB"
    return "TEXT"


class DBAPITypeObject:
    """Compares equal to every type code (declared column type) of its kind."""

    def __init__(self, name):
        self.name = name

    def __eq__(self, other):
        if isinstance(other, DBAPITypeObject):
            return self is other
        if not isinstance(other, str):
            return NotImplemented
        return declared(other)[0] == self.name

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"dbmux.{self.name}"


STRING = DBAPITypeObject("STRING")
BINARY = DBAPITypeObject("BINARY")
NUMBER = DBAPITypeObject("NUMBER")
DATETIME = DBAPITypeObject("DATETIME")
ROWID = DBAPITypeObject("ROWID")

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime


def DateFromTicks(ticks):
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks):
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks):
    return Timestamp(*time.localtime(ticks)[:6])


def Binary(data):
    return bytes(data)
