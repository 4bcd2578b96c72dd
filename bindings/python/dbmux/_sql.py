"""What the Python layer reads from a statement's text: its first word."""

import functools

NO_IMPLICIT_TX = ("SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN", "PRAGMA", "BEGIN", "START",
                  "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET", "ANALYZE", "VACUUM")


@functools.lru_cache(maxsize=512)
def first_word(sql):
    s = sql.lstrip()
    while s.startswith("--") or s.startswith("/*"):
        if s.startswith("--"):
            s = s.split("\n", 1)[1].lstrip() if "\n" in s else ""
        else:
            s = s.split("*/", 1)[1].lstrip() if "*/" in s else ""
    word = ""
    for ch in s:
        if not ch.isalpha():
            break
        word += ch
    return word.upper()
