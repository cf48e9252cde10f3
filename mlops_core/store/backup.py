"""Backups of a whole control room (metadata, artifacts, logs) and their restore, verified by sha256.

A backup is a folder::

    manifest.json       format, source, time, schema version, counts, and every file with its size and sha256
    metadata.duckdb     the metadata database as it was at one moment
    artifacts/<model>/  every artifact a version refers to
    logs/...            every Parquet file the log listing names (predictions, labels, feature files, online
                        snapshots)

**Consistent without stopping writers for long.** The metadata file is copied during one read
visit (``Store.connect()``): writers wait for the room to empty, so no write is half-way and
the copy is one committed state. Everything that state refers to is immutable once written
(artifacts are named by version and checked by their sha256; a log file never changes after
it is listed; compaction writes new files and only retires the old ones), so the files are
copied after the visit, without holding anyone up; a file that disappeared in between (a
retired file deleted after its grace period) makes the backup start again, up to three times.
Artifacts are checked against the sha256 in the registry while they are copied. The backup is
written into ``<out>.partial`` and renamed to ``<out>`` at the end, so a folder named ``<out>``
is always a complete backup.

**Restore** checks every file of the manifest against its size and sha256 before touching
anything, stages the copy beside the target, and then, while holding the database's write turn
(no process is inside), moves the current database and folders aside (``<name>.before-restore-
<time>``; nothing is deleted) and moves the staged copy in. A restore onto an existing database
needs ``force``.

**Metadata on PostgreSQL** is not backed up here: both functions refuse it with a message that
names the tools that do it properly. A consistent copy of a server database is ``pg_dump``'s job
(one snapshot of every table while writers go on; ``pg_restore`` to bring it back), and a
server's operators already run it (or continuous archiving) for everything else they host;
a second, home-made format would be one more to trust. The artifacts and log folders
(``MLOPS_ARTIFACTS_DIR``, ``MLOPS_LOG_DIR``) are plain files that are only added to (see above),
copied after the dump.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from mlops_core.clock import utcnow
from mlops_core.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidInputError,
    MlopsError,
    NotFoundError,
    storage_error,
)
from mlops_core.store.connection import Store, forget_database
from mlops_core.store.migrations import current_version

FORMAT = "mlops-backup/1"
MANIFEST = "manifest.json"
METADATA = "metadata.duckdb"
ATTEMPTS = 3
_CHUNK = 1 << 20


@dataclass
class BackupFile:
    """One file of a backup: where it goes (relative to the backup folder), its size and sha256."""

    path: str
    bytes: int
    sha256: str


@dataclass
class BackupInfo:
    """What a backup holds (the manifest, without the file list's details)."""

    folder: Path
    source: str
    created_at: datetime
    schema_version: int
    models: int
    versions: int
    log_files: int
    log_rows: int
    artifacts: int
    bytes: int
    files: list[BackupFile] = field(default_factory=list)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _copy(src: Path, dst: Path) -> BackupFile:
    """Copy ``src`` to ``dst`` (creating folders), hashing as it goes."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        for chunk in iter(lambda: fin.read(_CHUNK), b""):
            h.update(chunk)
            fout.write(chunk)
            size += len(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return BackupFile(str(dst), size, h.hexdigest())


@dataclass
class _Snapshot:
    log_files: list[tuple[str, int]]  # (path relative to the log folder, rows)
    artifacts: list[tuple[str, str]]  # (path relative to the artifacts folder, sha256)
    models: int
    versions: int
    schema_version: int


def _snapshot(store: Store, staged_db: Path) -> _Snapshot:
    """Copy the metadata file during one read visit and list what it refers to."""
    with store.connect() as con:
        wal = Path(f"{store.path}.wal")
        shutil.copy2(store.path, staged_db)
        if wal.exists():
            shutil.copy2(wal, Path(f"{staged_db}.wal"))
        logs = [(r[0], int(r[1])) for r in con.execute(
            "SELECT path, rows FROM log_files WHERE retired_at IS NULL ORDER BY path").fetchall()]
        # the feature store's offline files and online snapshots live under the log folder too (no rows counted)
        logs += [(r[0], 0) for r in con.execute(
            "SELECT path FROM feature_files WHERE retired_at IS NULL UNION ALL "
            "SELECT path FROM online_snapshots WHERE retired_at IS NULL ORDER BY 1").fetchall()]
        arts = [(r[0], r[1]) for r in con.execute(
            "SELECT artifact_path, artifact_sha256 FROM model_versions WHERE artifact_path IS NOT NULL "
            "ORDER BY model, version").fetchall()]
        models = int(con.execute("SELECT count(*) FROM models").fetchone()[0])
        schema = current_version(con)
    return _Snapshot(logs, arts, models, len(arts), schema)


def _tidy_copy(staged_db: Path) -> None:
    """Fold the write-ahead log into the copy and drop listings of retired log files (their files are not
    copied)."""
    con = duckdb.connect(str(staged_db))
    try:
        for table in ("log_files", "feature_files", "online_snapshots"):
            con.execute(f"DELETE FROM {table} WHERE retired_at IS NOT NULL")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _refuse_postgres(store: Store, what: str) -> None:
    if store.url is not None:
        raise InvalidInputError(
            f"The metadata of this control room is in PostgreSQL ({store.display}); `mlops {what}` handles DuckDB "
            "files only. Back the metadata up with PostgreSQL's own tools: `pg_dump --format=custom --file "
            f"mlops.dump '<url>'` (restore with `pg_restore --clean --dbname '<url>' mlops.dump`), then copy the "
            f"artifacts folder ({store.artifacts}) and the log folder ({store.logs}) after the dump.",
            location=store.display)


def backup(store: Store, out: str | os.PathLike) -> BackupInfo:
    """Write a verified backup of ``store`` into the new folder ``out``; return what it holds.

    Raises NotFoundError (no database), AlreadyExistsError (``out`` exists and is not empty),
    IntegrityError (an artifact does not match its registry sha256), DiskFullError / ReadOnlyError,
    InvalidInputError (the metadata is in PostgreSQL: use pg_dump).
    """
    _refuse_postgres(store, "backup")
    if not store.exists():
        raise NotFoundError(f"No database at {store.path}; nothing to back up.", path=str(store.path))
    out = Path(out).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AlreadyExistsError(f"{out} exists and is not empty; give a new folder for the backup.", path=str(out))
    partial = out.with_name(out.name + ".partial")
    for attempt in range(1, ATTEMPTS + 1):
        shutil.rmtree(partial, ignore_errors=True)
        try:
            partial.mkdir(parents=True)
            info = _write(store, partial, out)
        except FileNotFoundError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            if attempt == ATTEMPTS:
                raise MlopsError(f"Files kept changing during the backup ({exc.filename} disappeared) in "
                                 f"{ATTEMPTS} attempts; run it again when compaction is not running.") from exc
            continue
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise storage_error(exc, f"writing the backup {out}") from exc
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        if out.exists():
            out.rmdir()
        partial.rename(out)
        info.folder = out
        return info
    raise AssertionError("unreachable")


def _write(store: Store, folder: Path, final: Path) -> BackupInfo:
    staged_db = folder / METADATA
    snap = _snapshot(store, staged_db)
    _tidy_copy(staged_db)
    files = [BackupFile(METADATA, staged_db.stat().st_size, _sha256(staged_db))]
    for rel, expected in snap.artifacts:
        f = _copy(store.artifacts / rel, folder / "artifacts" / rel)
        if expected and f.sha256 != expected:
            raise IntegrityError(f"The artifact {store.artifacts / rel} does not match the sha256 in the registry "
                                 f"({f.sha256[:12]} != {expected[:12]}); the backup was not written. Run "
                                 "`mlops versions` to see which version it belongs to.", path=str(rel))
        files.append(BackupFile(f"artifacts/{rel}", f.bytes, f.sha256))
    for rel, _rows in snap.log_files:
        f = _copy(store.logs / rel, folder / "logs" / rel)
        files.append(BackupFile(f"logs/{rel}", f.bytes, f.sha256))
    info = BackupInfo(final, str(store.path), utcnow(), snap.schema_version, snap.models, snap.versions,
                      len(snap.log_files), sum(r for _, r in snap.log_files), len(snap.artifacts),
                      sum(f.bytes for f in files), files)
    manifest = {"format": FORMAT, "source": info.source, "created_at": info.created_at.isoformat(),
                "schema_version": info.schema_version, "models": info.models, "versions": info.versions,
                "log_files": info.log_files, "log_rows": info.log_rows, "artifacts": info.artifacts,
                "bytes": info.bytes, "files": [{"path": f.path, "bytes": f.bytes, "sha256": f.sha256} for f in files]}
    with open(folder / MANIFEST, "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    return info


def read_manifest(folder: str | os.PathLike) -> BackupInfo:
    """The manifest of the backup in ``folder``; InvalidInputError when it is not a backup."""
    folder = Path(folder).expanduser().resolve()
    path = folder / MANIFEST
    if not path.is_file():
        raise InvalidInputError(f"{folder} is not a backup (no {MANIFEST}); give a folder written by `mlops backup`.",
                                path=str(folder))
    try:
        m = json.loads(path.read_text())
        if m.get("format") != FORMAT:
            raise InvalidInputError(f"{path} has format {m.get('format')!r}; this version reads {FORMAT!r}.")
        files = [BackupFile(str(f["path"]), int(f["bytes"]), str(f["sha256"])) for f in m["files"]]
        return BackupInfo(folder, str(m["source"]), datetime.fromisoformat(m["created_at"]), int(m["schema_version"]),
                          int(m["models"]), int(m["versions"]), int(m["log_files"]), int(m["log_rows"]),
                          int(m["artifacts"]), int(m["bytes"]), files)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"{path} is damaged ({type(exc).__name__}: {exc}); restore from another backup.",
                                path=str(path)) from exc


def verify(folder: str | os.PathLike) -> BackupInfo:
    """Check every file of the backup against the manifest's size and sha256; IntegrityError names the first
    file that differs or is missing, and how many do."""
    info = read_manifest(folder)
    bad = []
    for f in info.files:
        p = _inside(info.folder, f.path)
        if not p.is_file():
            bad.append(f"{f.path} is missing")
        elif p.stat().st_size != f.bytes or _sha256(p) != f.sha256:
            bad.append(f"{f.path} does not match its sha256")
    if bad:
        raise IntegrityError(f"The backup {info.folder} is damaged: {bad[0]}" +
                             (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "") + "; nothing was restored.",
                             path=str(info.folder))
    return info


def _inside(folder: Path, rel: str) -> Path:
    """``folder / rel``, refusing a path that leaves the folder (a manifest is input too)."""
    p = (folder / rel).resolve()
    if folder not in p.parents:
        raise InvalidInputError(f"The manifest names {rel!r}, which is outside the backup folder; refusing it.")
    return p


def restore(store: Store, folder: str | os.PathLike, *, force: bool = False) -> tuple[BackupInfo, Path | None]:
    """Replace ``store`` by the backup in ``folder``; return the backup and where the replaced data was moved
    (None when there was none).

    Raises InvalidInputError (not a backup), IntegrityError (a file differs from the manifest: nothing changed),
    AlreadyExistsError (a database exists and ``force`` is False), DatabaseBusyError, DiskFullError,
    InvalidInputError (the metadata is in PostgreSQL: use pg_restore).
    """
    _refuse_postgres(store, "restore")
    info = verify(folder)
    if store.exists() and not force:
        raise AlreadyExistsError(f"A database exists at {store.path}; restoring replaces it (it is kept aside as "
                                 "<name>.before-restore-<time>). Pass --force to go ahead.", path=str(store.path))
    target = store.path
    stage = target.with_name(f".{target.name}.restoring")
    shutil.rmtree(stage, ignore_errors=True)
    staged = _Staged(stage / target.name, stage / "artifacts", stage / "logs")
    try:
        stage.mkdir(parents=True)
        for f in info.files:
            src = _inside(info.folder, f.path)
            if f.path == METADATA:
                dst = staged.db
            elif f.path.startswith("artifacts/"):
                dst = staged.artifacts / f.path[len("artifacts/"):]
            elif f.path.startswith("logs/"):
                dst = staged.logs / f.path[len("logs/"):]
            else:
                continue
            copied = _copy(src, dst)
            if copied.sha256 != f.sha256:
                raise IntegrityError(f"{src} changed while it was being restored; nothing was restored.")
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise storage_error(exc, f"staging the restore beside {target}") from exc
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    try:
        aside = _swap(store, staged)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        forget_database(target)
    return info, aside


@dataclass
class _Staged:
    db: Path
    artifacts: Path
    logs: Path


def _swap(store: Store, staged: _Staged) -> Path | None:
    """Move the current database and folders aside and the staged ones in, during a write visit (nobody else is
    inside; the visit's own attachment is released before the new file is opened)."""
    target = store.path
    aside = None
    holder = None
    if store.exists():
        aside = target.with_name(f"{target.name}.before-restore-{utcnow():%Y%m%dT%H%M%S}")
        holder = store.connect(write=True)
        holder.__enter__()
    try:
        if aside is not None:
            aside.mkdir()
            for current in (target, Path(f"{target}.wal"), store.artifacts, store.logs):
                if current.exists():
                    shutil.move(str(current), str(aside / current.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        for src, dst in ((staged.db, target), (staged.artifacts, store.artifacts), (staged.logs, store.logs)):
            if src.exists():
                shutil.move(str(src), str(dst))
    finally:
        if holder is not None:
            holder.__exit__(None, None, None)
    return aside
