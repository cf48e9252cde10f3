"""The HTTP scoring service of one model: Starlette on uvicorn.

Endpoints::

    POST /v1/models/<model>/predict   one record (JSON object) or a list; answers prediction, score,
                                      version, arm and request_id per record (422: the field and why)
    GET  /v1/models/<model>           the schema of a record and what serves now
    GET  /healthz                     200 with what serves, 503 before a version is loaded
    GET  /metrics                     Prometheus text format (``serving.metrics``)

Answering a request: its records are checked (``requests``), then queued for the **scorer thread**,
which takes everything queued while it was busy and scores it as one batch (micro-batching: one
``predict_proba`` call has a fixed cost of a few milliseconds for a pipeline, whatever its rows, so
batches keep that cost once per batch instead of once per request under load, and add no wait when
idle). The batch is scored with the ``Live`` in force when it started (``router``), its rows are
written to the spool (``spool``), and only then are its requests answered. The metadata database is
never opened on this path: the router follows it from its own thread, the loader writes the log from
another.

A clean stop (SIGTERM, SIGINT) lets uvicorn finish the requests under way, then seals the spool and
has the loader load every segment, so every answered request is in the log when the process exits.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlops_core.entities import ModelInfo, jsonable
from mlops_core.lifecycle import deployments
from mlops_core.serving import loader as loadermod
from mlops_core.serving import requests as reqmod
from mlops_core.serving import scorer
from mlops_core.serving import spool as spoolmod
from mlops_core.serving.metrics import CONTENT_TYPE, ServiceMetrics
from mlops_core.serving.router import Router
from mlops_core.store import Store, connection, utcnow

log = logging.getLogger("mlops.serving")

#: Request ids remembered to refuse a reused one (a request is logged once).
RECENT_IDS = 200_000
MAX_BODY_BYTES = 4 << 20


@dataclass
class ServiceSettings:
    """How a service runs: registry polling, spool rotation and loading (see ``router``, ``spool``, ``loader``)."""

    poll_s: float = 1.0
    segment_rows: int = spoolmod.SEGMENT_ROWS
    segment_seconds: float = spoolmod.SEGMENT_SECONDS
    batch_rows: int = loadermod.BATCH_ROWS
    max_delay_s: float = loadermod.MAX_DELAY_S
    spool_dir: Path | None = None
    guard_every_s: float = 60.0
    max_batch: int = 512


def _one_thread() -> None:
    """Set up the scorer thread (both settings are per thread).

    OpenMP/BLAS pools of one thread: on a busy machine, spinning OpenMP workers cost a small batch ten
    times what they save (measured: 50 ms against 5 ms for one row of the demo's pipeline).
    scikit-learn's ``assume_finite`` and ``skip_parameter_validation``: the records were checked already
    (``requests`` refuses NaN and infinity), and the checks cost about a quarter of a one-row
    ``predict_proba`` of a pipeline.
    """
    import sklearn
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    sklearn.set_config(assume_finite=True, skip_parameter_validation=True)


class _Job:
    __slots__ = ("future", "records", "result")

    def __init__(self, records: reqmod.Records, future: asyncio.Future):
        self.records = records
        self.future = future
        self.result = None


class ScoringService:
    """One model's scoring service: router, scorer thread, spool and loader (see the module docstring)."""

    def __init__(self, store: Store, info: ModelInfo, *, actor: str, settings: ServiceSettings | None = None):
        self.store, self.info, self.actor = store, info, actor
        self.settings = settings or ServiceSettings()
        s = self.settings
        self.metrics = ServiceMetrics(info.name)
        self.router = Router(store, info, poll_s=s.poll_s, guard_every_s=s.guard_every_s, on_switch=self._switched)
        folder = s.spool_dir or spoolmod.spool_dir(store.path, info.name, artifacts=store.artifacts)
        self.spool = spoolmod.Spool(folder, info, segment_rows=s.segment_rows, segment_seconds=s.segment_seconds)
        self.loader = loadermod.Loader(store, info, folder, actor=actor, spool=self.spool, batch_rows=s.batch_rows,
                                       max_delay_s=s.max_delay_s)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"scorer-{info.name}",
                                            initializer=_one_thread)
        self._queue: list[_Job] = []
        self._busy = False
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._seen_errors = 0
        self._loaded_counted = (0, 0)
        self.started_at = None
        self.answered = 0
        self.stopped = False
        self.final_load: loadermod.Pass | None = None

    # --- life cycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Load what serves now (raises MlopsError when nothing can be served), then follow the registry and load
        the spool in the background. Segments left by an earlier process are loaded by the first passes."""
        connection.limit_threads(1)  # the loader's ingests leave the other core to the scorer and the event loop
        self.router.start()
        self.loader.start()
        self.started_at = utcnow()

    def stop(self) -> loadermod.Pass:
        """Stop following the registry, seal the spool and load it all (a clean stop); return what was loaded."""
        self.router.stop()
        self._executor.shutdown(wait=True)
        done = self.loader.stop(drain=True)
        self._count_loaded()
        self.stopped, self.final_load = True, done
        return done

    def _switched(self, live: scorer.Live) -> None:
        self.metrics.serving.clear()
        self.metrics.serving.labels(self.info.name, deployments.CHAMPION, str(live.champion.number)).set(1)
        if live.challenger is not None:
            arm = deployments.challenger_arm(live.config)
            self.metrics.serving.labels(self.info.name, arm, str(live.challenger.number)).set(1)
        if live.generation > 1:
            self.metrics.switches.labels(self.info.name).inc()

    def _count_loaded(self) -> None:
        rows, shadow = self.loader.stats.rows_loaded, self.loader.stats.shadow_rows_loaded
        before_rows, before_shadow = self._loaded_counted
        if rows > before_rows:
            self.metrics.loaded.labels(self.info.name, "predictions").inc(rows - before_rows)
        if shadow > before_shadow:
            self.metrics.loaded.labels(self.info.name, "shadow").inc(shadow - before_shadow)
        self._loaded_counted = (rows, shadow)

    # --- scoring ------------------------------------------------------------------------------------

    def _score(self, jobs: list[_Job]) -> None:
        """On the scorer thread: score the queued jobs as one batch under one Live, spool the rows."""
        live = self.router.live
        at = utcnow()
        values = reqmod.concat_values(self.info, [j.records.values for j in jobs])
        ids = [i for j in jobs for i in j.records.request_ids]
        keys = [k for j in jobs for k in j.records.keys]
        frame = reqmod.frame_of(self.info, values)
        out = scorer.score_frame(live, frame, ids, keys, at=at)
        self.spool.append(out.rows)
        self.metrics.spooled.labels(self.info.name).inc(out.rows.num_rows)
        if out.shadow is not None:
            self.spool.append(out.shadow)
            self.metrics.shadow.labels(self.info.name, str(live.challenger.number)).inc(out.shadow.num_rows)
        self.metrics.batch_rows.labels(self.info.name).observe(len(ids))
        start = 0
        for j in jobs:
            n = len(j.records)
            j.result = (out.prediction[start:start + n], None if out.score is None else out.score[start:start + n],
                        out.version[start:start + n], out.arm[start:start + n])
            start += n

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        jobs, rows = [], 0
        while self._queue and (not jobs or rows + len(self._queue[0].records) <= self.settings.max_batch):
            job = self._queue.pop(0)
            jobs.append(job)
            rows += len(job.records)
        self._busy = True
        done = loop.run_in_executor(self._executor, self._score, jobs)
        done.add_done_callback(lambda f: self._finished(loop, jobs, f))

    def _finished(self, loop, jobs: list[_Job], f) -> None:
        self._busy = False
        exc = None if f.cancelled() else f.exception()
        for j in jobs:
            if j.future.done():
                continue
            if exc is not None:
                j.future.set_exception(exc)
            else:
                j.future.set_result(j.result)
        if self._queue:
            self._kick(loop)

    async def score(self, records: reqmod.Records):
        """Queue ``records`` for the scorer thread; return (predictions, scores, versions, arms) once spooled."""
        loop = asyncio.get_running_loop()
        job = _Job(records, loop.create_future())
        self._queue.append(job)
        if not self._busy:
            self._kick(loop)
        return await job.future

    def remember(self, ids: list[str]) -> str | None:
        """Remember request ids; return the first one already answered recently (then remember none)."""
        with self._recent_lock:
            for rid in ids:
                if rid in self._recent:
                    return rid
            for rid in ids:
                self._recent[rid] = None
            while len(self._recent) > RECENT_IDS:
                self._recent.popitem(last=False)
        return None

    def forget(self, ids: list[str]) -> None:
        with self._recent_lock:
            for rid in ids:
                self._recent.pop(rid, None)

    # --- what the endpoints show --------------------------------------------------------------------

    def health(self) -> dict:
        live = self.router.current
        backlog = self.loader.backlog()
        self.metrics.backlog.labels(self.info.name).set(backlog)
        self._count_loaded()
        body = {"status": "ok" if live is not None else "starting", "model": self.info.name,
                "started_at": self.started_at, "answered": self.answered,
                "registry": {"last_read": self.router.last_poll, "errors": self.router.errors,
                             "last_error": self.router.last_error, "switches": self.router.switches},
                "spool": {"folder": str(self.spool.folder), "rows": self.spool.stats.rows,
                          "segments_sealed": self.spool.stats.segments_sealed, "backlog_rows": backlog},
                "loader": jsonable(self.loader.stats)}
        if live is not None:
            now = utcnow()
            body.update({"mode": live.config.mode, "champion": live.champion.number,
                         "challenger": live.challenger.number if live.challenger else None,
                         "challenger_share": live.share(now), "generation": live.generation, "since": live.since,
                         "serving": deployments.describe(live.config, live.champion.number, now)})
        return jsonable(body)

    def render_metrics(self) -> bytes:
        live = self.router.current
        if live is not None:
            self.metrics.share.labels(self.info.name).set(live.share(utcnow()))
        self.metrics.backlog.labels(self.info.name).set(self.loader.backlog())
        self._count_loaded()
        new_errors = self.router.errors - self._seen_errors
        if new_errors > 0:
            self.metrics.registry_errors.labels(self.info.name).inc(new_errors)
            self._seen_errors = self.router.errors
        return self.metrics.render()


# --- the HTTP layer ---------------------------------------------------------------------------------


def _problem(status: int, errors: list[dict], metrics: ServiceMetrics, model: str, reason: str) -> JSONResponse:
    metrics.errors.labels(model, str(status), reason).inc()
    return JSONResponse({"detail": errors}, status_code=status)


def _results(out, ids: list[str]) -> list[dict]:
    pred, score, version, arm = out
    results = []
    for i, rid in enumerate(ids):
        p = pred[i]
        s = None if score is None or np.isnan(score[i]) else float(score[i])
        results.append({"request_id": rid, "prediction": p if isinstance(p, str) else float(p), "score": s,
                        "version": int(version[i]), "arm": str(arm[i])})
    return results


def build_app(service: ScoringService) -> Starlette:
    """The Starlette application of ``service`` (started and stopped by ``serve``, or by the caller)."""
    info, metrics = service.info, service.metrics
    model = info.name

    async def predict(request: Request) -> Response:
        t0 = time.perf_counter()
        if request.path_params["model"] != model:
            return _problem(404, [{"field": "(path)", "reason": f"model {request.path_params['model']!r} is not "
                                                               f"served here; this service serves {model!r}"}],
                            metrics, model, "unknown_model")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _problem(413, [{"field": "(body)", "reason": f"larger than {MAX_BODY_BYTES} bytes; send fewer "
                                                               "records per request"}], metrics, model, "too_large")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _problem(422, [{"field": "(body)", "reason": f"not valid JSON: {exc}"}], metrics, model,
                            "invalid_json")
        live = service.router.current
        if live is None:
            return _problem(503, [{"field": "(service)", "reason": "no version is loaded yet; retry shortly"}],
                            metrics, model, "not_ready")
        try:
            records, single = reqmod.check_records(info, payload, sticky_key=live.config.sticky_key,
                                                   header_request_id=request.headers.get("x-request-id"))
        except reqmod.RecordError as exc:
            return _problem(422, [{"record": e.record, "field": e.field, "reason": e.reason} for e in exc.errors],
                            metrics, model, "invalid_record")
        reused = service.remember(records.request_ids)
        if reused is not None:
            return _problem(409, [{"field": "request_id", "reason": f"request id {reused!r} was already answered; "
                                                                    "a request is logged once"}],
                            metrics, model, "reused_request_id")
        try:
            out = await service.score(records)
        except Exception as exc:  # a model that fails on these rows: an answer, never a traceback
            service.forget(records.request_ids)
            log.exception("scoring failed")
            return _problem(500, [{"field": "(model)", "reason": f"scoring failed: {type(exc).__name__}: {exc}"}],
                            metrics, model, "scoring_failed")
        results = _results(out, records.request_ids)
        elapsed = time.perf_counter() - t0
        service.answered += len(results)
        for r in results:
            labels = (model, str(r["version"]), r["arm"])
            metrics.requests.labels(*labels).inc()
            metrics.latency.labels(*labels).observe(elapsed)
        headers = {"x-request-id": results[0]["request_id"]} if single else None
        return Response(json.dumps(results[0] if single else results), media_type="application/json",
                        headers=headers)

    async def describe_model(request: Request) -> Response:
        if request.path_params["model"] != model:
            return JSONResponse({"detail": [{"field": "(path)", "reason": f"this service serves {model!r}"}]},
                                status_code=404)
        health = service.health()
        return JSONResponse(jsonable({"model": model, "task": info.task, "target": info.target,
                                      "positive_class": info.positive_class, "classes": info.classes,
                                      "features": [{"name": f.name, "kind": f.kind, "categories": f.categories,
                                                    "min": f.min, "max": f.max} for f in info.features],
                                      "serving": {k: health.get(k) for k in ("mode", "champion", "challenger",
                                                                             "challenger_share", "since",
                                                                             "serving")}}))

    async def healthz(request: Request) -> Response:
        body = service.health()
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(service.render_metrics(), media_type=CONTENT_TYPE)

    async def not_found(request: Request, exc) -> Response:
        return JSONResponse({"detail": [{"field": "(path)", "reason": f"no endpoint {request.url.path}; use POST "
                                                                     f"/v1/models/{model}/predict"}]},
                            status_code=getattr(exc, "status_code", 404))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", exc_info=exc)
        metrics.errors.labels(model, "500", "internal").inc()
        return JSONResponse({"detail": [{"field": "(service)", "reason": f"internal error: {type(exc).__name__}"}]},
                            status_code=500)

    @asynccontextmanager
    async def lifespan(app):
        # Started by ``serve`` before uvicorn (so that a failure is an error message, not a traceback); stopped
        # here, while uvicorn still holds the signal that asked for the stop, so the drain always runs.
        yield
        done = await asyncio.get_running_loop().run_in_executor(None, service.stop)
        log.info("stopped %s: %s records answered; the final drain loaded %s rows (%s shadow) into the log",
                 model, service.answered, done.rows, done.shadow_rows)

    return Starlette(routes=[Route("/v1/models/{model}/predict", predict, methods=["POST"]),
                             Route("/v1/models/{model}", describe_model, methods=["GET"]),
                             Route("/healthz", healthz, methods=["GET"]),
                             Route("/metrics", metrics_endpoint, methods=["GET"])],
                     exception_handlers={404: not_found, 405: not_found, Exception: server_error},
                     lifespan=lifespan)


def serve(service: ScoringService, *, host: str = "127.0.0.1", port: int = 8000) -> loadermod.Pass | None:
    """Start ``service``, answer on ``host``:``port`` until SIGTERM or SIGINT, then stop it cleanly: uvicorn
    finishes the requests under way, the spool is sealed and loaded. Returns what the final drain loaded when
    it returns at all: after a signal, uvicorn ends the process with that signal once the service stopped.

    Scores on one thread with OpenMP pools of one thread (see ``_one_thread``). Raises ConflictError when the
    port is taken, MlopsError when nothing can be served (no production version, an artifact that fails
    its check).
    """
    import socket

    import uvicorn

    from mlops_core.errors import ConflictError

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise ConflictError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Pick another --port.",
                            host=host, port=port) from exc
    try:
        import httptools  # noqa: F401  (uvicorn's C parser, when installed)

        http = "httptools"
    except ImportError:
        http = "h11"
    config = uvicorn.Config(build_app(service), host=host, port=port, log_level="warning", access_log=False,
                            http=http, lifespan="on", timeout_graceful_shutdown=30)
    service.start()
    try:
        uvicorn.Server(config).run()  # on SIGTERM/SIGINT the lifespan stops the service, then uvicorn re-raises it
    finally:
        if not service.stopped:
            service.stop()
    return service.final_load
