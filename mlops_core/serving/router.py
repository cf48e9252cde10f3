"""Following the registry: which versions serve a model now, switched without a restart or a failed request.

``Router.refresh()`` reads the production version and the open deployment config on one short
read-only visit of the metadata database (``store.deployments.serving_state``; it never holds the
database while requests are answered). When they changed, it loads the versions it does not hold yet
(``registry.load_version``: sha256 and skops allow-list checked) on the router's own thread, builds a
new ``scorer.Live`` and only then puts it in force with one reference assignment. A batch already
being scored keeps the ``Live`` it started with, so no request fails or mixes versions during a
switch; the next batch is scored by the new versions. ``start()`` repeats the refresh every
``poll_s`` seconds (default 1 s), so a ``promote``, ``rollback`` or deployment change made anywhere
(CLI, dashboard, automation) serves new requests within about a second plus the load time.

A version that fails to load (artifact changed or missing) is reported (``errors``, ``last_error``)
and the previous picture keeps serving; the router tries again on the following polls.
While a canary runs, the router also runs its guard (``deployments.check_canary``) every
``guard_every_s`` seconds.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from mlops_core.access import AUTOMATION
from mlops_core.entities import ModelInfo
from mlops_core.errors import MlopsError, NotFoundError
from mlops_core.lifecycle import deployments, registry
from mlops_core.serving.scorer import Live, LoadedVersion
from mlops_core.store import Store, utcnow
from mlops_core.store import deployments as dstore
from mlops_core.store import models as mstore

log = logging.getLogger("mlops.serving")

#: Seconds between two reads of the registry.
POLL_S = 1.0
#: Seconds between two runs of a canary's guard.
GUARD_EVERY_S = 60.0


class Router:
    """What serves one model now (``live``), following the registry (see the module docstring)."""

    def __init__(self, store: Store, info: ModelInfo, *, poll_s: float = POLL_S, guard_every_s: float = GUARD_EVERY_S,
                 on_switch: Callable[[Live], None] | None = None):
        self.store, self.info = store, info
        self.poll_s, self.guard_every_s = poll_s, guard_every_s
        self.on_switch = on_switch
        self._live: Live | None = None
        self._seen: tuple | None = None
        self._loaded: dict[int, LoadedVersion] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_guard = 0.0
        self.errors = 0
        self.switches = 0
        self.last_error: str | None = None
        self.last_poll: datetime | None = None

    @property
    def live(self) -> Live:
        """The picture in force; raises NotFoundError before the first successful refresh."""
        live = self._live
        if live is None:
            raise NotFoundError(f"Model {self.info.name!r} has no version loaded yet: {self.last_error or 'starting'}.")
        return live

    @property
    def current(self) -> Live | None:
        """The picture in force, or None before the first successful refresh."""
        return self._live

    def _load(self, version: int) -> LoadedVersion:
        held = self._loaded.get(version)
        if held is not None:
            return held
        with self.store.connect() as con:
            v = mstore.get_version(con, self.info.name, version)
        loaded = LoadedVersion.of(self.info, v, registry.load_version(self.store, v))
        self._loaded[version] = loaded
        return loaded

    def refresh(self) -> bool:
        """Read the registry once and switch when it changed; return whether a switch happened.

        Raises MlopsError when the model has no production version or a needed version fails to load
        (the previous picture stays in force).
        """
        with self.store.connect() as con:
            state = dstore.serving_state(con, self.info.name)
        self.last_poll = utcnow()
        config = deployments.effective(state.config or deployments.champion_only(self.info.name), state.production)
        key = (state.production, config)
        if key == self._seen and self._live is not None:
            return False
        if state.production is None:
            raise NotFoundError(f"Model {self.info.name!r} has no production version to serve.", model=self.info.name)
        champion = self._load(state.production)
        challenger = self._load(config.challenger) if config.challenger is not None else None
        previous = self._live
        live = Live(self.info, config, champion, challenger, (previous.generation + 1) if previous else 1, utcnow())
        self._live = live  # the switch: one reference assignment; batches in flight keep their own Live
        self._seen = key
        keep = {champion.number} | ({challenger.number} if challenger else set())
        self._loaded = {v: lv for v, lv in self._loaded.items() if v in keep}
        if previous is not None:
            self.switches += 1
        log.info("serving %s: %s", self.info.name, deployments.describe(config, state.production, utcnow()))
        if self.on_switch is not None:
            self.on_switch(live)
        return True

    def _guard(self) -> None:
        live = self._live
        if live is None or live.config.mode != "canary" or time.monotonic() - self._last_guard < self.guard_every_s:
            return
        self._last_guard = time.monotonic()
        outcome = deployments.check_canary(self.store, self.info, actor=AUTOMATION)
        if outcome.stopped:
            log.warning("%s", outcome.message)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
                self._guard()
                self.last_error = None
            except MlopsError as exc:
                self.errors += 1
                self.last_error = str(exc)
                log.error("following the registry of %s: %s", self.info.name, exc)
            except Exception as exc:  # a poll must never end the thread that keeps the service current
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("following the registry of %s", self.info.name)
            self._stop.wait(self.poll_s)

    def start(self) -> None:
        """Refresh now (raising when nothing can be served), then keep refreshing on a background thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._run, name=f"router-{self.info.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
