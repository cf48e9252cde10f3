"""The store's SQL (written once, in DuckDB's dialect) as PostgreSQL runs it.

The metadata modules of ``store`` keep one text per statement. On a PostgreSQL location each
statement is translated once (the result is cached by its text) with sqlglot, DuckDB to
PostgreSQL, plus the few rewrites PostgreSQL needs that sqlglot's generator does not make:

- placeholders: ``?`` becomes ``%s`` and ``$name`` becomes ``%(name)s`` (psycopg's styles), so a
  ``%`` inside a string literal is doubled;
- a subquery in FROM or JOIN gets an alias (PostgreSQL 15 requires one, DuckDB does not);
- ``BEGIN TRANSACTION`` / ``COMMIT`` / ``ROLLBACK`` are recognised (``statement_kind``) so the
  connection can open its transaction in the isolation it needs.

Types, casts, ``ORDER BY`` null placement (DuckDB sorts NULL last both ways; sqlglot writes
``NULLS LAST`` where PostgreSQL would differ) and function names are sqlglot's part. DuckDB-only
constructs with no PostgreSQL equivalent (``QUALIFY``, ``read_parquet``, list functions) are not
used in metadata statements: the log queries run on the log engine, never here.
"""
from __future__ import annotations

import re
from functools import lru_cache

_CONTROL = re.compile(r"^\s*(BEGIN|START|COMMIT|END|ROLLBACK|ABORT)\b(\s+TRANSACTION|\s+WORK)?\s*;?\s*$", re.I)


def statement_kind(sql: str) -> str | None:
    """``begin``, ``commit`` or ``rollback`` for a transaction control statement, else None."""
    m = _CONTROL.match(sql)
    if m is None:
        return None
    word = m.group(1).upper()
    return {"BEGIN": "begin", "START": "begin", "COMMIT": "commit", "END": "commit"}.get(word, "rollback")


@lru_cache(maxsize=4096)
def to_postgres(sql: str) -> str:
    """The PostgreSQL text of one DuckDB statement, with psycopg placeholders (cached by ``sql``).

    Raises ValueError when sqlglot cannot parse it (a statement the store should not send to PostgreSQL).
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except ParseError as exc:
        raise ValueError(f"Cannot translate this statement to PostgreSQL: {exc}") from exc
    if len(trees) != 1:
        raise ValueError(f"Expected one statement, got {len(trees)}: {sql[:200]}")
    tree = trees[0]
    n = 0
    for sub in list(tree.find_all(exp.Subquery)):
        if isinstance(sub.parent, (exp.From, exp.Join)) and not sub.alias:
            n += 1
            sub.set("alias", exp.TableAlias(this=exp.to_identifier(f"_sq{n}")))
    for lit in tree.find_all(exp.Literal):
        if lit.is_string and "%" in lit.this:
            lit.set("this", lit.this.replace("%", "%%"))
    return tree.sql(dialect="postgres")
