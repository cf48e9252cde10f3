"""The prediction logs and labels: Parquet files in a Hive layout, listed in the metadata table ``log_files``.

Layout under the log folder (``Store.logs``; ``$MLOPS_LOG_DIR`` to put it elsewhere)::

    predictions/model=<name>/date=<YYYY-MM-DD>/<batch id>_<n>.parquet   rows by prediction day
    labels/model=<name>/date=<YYYY-MM-DD>/<batch id>_<n>.parquet        rows by arrival day
    shadow/model=<name>/date=<YYYY-MM-DD>/<batch id>_<n>.parquet        shadow predictions by prediction day

Columns are typed as the model's schema says (microsecond timestamps), so DuckDB, Spark or
any Parquet reader can scan a folder. A file is part of the log exactly when a row of
``log_files`` lists it: a batch's files are written first and listed in the same metadata
transaction that records the batch, so a reader (which reads the listing, then the files)
never sees half a batch, and a crash before that commit leaves only unlisted files, which
``remove_orphans`` deletes. Reading needs no lock on the database beyond the short visit
that reads the listing: the scans run on the log engine (``connection.engine``).

Compaction (``compact``) merges the many small files of a busy day into one, lists the new
file and retires the old ones in one transaction, and deletes retired files once no reader
can still be using them (``RETIRED_GRACE_S``).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from mlops_core.clock import utcnow
from mlops_core.config import timestamp_bounds
from mlops_core.entities import ModelInfo
from mlops_core.errors import DatabaseBusyError, storage_error
from mlops_core.store.models import quote_ident

#: ``shadow``: the predictions of a challenger scored in shadow mode (logged, never returned to the caller); same
#: columns as ``predictions``, kept apart so that every reading of the log sees only the answers that were served.
KINDS = ("predictions", "labels", "shadow")
#: Retired files (replaced by compaction) are deleted this long after, when no query can still read them.
RETIRED_GRACE_S = 600.0
#: Unlisted files older than this are remains of an interrupted write and are deleted.
ORPHAN_AGE_S = 3600.0


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def columns(info: ModelInfo, kind: str) -> list[tuple[str, str]]:
    """(column, SQL type) of a model's prediction log or label files, in file order."""
    pred = info.prediction_sql_type
    if kind == "labels":
        return [("request_id", "VARCHAR"), ("label", pred), ("label_ts", "TIMESTAMP"), ("batch_id", "VARCHAR")]
    return [("request_id", "VARCHAR"), ("version", "INTEGER"), ("variant", "VARCHAR"), ("ts", "TIMESTAMP"),
            *((f.name, f.sql_type) for f in info.features), *((k.name, k.sql_type) for k in info.entity_keys),
            ("prediction", pred), ("score", "DOUBLE"), ("batch_id", "VARCHAR")]


def relation(info: ModelInfo, kind: str, files: list[str] | tuple[str, ...]) -> str:
    """SQL for the rows of ``files`` (absolute paths) with the model's columns; an empty relation of the same
    columns when there are no files."""
    cols = columns(info, kind)
    if not files:
        return "(SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {quote_ident(c)}" for c, t in cols) + " WHERE FALSE)"
    listed = ", ".join(_literal(f) for f in files)
    if kind == "predictions" and info.entity_keys:
        # A model bound to the feature store after it logged predictions has older files without the entity key
        # columns: those rows read them as NULL.
        return f"read_parquet([{listed}], union_by_name = true)"
    return f"read_parquet([{listed}])"


@dataclass(frozen=True)
class ListedFile:
    """One listed file of a view with the time span that decides which windows it touches: predictions their own
    ``ts`` span, labels the span of the predictions they label (None: not known, so every window)."""

    path: str  # absolute
    rows: int
    first: datetime | None
    last: datetime | None
    arrived: datetime | None = None  # labels: the newest arrival time (label_ts) in the file

    def touches(self, start: datetime, end: datetime) -> bool:
        """Whether rows of this file can fall in (predictions) or join to (labels) the window [start, end)."""
        if self.first is None or self.last is None:
            return True
        return self.last >= start and self.first < end


@dataclass(frozen=True)
class LogView:
    """What one query reads of a model's log: the listed files and their SQL relations.

    ``as_of``: the log as it was at that moment (predictions logged before it, labels that had arrived by
    then), for judging a model at a past time without the labels that came later; None: all of it.
    ``root``, ``listed_predictions`` and ``listed_labels`` (set by ``view``): the log folder and the files with
    their spans, for ``restricted`` and ``fingerprint`` (per-window results, ``store.window_cache``).
    """

    info: ModelInfo
    prediction_files: tuple[str, ...]
    label_files: tuple[str, ...]
    as_of: datetime | None = None
    root: Path | None = None
    listed_predictions: tuple[ListedFile, ...] = ()
    listed_labels: tuple[ListedFile, ...] = ()

    def _until(self, rel: str, column: str, op: str) -> str:
        if self.as_of is None:
            return rel
        stamp = self.as_of.strftime("%Y-%m-%d %H:%M:%S.%f")  # a datetime, never text a user typed
        return f"(SELECT * FROM {rel} WHERE {column} {op} TIMESTAMP '{stamp}')"

    @property
    def predictions(self) -> str:
        return self._until(relation(self.info, "predictions", self.prediction_files), "ts", "<")

    @property
    def labels(self) -> str:
        return self._until(relation(self.info, "labels", self.label_files), "label_ts", "<=")

    def until(self, as_of: datetime | None) -> LogView:
        """This view as the log was at ``as_of`` (see the class docstring)."""
        return replace(self, as_of=as_of)

    @property
    def spans_known(self) -> bool:
        """Whether the view carries its files' spans (a view made by ``view``)."""
        return self.root is not None and len(self.listed_predictions) == len(self.prediction_files)

    def _touching(self, start: datetime, end: datetime) -> tuple[tuple[ListedFile, ...], tuple[ListedFile, ...]]:
        return (tuple(f for f in self.listed_predictions if f.touches(start, end)),
                tuple(f for f in self.listed_labels if f.touches(start, end)))

    def restricted(self, start: datetime, end: datetime) -> LogView:
        """This view over only the files that can hold or label predictions of [start, end): the same rows for any
        query of that window, fewer files to read. Needs ``spans_known``."""
        preds, labels = self._touching(start, end)
        return replace(self, prediction_files=tuple(f.path for f in preds), label_files=tuple(f.path for f in labels),
                       listed_predictions=preds, listed_labels=labels)

    def for_range(self, start: datetime | None, end: datetime | None) -> LogView:
        """``restricted(start, end)`` when both bounds are given and the spans are known, else this view: for a query
        that keeps only the predictions in [start, end) (it then reads fewer label files, same rows)."""
        if start is None or end is None or not self.spans_known:
            return self
        return self.restricted(start, end)

    def rows_touching(self, start: datetime, end: datetime) -> int:
        """Rows of the prediction files that touch [start, end) (an upper bound of the window's predictions)."""
        return sum(f.rows for f in self.listed_predictions if f.touches(start, end))

    def fingerprint(self, start: datetime, end: datetime) -> str:
        """A digest of the files (path and rows) that can change a result of the window [start, end), and of
        ``as_of`` when it cuts rows of those files: equal digests, equal rows. Needs ``spans_known``."""
        preds, labels = self._touching(start, end)
        digest = hashlib.blake2b(digest_size=12)
        for kind, files in (("p", preds), ("l", labels)):
            for f in sorted(files, key=lambda f: f.path):
                digest.update(f"{kind}\0{f.path}\0{f.rows}\n".encode())
        if self.as_of is not None and (any(f.last is None or f.last >= self.as_of for f in preds)
                                       or any(f.arrived is None or f.arrived > self.as_of for f in labels)):
            digest.update(f"as of {self.as_of.isoformat()}".encode())  # the moment cuts rows of these files
        return digest.hexdigest()


def view(con: duckdb.DuckDBPyConnection, root: Path, info: ModelInfo, start: datetime | None = None,
         end: datetime | None = None, *, kinds: tuple[str, ...] = ("predictions",)) -> LogView:
    """The files a query of [start, end) must read: predictions files whose rows may fall in the window,
    every label file (a label may arrive for any prediction). ``con``: a metadata visit.

    ``kinds``: which prediction rows the view's ``predictions`` holds: the served ones (default), the
    ``shadow`` ones, or both (an A/B comparison of a shadow challenger with the champion)."""
    marks = ", ".join("?" for _ in kinds)
    sql, params = (f"SELECT path, rows, min_ts, max_ts FROM log_files WHERE model = ? AND kind IN ({marks}) "
                   "AND retired_at IS NULL", [info.name, *kinds])
    if start is not None:
        sql += " AND max_ts >= ?"
        params.append(start)
    if end is not None:
        sql += " AND min_ts < ?"
        params.append(end)
    preds = tuple(ListedFile(str(root / r[0]), int(r[1]), r[2], r[3])
                  for r in con.execute(sql + " ORDER BY min_ts, path", params).fetchall())
    labels = tuple(ListedFile(str(root / r[0]), int(r[1]), r[2], r[3], r[4]) for r in con.execute(
        "SELECT path, rows, pred_min_ts, pred_max_ts, max_ts FROM log_files WHERE model = ? AND kind = 'labels' "
        "AND retired_at IS NULL ORDER BY path", [info.name]).fetchall())
    return LogView(info, tuple(f.path for f in preds), tuple(f.path for f in labels), None, root, preds, labels)


# --- facts from the listing (no file is read) ------------------------------------------------------


@dataclass
class LogFacts:
    """Size and time span of a model's log, from the listing.

    ``first_ts`` and ``last_ts`` span the predictions inside the accepted time range
    (``config.timestamp_bounds``), which is what default date ranges start from: a row stamped in
    year 9999 (accepted before the range was enforced, or under a wider setting) must not move
    every default window away from the real traffic. Such rows are counted in ``outside_rows``
    (their span in ``outside_first``/``outside_last``) so that readers can say so.
    """

    predictions: int
    labels: int
    first_ts: datetime | None
    last_ts: datetime | None
    files: int
    outside_rows: int = 0
    outside_first: datetime | None = None
    outside_last: datetime | None = None


def facts(con: duckdb.DuckDBPyConnection, model: str) -> LogFacts:
    lo, hi = timestamp_bounds(utcnow())
    # One pass over the model's listing (a reader holds its turn for this query: keep it cheap).
    preds, inside, outside = "kind = 'predictions'", "kind = 'predictions' AND NOT outside", "kind = 'predictions' AND outside"
    row = con.execute(
        f"SELECT coalesce(sum(rows) FILTER (WHERE {preds}), 0), coalesce(sum(rows) FILTER (WHERE kind = 'labels'), 0), "
        f"min(min_ts) FILTER (WHERE {inside}), max(max_ts) FILTER (WHERE {inside}), count(*), "
        f"coalesce(sum(rows) FILTER (WHERE {outside}), 0), min(min_ts) FILTER (WHERE {outside}), "
        f"max(max_ts) FILTER (WHERE {outside}) "
        "FROM (SELECT kind, rows, min_ts, max_ts, min_ts < ? OR max_ts > ? AS outside FROM log_files "
        "WHERE model = ? AND retired_at IS NULL)", [lo, hi, model]).fetchone()
    return LogFacts(int(row[0]), int(row[1]), row[2], row[3], int(row[4]), int(row[5]), row[6], row[7])


# --- writing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogFile:
    """One Parquet file of a batch, as ``log_files`` lists it."""

    path: str  # relative to the log folder
    model: str
    kind: str
    batch_id: str
    day: date
    rows: int
    min_ts: datetime | None
    max_ts: datetime | None
    bytes: int
    #: labels: the time span of the predictions the file labels (None: not known, e.g. files listed before the
    #: span was recorded); it decides which windows a label file can change (``LogView.restricted``).
    pred_min_ts: datetime | None = None
    pred_max_ts: datetime | None = None


def _folder(root: Path, model: str, kind: str) -> Path:
    return root / kind / f"model={model}"


@dataclass(frozen=True)
class WrittenFile:
    """One Parquet file that ``write_partitioned`` wrote: its path relative to the root, day, rows and time span."""

    path: str
    day: date
    rows: int
    min_ts: datetime | None
    max_ts: datetime | None
    bytes: int


def write_partitioned(con: duckdb.DuckDBPyConnection, root: Path, folder: Path, cols: list[tuple[str, str]], ts: str,
                      select_sql: str, params: dict | list | None = None, *, tag: str) -> list[WrittenFile]:
    """Write the rows of ``select_sql`` (``cols`` as (name, SQL type), in any order) into ``folder`` as Parquet
    files partitioned by the day of ``ts`` (``date=YYYY-MM-DD/<tag>_<n>.parquet``), zstd-compressed.

    ``con``: any DuckDB connection that can evaluate ``select_sql`` (the log engine). Returns the files with
    their paths relative to ``root``, row counts and time spans; an empty result writes nothing. Nothing lists
    the files: the caller does, in the transaction that records their batch.
    """
    exprs = ", ".join(f"CAST({quote_ident(c)} AS {t}) AS {quote_ident(c)}" for c, t in cols)
    folder.mkdir(parents=True, exist_ok=True)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _log_batch AS SELECT {exprs} FROM ({select_sql})", params or [])
    try:
        days = con.execute(f"SELECT CAST({ts} AS DATE) AS d, count(*), min({ts}), max({ts}) FROM _log_batch "
                           "GROUP BY 1 ORDER BY 1").fetchall()
        if not days:
            return []
        try:
            con.execute(f"COPY (SELECT *, strftime(CAST({ts} AS DATE), '%Y-%m-%d') AS date FROM _log_batch) "
                        f"TO {_literal(folder)} (FORMAT PARQUET, PARTITION_BY (date), OVERWRITE_OR_IGNORE, "
                        f"FILENAME_PATTERN {_literal(tag + '_{i}')}, COMPRESSION zstd)")
        except (duckdb.Error, OSError) as exc:  # e.g. a full disk: leave no partial file behind
            for f in folder.glob(f"date=*/{tag}_*.parquet"):
                f.unlink(missing_ok=True)
            raise storage_error(exc, f"writing {folder.relative_to(root)}") from exc
    finally:
        con.execute("DROP TABLE IF EXISTS _log_batch")
    out: list[WrittenFile] = []
    for day, rows, lo, hi in days:
        written = sorted((folder / f"date={day:%Y-%m-%d}").glob(f"{tag}_*.parquet"))
        if len(written) == 1:
            f = written[0]
            out.append(WrittenFile(str(f.relative_to(root)), day, int(rows), lo, hi, f.stat().st_size))
            continue
        for f in written:  # DuckDB split a big day into several files: count each file's rows
            n, flo, fhi = con.execute(f"SELECT count(*), min({ts}), max({ts}) FROM read_parquet({_literal(f)})"
                                      ).fetchone()
            out.append(WrittenFile(str(f.relative_to(root)), day, int(n), flo, fhi, f.stat().st_size))
    return out


def write(con: duckdb.DuckDBPyConnection, root: Path, info: ModelInfo, kind: str, select_sql: str,
          params: dict | list | None = None, *, batch_id: str, predictions: str | None = None) -> list[LogFile]:
    """Write the rows of ``select_sql`` (the kind's columns, in any order) as one Parquet file per day.

    ``con``: the log engine (or any DuckDB connection that can evaluate ``select_sql``). The files
    are not part of the log until ``register`` lists them. Returns them, with their row counts and
    time spans; an empty result writes nothing. ``predictions``: for labels, the relation of the model's
    prediction log (``LogView.predictions``): each label file then records the time span of the predictions it
    labels (one join of the new rows, a few columns of the log).
    """
    ts = "label_ts" if kind == "labels" else "ts"
    written = write_partitioned(con, root, _folder(root, info.name, kind), columns(info, kind), ts, select_sql,
                                params, tag=f"{batch_id}_{uuid.uuid4().hex[:6]}")
    spans: dict[str, tuple[datetime | None, datetime | None]] = {}
    if kind == "labels" and predictions is not None and written:
        paths = {str(root / w.path): w.path for w in written}
        listed = ", ".join(_literal(full) for full in paths)
        for name, unmatched, lo, hi in con.execute(
                f"SELECT b.filename, count(*) FILTER (WHERE p.ts IS NULL), min(p.ts), max(p.ts) "
                f"FROM read_parquet([{listed}], filename = true) b "
                f"LEFT JOIN (SELECT request_id, ts FROM {predictions}) p ON p.request_id = b.request_id "
                "GROUP BY 1").fetchall():
            if not unmatched:  # a label whose prediction is not listed (yet) could join to any window later
                spans[paths[name]] = (lo, hi)
    out = []
    for w in written:
        lo, hi = spans.get(w.path, (None, None))
        out.append(LogFile(w.path, info.name, kind, batch_id, w.day, w.rows, w.min_ts, w.max_ts, w.bytes, lo, hi))
    return out


def register(con: duckdb.DuckDBPyConnection, files: list[LogFile]) -> None:
    """List ``files`` in ``log_files`` (call inside the transaction that records their batch)."""
    now = utcnow()
    plain = [f for f in files if f.pred_min_ts is None]
    spanned = [f for f in files if f.pred_min_ts is not None]
    if plain:  # (the columns of the span exist from migration 058 on; migration 033 lists files without them)
        con.executemany(
            "INSERT INTO log_files (path, model, kind, batch_id, day, rows, min_ts, max_ts, bytes, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[f.path, f.model, f.kind, f.batch_id, f.day, f.rows, f.min_ts, f.max_ts, f.bytes, now] for f in plain])
    if spanned:
        con.executemany(
            "INSERT INTO log_files (path, model, kind, batch_id, day, rows, min_ts, max_ts, bytes, created_at, "
            "pred_min_ts, pred_max_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[f.path, f.model, f.kind, f.batch_id, f.day, f.rows, f.min_ts, f.max_ts, f.bytes, now, f.pred_min_ts,
              f.pred_max_ts] for f in spanned])


def discard(root: Path, files: list[LogFile] | list[WrittenFile]) -> None:
    """Delete written files that were not listed (their batch failed)."""
    for f in files:
        try:
            (root / f.path).unlink()
        except FileNotFoundError:
            pass


def remove_orphans(con: duckdb.DuckDBPyConnection, root: Path, model: str, *, older_than_s: float = ORPHAN_AGE_S,
                   now: float | None = None) -> list[str]:
    """Delete files of ``model`` that no row lists (remains of an interrupted write, older than ``older_than_s``)
    and retired files past their grace period; return the relative paths deleted. ``con``: a write visit."""
    now = time.time() if now is None else now
    listed = {r[0] for r in con.execute("SELECT path FROM log_files WHERE model = ?", [model]).fetchall()}
    removed = []
    for kind in KINDS:
        folder = _folder(root, model, kind)
        if not folder.is_dir():
            continue
        for f in folder.glob("date=*/*.parquet"):
            rel = str(f.relative_to(root))
            try:
                if rel not in listed and now - f.stat().st_mtime > older_than_s:
                    f.unlink()
                    removed.append(rel)
            except FileNotFoundError:
                pass
    cutoff = utcnow() - timedelta(seconds=RETIRED_GRACE_S)
    for (rel,) in con.execute("SELECT path FROM log_files WHERE model = ? AND retired_at < ?", [model, cutoff]
                              ).fetchall():
        try:
            (root / rel).unlink()
        except FileNotFoundError:
            pass
        con.execute("DELETE FROM log_files WHERE path = ?", [rel])
        removed.append(rel)
    return removed


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextmanager
def writer_lock(root: Path, model: str, timeout: float, *, what: str | None = None) -> Iterator[None]:
    """Hold the model's writer lock (one writer of its log at a time, across threads and processes): a batch's
    duplicate checks and its commit must not interleave with another batch's. ``model`` names the lock (a
    feature view's writers use ``view=<name>``); ``what`` names what is written in messages (default: the
    model's log). Raises DatabaseBusyError after ``timeout``."""
    folder = root / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model}.lock"
    what = what or f"the log of {model!r}"
    with _thread_locks_guard:
        in_process = _thread_locks.setdefault(str(path), threading.Lock())
    if not in_process.acquire(timeout=timeout):  # POSIX record locks are per process: threads take turns here
        raise DatabaseBusyError(f"Another thread is writing {what} (waited {timeout:.0f} s).", model=model)
    try:
        with _file_lock(path, model, timeout, what):
            yield
    finally:
        in_process.release()


@contextmanager
def _file_lock(path: Path, model: str, timeout: float, what: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
                if time.monotonic() >= deadline:
                    raise DatabaseBusyError(f"Another process is writing {what} (waited {timeout:.0f} s); "
                                            "try again when it has finished.", model=model) from exc
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)


# --- compaction -----------------------------------------------------------------------------------


def small_days(con: duckdb.DuckDBPyConnection, model: str, kind: str, min_files: int) -> list[date]:
    """Days of ``model``'s ``kind`` listed in at least ``min_files`` files (candidates for compaction)."""
    return [r[0] for r in con.execute(
        "SELECT day FROM log_files WHERE model = ? AND kind = ? AND retired_at IS NULL GROUP BY day "
        "HAVING count(*) >= ? ORDER BY day", [model, kind, min_files]).fetchall()]


def day_files(con: duckdb.DuckDBPyConnection, model: str, kind: str, day: date) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT path FROM log_files WHERE model = ? AND kind = ? AND day = ? AND retired_at IS NULL ORDER BY path",
        [model, kind, day]).fetchall()]


def retire(con: duckdb.DuckDBPyConnection, paths: list[str]) -> None:
    """Mark listed files retired (replaced by a compacted file); they are deleted after ``RETIRED_GRACE_S``."""
    now = utcnow()
    for p in paths:
        con.execute("UPDATE log_files SET retired_at = ? WHERE path = ?", [now, p])
