"""Incidents posted to a webhook: a real HTTP receiver on 127.0.0.1, Slack-compatible JSON, retries with backoff,
failures stored and shown, sent again on request; the CLI's webhook commands; who may add one."""
from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from _monitoring_support import T0
from test_alerts import _shifting_log

from mlops_core import ControlRoom, Identity
from mlops_core.cli import main
from mlops_core.errors import InvalidInputError, PermissionDeniedError
from mlops_core.monitoring import webhooks


class Receiver:
    """An HTTP server on a free loopback port that records the JSON bodies POSTed to it; it answers ``fail``
    (a list of HTTP statuses) to the first requests, then 200."""

    def __init__(self, fail=()):
        self.bodies: list[dict] = []
        self.answers: list[int] = []
        self.fail = list(fail)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.bodies.append(json.loads(body))
                status = outer.fail.pop(0) if outer.fail else 200
                outer.answers.append(status)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


ADMIN = Identity("ada", "admin")


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(webhooks, "BACKOFF_S", 0.05)
    monkeypatch.setattr(webhooks, "TIMEOUT_S", 2.0)


def test_new_incidents_reach_the_receiver_as_slack_json_once(db, fast_retries):
    _shifting_log(db)
    with Receiver() as rx:
        hook = ControlRoom(db, identity=ADMIN).add_webhook(rx.url, model="credit", min_severity="warning")
        res = ControlRoom(db).model("credit").monitor(now=T0 + timedelta(days=8, hours=1))
        assert res.alerts and len(rx.bodies) == len(res.alerts)
        body = rx.bodies[0]
        assert set(body) == {"text", "blocks"} and body["blocks"][0]["type"] == "section"
        assert "credit" in body["text"] and body["text"].startswith("[")
        texts = " ".join(b["text"] for b in rx.bodies)
        assert "Accuracy of v1 below" in texts and "Seen in" in texts
        again = ControlRoom(db).model("credit").monitor(now=T0 + timedelta(days=8, hours=2))
        assert again.alerts == [] and len(rx.bodies) == len(res.alerts)  # updates are not posted again
    deliveries = ControlRoom(db).webhook_deliveries("credit")
    assert set(deliveries["status"]) == {"delivered"} and set(deliveries["attempts"]) == {1}
    assert set(deliveries["url"]) == {f"http://127.0.0.1:{rx.server.server_address[1]}/…"}  # the secret path hidden
    assert hook.min_severity == "warning"


def test_a_failing_receiver_is_retried_with_backoff(db, fast_retries):
    _shifting_log(db)
    with Receiver(fail=[503, 500]) as rx:
        ControlRoom(db, identity=ADMIN).add_webhook(rx.url, min_severity="critical")
        res = ControlRoom(db).model("credit").monitor(now=T0 + timedelta(days=8, hours=1))
        critical = [a for a in res.alerts if a.severity == "critical"]
        assert critical and rx.answers[:3] == [503, 500, 200]
    row = ControlRoom(db).webhook_deliveries().iloc[-1]
    assert (row["status"], row["attempts"], row["http_status"]) == ("delivered", 3, 200)
    assert len(ControlRoom(db).webhook_deliveries()) == len(critical)  # warnings are below this webhook's minimum


def test_failures_are_stored_shown_and_sent_again_on_request(db, fast_retries, monkeypatch):
    _shifting_log(db)
    with Receiver(fail=[404] * 50) as rx:
        ControlRoom(db, identity=ADMIN).add_webhook(rx.url)
        res = ControlRoom(db).model("credit").monitor(now=T0 + timedelta(days=8, hours=1))
        assert res.alerts and rx.answers == [404]  # a 404 is not retried; the webhook's other deliveries wait
        failed = ControlRoom(db).webhook_deliveries("credit")
        assert "failed" in set(failed["status"]) and failed["last_error"].str.contains("HTTP 404").any()
        assert (failed["status"] == "pending").sum() == len(res.alerts) - 1

        # the Automation page says so
        from test_pages import open_page

        monkeypatch.setenv("MLOPS_DB", str(db))
        at = open_page("pages/automation.py", identity=Identity("pat", "operator"))
        assert not at.exception
        assert any("could not be delivered" in e.value and "HTTP 404" in e.value for e in at.error)

        rx.fail = []  # the receiver is fixed: send them again
        out = ControlRoom(db, identity=Identity("pat", "operator")).deliver_webhooks(retry_failed=True)
        assert out and all(o.delivered for o in out)
    assert set(ControlRoom(db).webhook_deliveries("credit")["status"]) == {"delivered"}


def test_an_unreachable_receiver_fails_after_every_attempt(db, fast_retries):
    _shifting_log(db, days=6)
    with Receiver() as rx:
        url = rx.url
    ControlRoom(db, identity=ADMIN).add_webhook(url)  # nobody listens there any more
    ControlRoom(db).model("credit").monitor(now=T0 + timedelta(days=6, hours=1))
    failed = ControlRoom(db).webhook_deliveries()
    first = failed[failed["status"] == "failed"].iloc[0]
    assert first["attempts"] == webhooks.ATTEMPTS and "Connection" in first["last_error"]


def test_webhook_commands_and_who_may_use_them(db, capsys, fast_retries):
    _shifting_log(db, days=3)
    with pytest.raises(PermissionDeniedError):
        ControlRoom(db, identity=Identity("pat", "operator")).add_webhook("https://hooks.example/x")
    with pytest.raises(InvalidInputError, match="http"):
        ControlRoom(db, identity=ADMIN).add_webhook("file:///etc/passwd")
    with Receiver() as rx:
        assert main(["webhook", "add", "--url", rx.url, "--model", "credit", "--db", str(db)]) == 0
        assert "gets the new and reopened incidents of credit" in capsys.readouterr().out
        assert main(["webhook", "list", "--db", str(db)]) == 0
        listed = capsys.readouterr().out
        assert "secret" not in listed and "127.0.0.1" in listed
        assert main(["webhook", "test", "1", "--db", str(db)]) == 0
        assert "delivered" in capsys.readouterr().out and "Test message" in rx.bodies[-1]["text"]
        assert main(["webhook", "remove", "1", "--db", str(db)]) == 0
        assert main(["webhook", "remove", "1", "--db", str(db)]) == 2
