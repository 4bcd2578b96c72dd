"""PEP 249 type objects and constructors, and the one table of declared
column types: which DB-API kind each is, and how its values read back."""

import datetime
import decimal
import re
import time


def _to_bool(v):
    return bool(v) if isinstance(v, int) else v


def _to_date(v):
    return datetime.date.fromisoformat(v) if isinstance(v, str) else v


def _to_datetime(v):
    return datetime.datetime.fromisoformat(v.replace(" ", "T")) if isinstance(v, str) else v


def _to_time(v):
    return datetime.time.fromisoformat(v) if isinstance(v, str) else v


_DURATION = re.compile(
    r"P(?:(?P<y>-?\d+)Y)?(?:(?P<mo>-?\d+)M)?(?:(?P<d>-?\d+)D)?"
    r"(?:T(?:(?P<h>-?\d+)H)?(?:(?P<mi>-?\d+)M)?(?:(?P<s>-?\d+(?:\.\d+)?)S)?)?$")


def _to_timedelta(v):
    """An ISO 8601 duration (how dbmux reads PostgreSQL's `interval`) as a
    `timedelta`; a month counts 30 days and a year 365, as in psycopg2."""
    if not isinstance(v, str):
        return v
    m = _DURATION.match(v)
    if m is None:
        raise ValueError(v)
    n = {k: float(x) if k == "s" else int(x) for k, x in m.groupdict().items() if x}
    return datetime.timedelta(
        days=n.get("y", 0) * 365 + n.get("mo", 0) * 30 + n.get("d", 0),
        hours=n.get("h", 0), minutes=n.get("mi", 0), seconds=n.get("s", 0))


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
    (lambda t: t == "INTERVAL", "DATETIME", _to_timedelta),
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


def _parse_array(text, element):
    """PostgreSQL's text form of an array (`{1,2,NULL}`, `{{a,"b c"}}`) as
    nested lists, each element through `element` (NULL is None)."""
    pos = 0

    def parse():
        nonlocal pos
        if text[pos] != "{":
            raise ValueError(text)
        pos += 1
        out = []
        if text[pos] == "}":
            pos += 1
            return out
        while True:
            c = text[pos]
            if c == "{":
                out.append(parse())
            elif c == '"':
                pos += 1
                buf = []
                while text[pos] != '"':
                    if text[pos] == "\\":
                        pos += 1
                    buf.append(text[pos])
                    pos += 1
                pos += 1
                out.append(element("".join(buf)))
            else:
                end = pos
                while text[end] not in ",}":
                    end += 1
                raw = text[pos:end]
                out.append(None if raw.upper() == "NULL" else element(raw))
                pos = end
            if text[pos] == ",":
                pos += 1
                continue
            if text[pos] == "}":
                pos += 1
                return out
            raise ValueError(text)

    return parse()


_ARRAY_ELEMENTS = {
    "INT2": int, "INT4": int, "INT8": int, "OID": int,
    "FLOAT4": float, "FLOAT8": float,
    "BOOL": lambda v: v == "t",
}


def _array_converter(member):
    """The converter of a PostgreSQL array of `member` (its `_int4`-style
    name without the underscore)."""
    elem = _ARRAY_ELEMENTS.get(member.upper()) or converter(member) or (lambda v: v)

    def convert(v):
        return _parse_array(v, elem) if isinstance(v, str) else v
    return convert


def converter(decl):
    """A function converting values of a column declared `decl` (None passes
    through, and a value that does not parse stays as it came), or None when
    its values need no conversion."""
    if decl is None:
        return None
    if decl.startswith("_") and len(decl) > 1:
        convert = _array_converter(decl[1:])  # a PostgreSQL array type
    else:
        convert = declared(decl)[1]
    if convert is None:
        return None

    def safe(v):
        try:
            return convert(v)
        except (ValueError, IndexError):
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


# PostgreSQL's built-in type OIDs (the type codes of its columns) by kind;
# other OIDs (text, varchar, json, uuid, enums, ...) are STRING.
_OID_KINDS = {
    16: "NUMBER", 20: "NUMBER", 21: "NUMBER", 23: "NUMBER", 700: "NUMBER", 701: "NUMBER",
    790: "NUMBER", 1700: "NUMBER",
    26: "ROWID",
    17: "BINARY",
    1082: "DATETIME", 1083: "DATETIME", 1114: "DATETIME", 1184: "DATETIME", 1186: "DATETIME",
    1266: "DATETIME",
}


def kind_of(code):
    """The DB-API kind of a type code: a declared type name (SQLite) or a
    PostgreSQL type OID."""
    if isinstance(code, int) and not isinstance(code, bool):
        return _OID_KINDS.get(code, "STRING")
    return declared(code)[0]


class DBAPITypeObject:
    """Compares equal to every type code of its kind: SQLite's declared
    column types, PostgreSQL's type OIDs."""

    def __init__(self, name):
        self.name = name

    def __eq__(self, other):
        if isinstance(other, DBAPITypeObject):
            return self is other
        if not isinstance(other, (str, int)) or isinstance(other, bool):
            return NotImplemented
        return kind_of(other) == self.name

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
