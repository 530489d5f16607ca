"""The alert sink: JSON lines that survive, a webhook that gets the alert, a dead webhook that
does not fail the caller."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from alphadag.defs.resources.alerting import AlertSink, read_alerts


def test_alerts_are_appended_as_json_lines(tmp_path):
    sink = AlertSink(jsonl_path=str(tmp_path / "nested" / "alerts.jsonl"))
    sink.send("model_fallback", "champion missing", source="predictions", partition="2024-01-02")
    sink.send("run_failure", "boom", severity="error", run_id="abc")
    records = read_alerts(tmp_path / "nested" / "alerts.jsonl")
    assert [r["kind"] for r in records] == ["model_fallback", "run_failure"]
    assert records[0]["partition"] == "2024-01-02"
    assert records[0]["severity"] == "warning"
    assert records[1]["severity"] == "error"
    assert records[1]["run_id"] == "abc"


def test_unknown_severity_is_refused(tmp_path):
    with pytest.raises(ValueError, match="severity"):
        AlertSink(jsonl_path=str(tmp_path / "a.jsonl")).send("x", "y", severity="loud")
    assert read_alerts(tmp_path / "a.jsonl") == []


class _Recorder(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict]] = []

    def do_POST(self):  # http.server names it
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_receives_the_alert(tmp_path):
    _Recorder.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        sink = AlertSink(jsonl_path=str(tmp_path / "a.jsonl"), webhook_url=url)
        sink.send("freshness", "bars are stale", asset="bars")
    finally:
        server.shutdown()
    assert len(_Recorder.bodies) == 1
    body = _Recorder.bodies[0]
    assert "bars are stale" in body["text"] and body["alert"]["asset"] == "bars"
    assert [r.get("delivery") for r in read_alerts(tmp_path / "a.jsonl")] == [None]


def test_dead_webhook_is_recorded_not_raised(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    port = server.server_address[1]
    server.server_close()  # nothing listens on this port any more
    sink = AlertSink(
        jsonl_path=str(tmp_path / "a.jsonl"),
        webhook_url=f"http://127.0.0.1:{port}/hook",
        timeout_seconds=2,
    )
    record = sink.send("run_failure", "boom", severity="error")
    lines = read_alerts(tmp_path / "a.jsonl")
    assert lines[0] == record
    assert lines[1]["delivery"] == "failed" and "delivery_error" in lines[1]
