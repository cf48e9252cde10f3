"""The scoring service as a real process: answers, follows promote/rollback under traffic, splits, shadows, logs
every answer (clean stop: all of them; kill -9: all but at most one spool segment)."""
from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest
from _serving_support import MODEL, Service, cli, logged, records, two_versions

PREDICT = f"/v1/models/{MODEL}/predict"


@pytest.fixture
def db(tmp_path):
    return two_versions(tmp_path / "served")


class Traffic:
    """A thread sending one record at a time until stopped; keeps (time answered, status, version) per request."""

    def __init__(self, url: str):
        self.url = url
        self.answers: list[tuple[float, int, int | None]] = []
        self.ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._recs = records(200, seed=3)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            i = 0
            while not self._stop.is_set() and i < 20_000:  # bounded
                r = client.post(PREDICT, json=self._recs[i % len(self._recs)])
                body = r.json() if r.status_code == 200 else None
                self.answers.append((time.monotonic(), r.status_code, body["version"] if body else None))
                if body:
                    self.ids.append(body["request_id"])
                i += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)

    def first_version_after(self, since: float, version: int, timeout: float = 5.0) -> float:
        """Seconds from ``since`` to the first answer by ``version`` (waiting up to ``timeout``)."""
        deadline = time.monotonic() + timeout + 1
        while time.monotonic() < deadline:
            hits = [t for t, status, v in list(self.answers) if t >= since and v == version]
            if hits:
                return hits[0] - since
            time.sleep(0.05)
        raise AssertionError(f"no answer by v{version} within {timeout} s")


def test_service_follows_promote_and_rollback_under_traffic_then_splits_shadows_and_logs_everything(db):
    with Service(db, "--poll", "0.5", "--segment-rows", "100", "--load-delay", "1") as svc:
        h = svc.health()
        assert (h["mode"], h["champion"]) == ("champion", 1)
        with Traffic(svc.url) as traffic:
            time.sleep(1.0)
            cli(db, "promote", "--model", MODEL, "--version", "2", "--reason", "test")
            switched = traffic.first_version_after(time.monotonic() - 0.01, 2)
            time.sleep(0.5)
            cli(db, "rollback", "--model", MODEL)
            back = traffic.first_version_after(time.monotonic() - 0.01, 1)
            time.sleep(0.5)
        statuses = {status for _, status, _ in traffic.answers}
        assert statuses == {200}, statuses  # no failed request during either switch
        assert switched < 5 and back < 5
        versions = [v for _, _, v in traffic.answers]
        assert versions[0] == 1 and 2 in versions and versions[-1] == 1

        # a 50/50 split, sticky by a record field
        cli(db, "deployment", "set", "--model", MODEL, "--mode", "split", "--challenger", "2", "--weight", "0.5",
            "--sticky-key", "customer", "--reason", "A/B test")
        svc.wait_for(lambda h: h["mode"] == "split", timeout=5)
        split_arms: dict[str, int] = {}
        split_ids = []
        with httpx.Client(base_url=svc.url, timeout=10) as client:
            recs = records(400, seed=5)
            for i, rec in enumerate(recs):
                rec["customer"] = f"c{i}"
            for start in range(0, 400, 50):  # lists of 50 records
                r = client.post(PREDICT, json=recs[start:start + 50])
                assert r.status_code == 200
                for ans in r.json():
                    split_arms[ans["arm"]] = split_arms.get(ans["arm"], 0) + 1
                    assert ans["version"] == (2 if ans["arm"] == "challenger" else 1)
                    split_ids.append(ans["request_id"])
            again = [client.post(PREDICT, json={**recs[i], "request_id": f"again-{i}"}).json()["arm"]
                     for i in range(20)]
            sticky = [client.post(PREDICT, json={**recs[i], "request_id": f"again2-{i}"}).json()["arm"]
                      for i in range(20)]
        assert again == sticky  # the same customer always lands in the same arm
        assert set(split_arms) == {"champion", "challenger"}
        assert 140 <= split_arms["challenger"] <= 260  # 400 draws at 0.5: mean 200, sd 10

        # shadow: the champion answers, the challenger's scores are logged apart
        cli(db, "deployment", "set", "--model", MODEL, "--mode", "shadow", "--challenger", "2")
        svc.wait_for(lambda h: h["mode"] == "shadow", timeout=5)
        with httpx.Client(base_url=svc.url, timeout=10) as client:
            shadow_answers = client.post(PREDICT, json=records(60, seed=7)).json()
        assert {a["arm"] for a in shadow_answers} == {"champion"} and {a["version"] for a in shadow_answers} == {1}
        answered = len(traffic.ids) + len(split_ids) + 40 + len(shadow_answers)
        assert svc.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    log = logged(db)
    assert len(log) == answered and log["request_id"].is_unique  # every answer logged, once
    assert set(traffic.ids) <= set(log["request_id"])
    by_id = log.set_index("request_id")
    split = by_id.loc[split_ids]
    assert split["variant"].value_counts().to_dict() == split_arms
    assert set(by_id.loc[[a["request_id"] for a in shadow_answers], "variant"]) == {"champion"}
    shadow = logged(db, "shadow")
    assert sorted(shadow["request_id"]) == sorted(a["request_id"] for a in shadow_answers)
    assert set(shadow["variant"]) == {"shadow"} and set(shadow["version"]) == {2}


def test_bad_requests_get_422_with_the_field_and_reason_never_a_traceback(db):
    with Service(db) as svc, httpx.Client(base_url=svc.url, timeout=10) as client:
        rec = records(1)[0]
        r = client.post(PREDICT, json={**rec, "income": "lots"})
        assert r.status_code == 422
        assert r.json()["detail"] == [{"record": 0, "field": "income",
                                       "reason": "must be a number or null, got str 'lots'"}]
        missing = {k: v for k, v in rec.items() if k != "region"}
        r = client.post(PREDICT, json=[rec, missing])
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "region"
        assert r.json()["detail"][0]["record"] == 1
        r = client.post(PREDICT, content=b"{not json")
        assert r.status_code == 422 and "not valid JSON" in r.json()["detail"][0]["reason"]
        assert client.post(PREDICT, json=[]).status_code == 422
        r = client.post("/v1/models/other/predict", json=rec)
        assert r.status_code == 404 and "serves 'credit'" in r.json()["detail"][0]["reason"]
        ok = client.post(PREDICT, json={**rec, "request_id": "mine-1", "region": None}, headers={"x-request-id": "x"})
        assert ok.status_code == 200 and ok.json()["request_id"] == "mine-1" and ok.headers["x-request-id"] == "mine-1"
        again = client.post(PREDICT, json={**rec, "request_id": "mine-1"})
        assert again.status_code == 409
        metrics = client.get("/metrics").text
        assert 'mlops_request_errors_total{model="credit",reason="invalid_record",status="422"} 3.0' in metrics
        assert 'mlops_requests_total{arm="champion",model="credit",version="1"} 1.0' in metrics
        assert "mlops_request_latency_seconds_bucket" in metrics
        assert "Traceback" not in svc.log()
        svc.stop()
    assert list(logged(db)["request_id"]) == ["mine-1"]


def test_kill_9_loses_at_most_the_open_segment_and_the_next_start_loads_the_rest(db):
    segment = 50
    with Service(db, "--segment-rows", str(segment), "--load-delay", "30", "--load-rows", "100000") as svc:
        ids = []
        with httpx.Client(base_url=svc.url, timeout=10) as client:
            for rec in records(130, seed=11):
                ids.append(client.post(PREDICT, json=rec).json()["request_id"])
        svc.stop(signal.SIGKILL)
    assert len(logged(db)) == 0  # nothing was loaded before the kill (load delay 30 s)
    out = cli(db, "spool", "load", "--model", MODEL)
    assert "segment" in out.stdout
    log = logged(db)
    assert set(log["request_id"]) <= set(ids)
    assert len(ids) - len(log) <= segment  # the documented bound
    assert len(log) == len(ids)  # in fact nothing answered is lost: rows are written before the answer


def test_the_library_and_the_other_commands_load_no_http_stack():
    import subprocess
    import sys

    from _dashboard_support import ROOT

    code = ("import sys, mlops_core, mlops_core.cli; mlops_core.cli.build_parser(); "
            "print(sorted(m for m in ('starlette', 'uvicorn', 'prometheus_client', 'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
