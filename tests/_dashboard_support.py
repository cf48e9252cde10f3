"""Databases and helpers shared by the dashboard tests and the page benchmark."""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

#: The demo's "today" in tests: a fixed end so that figures do not depend on the day the tests run.
DEMO_END = datetime(2026, 3, 31, 12, 0)
ROOT = Path(__file__).resolve().parent.parent


def build_small_demo(path: Path, days: int = 40, daily: int = 300) -> Path:
    """Build the demo database at ``path`` (small and fast); falls back to one registered model."""
    try:
        from mlops_core.demo import build_demo
    except ImportError:
        build_demo = None
    if build_demo is not None:
        build_demo(path, days=days, daily=daily, seed=0, end=DEMO_END)
    else:
        from mlops_core import registry
        from conftest import make_training_frame

        registry.register_model("credit_default", "classification", "default", make_training_frame(), db=path)
    return path


def copy_db(src: Path, dst_dir: Path) -> Path:
    """Copy a database file and its artifacts folder into ``dst_dir``; return the new database path."""
    from mlops_core.config import artifacts_dir

    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / src.name
    shutil.copy2(src, dst)
    art = artifacts_dir(src)
    if art.exists():
        shutil.copytree(art, artifacts_dir(dst))
    return dst
