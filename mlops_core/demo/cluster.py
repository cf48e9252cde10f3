"""The demo on a PostgreSQL metadata store and a Parquet log: ``make demo-cluster``.

``python -m mlops_core.demo.cluster FOLDER [--host H] [--port P] [--days N --daily N] [--check]`` starts a local PostgreSQL
cluster in ``FOLDER/pg`` (as root: in the temporary folder, where the ``postgres`` user can reach it; Debian's ``initdb``/``pg_ctl``, 127.0.0.1 only; see ``local_postgres``), builds the demo
into it on the first start (metadata in PostgreSQL, artifacts in ``FOLDER/artifacts``, the prediction log as
Parquet files in ``FOLDER/logs``), makes sure an admin account exists, then serves the dashboard from it until
Ctrl-C, and stops the cluster. The folder is kept: the next start reuses the cluster and the demo.

``--check`` builds (if needed), prints the models' status from the PostgreSQL store and exits without serving:
what the tests run.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mlops_core.demo.local_postgres import ClusterUnavailable, LocalCluster

#: Where the dashboard script is (the checkout or installed tree that holds this package).
ROOT = Path(__file__).resolve().parents[2]


def _mlops(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "mlops_core", *args], env=env, check=True, cwd=ROOT)  # noqa: S603


def cluster_folder(folder: Path) -> Path:
    """Where the cluster's files go: ``FOLDER/pg``; as root the server runs as the ``postgres`` user, who may not
    reach into root's folders, so the cluster goes to a folder of its own in the temporary folder instead."""
    if os.geteuid() != 0:
        return folder / "pg"
    return Path(tempfile.gettempdir()) / f"mlops-demo-pg-{hashlib.sha256(str(folder).encode()).hexdigest()[:12]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8501")
    parser.add_argument("--days", default="90")
    parser.add_argument("--daily", default="2000")
    parser.add_argument("--check", action="store_true", help="build, print the status and exit (no dashboard)")
    args = parser.parse_args(argv)
    folder = args.folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        cluster = LocalCluster(cluster_folder(folder)).start()
    except ClusterUnavailable as exc:
        print(f"Cannot start PostgreSQL: {exc}", file=sys.stderr)
        return 2
    try:
        exists = cluster.has_database("mlops")
        url = cluster.url("mlops") if exists else cluster.create_database("mlops")
        built = folder / "demo-built"
        if not exists:
            built.unlink(missing_ok=True)  # a new cluster (the old one was removed): build the demo again
        env = {**os.environ, "MLOPS_METADATA_URL": url, "MLOPS_ARTIFACTS_DIR": str(folder / "artifacts"),
               "MLOPS_LOG_DIR": str(folder / "logs")}
        env.pop("MLOPS_DB", None)
        if not built.exists():
            print("Building the demo on PostgreSQL (first start only) ...", flush=True)
            _mlops(env, "demo", "--days", args.days, "--daily", args.daily, "--force")
            built.touch()
        _mlops(env, "users", "bootstrap")
        if args.check:
            _mlops(env, "status", "--model", "credit_default")
            return 0
        print(f"Dashboard on http://{args.host}:{args.port} (metadata: PostgreSQL on 127.0.0.1:{cluster.port}; "
              f"log: {folder / 'logs'}). Ctrl-C stops both.", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"),  # noqa: S603
                            "--server.address", args.host, "--server.port", args.port, "--server.headless", "true"],
                           env=env, check=False, cwd=ROOT)
        except KeyboardInterrupt:
            pass
        return 0
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
