"""Command-line start-up and monitoring commands on a big demo database: wall time and peak RSS per process.

    .venv/bin/python benchmarks/bench_cli.py [--db PATH | --daily 111200] [--rounds 5] [--model credit_default]

Without ``--db`` it uses ``benchmarks/data/cli_demo_<daily>.duckdb``, built if missing with
``python -m mlops_core demo --daily <daily> --end 2026-01-01T00:00:00`` (at the default 111200 a day:
about 9.9M predictions of ``credit_default`` and 4.9M of ``delivery_time``; several minutes on 2 cores).

Each round runs, as fresh processes (``python -m mlops_core ...`` and the ``mlops`` console script),
``--help``, ``status``, ``performance --window day`` and ``drift`` (which stores its results, as the
command does by default), in a rotating order, next to the floor every command pays: an interpreter
that imports DuckDB and nothing else. Wall time is measured around each process, peak RSS is the
process's own (``wait4``). Printed per command: median and worst of the rounds, the targets
(``--help`` and ``status`` under 0.4 s; ``performance`` and ``drift`` under 1.5 s and 500 MB) and
the CPU seconds (user + system), which a busy machine inflates less than the wall time.
``performance`` and ``drift`` run twice per round: as they run on a database in use (the per-window
results of earlier runs kept, ``store.window_cache``: what the targets are judged on) and, labelled
"cache cleared first", after deleting those results (the first run over a log, or after an upgrade).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
#: (name, arguments after the program, wall target in s, peak RSS target in MB)
COMMANDS = [
    ("--help", ["--help"], 0.4, None),
    ("status", ["status", "--model", "{model}", "--db", "{db}"], 0.4, None),
    ("performance", ["performance", "--model", "{model}", "--window", "day", "--db", "{db}"], 1.5, 500),
    ("drift", ["drift", "--model", "{model}", "--db", "{db}"], 1.5, 500),
]


def ensure_demo(db: Path, daily: int) -> None:
    if db.exists():
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    print(f"building the demo database at {db} (--daily {daily}) ...", flush=True)
    subprocess.run([sys.executable, "-m", "mlops_core", "demo", "--db", str(db), "--daily", str(daily),
                    "--end", "2026-01-01T00:00:00"], check=True, cwd=ROOT)


def cache_folder(db: Path) -> Path:
    """The per-window results of the demo's log (``store.window_cache``): ``<db>_logs/cache``."""
    return db.with_name(db.stem + "_logs") / "cache"


def measure(cmd: list[str], root: Path = ROOT) -> tuple[float, float, float, int]:
    """(wall s, peak RSS MB, CPU s, exit code) of one process running ``cmd`` with the package at ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        print(f"  {' '.join(cmd[1:])} exited {proc.returncode}: {proc.stderr.read().decode()[-400:]}")
    proc.stderr.close()
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, help="database to measure (default: a demo built with --daily)")
    ap.add_argument("--daily", type=int, default=111_200, help="demo size when --db is not given")
    ap.add_argument("--model", default="credit_default")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--compare", type=Path, metavar="ROOT",
                    help="also run each command with the package of another checkout (e.g. an export of the last "
                         "release: git archive REV | tar -x -C ROOT), in the same rounds, labelled 'before'")
    args = ap.parse_args()
    args.db = args.db or DATA / f"cli_demo_{args.daily}.duckdb"
    ensure_demo(args.db, args.daily)
    script = shutil.which("mlops", path=str(Path(sys.executable).parent))
    runs: list[tuple[str, list[str], float, float | None, Path]] = [
        ("floor: python -c 'import duckdb'", [sys.executable, "-c", "import duckdb"], 0.0, None, ROOT)]
    for name, argv, wall, rss in COMMANDS:
        filled = [a.format(model=args.model, db=args.db) for a in argv]
        runs.append((f"python -m mlops_core {name}", [sys.executable, "-m", "mlops_core", *filled], wall, rss, ROOT))
        if name in ("performance", "drift"):  # the first series after the per-window results were deleted
            runs.append((f"  {name}, cache cleared first", [sys.executable, "-m", "mlops_core", *filled], 0.0, None,
                         ROOT))
        if script and name in ("--help", "status"):
            runs.append((f"mlops {name}", [script, *filled], wall, rss, ROOT))
        if args.compare:
            runs.append((f"  before: {name}", [sys.executable, "-m", "mlops_core", *filled], 0.0, None,
                         args.compare.resolve()))
    results: dict[str, list[tuple[float, float, float, int]]] = {r[0]: [] for r in runs}
    for i in range(args.rounds):
        shift = i % len(runs)
        for label, cmd, _, _, root in runs[shift:] + runs[:shift]:
            if "cache cleared" in label:  # this command's series only: the other command's stay as in use
                for f in cache_folder(args.db).glob(f"model=*/{label.split(',')[0].strip()}-*.json"):
                    f.unlink()
            results[label].append(measure(cmd, root))
        print(f"  round {i + 1} done", flush=True)
    print(f"\n{args.db}, {args.rounds} rounds (median / worst)")
    print(f"{'command':<38}{'wall s':>15}{'peak MB':>15}{'CPU s':>13}   target")
    failed = False
    for label, _, wall_target, rss_target, _ in runs:
        r = results[label]
        walls, rss, cpu = [x[0] for x in r], [x[1] for x in r], [x[2] for x in r]
        ok = all(x[3] == 0 for x in r)
        target = ""
        if wall_target:
            met = max(walls) < wall_target and (rss_target is None or max(rss) < rss_target)
            target = f"< {wall_target:g} s" + (f", < {rss_target} MB" if rss_target else "") + \
                (": met" if met else ": NOT met")
            failed |= not met
        failed |= not ok
        print(f"{label:<38}{statistics.median(walls):>7.2f} /{max(walls):>6.2f}{statistics.median(rss):>7.0f} /"
              f"{max(rss):>6.0f}{statistics.median(cpu):>6.2f} /{max(cpu):>5.2f}   {target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
