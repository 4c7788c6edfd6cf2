"""Stopping the server with requests in flight: a normal stop waits for them at most
``shutdown_timeout``, then ends each with an error its client sees and records it; a second
signal stops at once, and still records them."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx2
import orjson

from tests.conftest import API_KEY, Server, start_server
from tests.upstream import Upstream, relay_models

ENDLESS = {"model": "relay-endless", "messages": [{"role": "user", "content": "hi"}]}


def serve(data: Path, upstream: Upstream) -> Server:
    config = data / "llmrelay.yaml"
    lines = ["server: {shutdown_timeout: 1}", *relay_models(upstream, ["endless", "hang"])]
    config.write_text("\n".join(lines) + "\n")
    return start_server(data, env={"LLMRELAY_API_KEY": API_KEY}, args=("--config", str(config)))


class InFlight(threading.Thread):
    """A request that is still going when the server stops: what its client got."""

    def __init__(self, server: Server, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.server, self.body = server, body
        self.status: int | None = None
        self.events: list[Any] = []
        self.request_id = ""
        self.start()

    def run(self) -> None:
        headers = {"authorization": f"Bearer {API_KEY}"}
        url = f"{self.server.base_url}/chat/completions"
        try:
            with httpx2.stream("POST", url, json=self.body, headers=headers, timeout=60) as r:
                self.status, self.request_id = r.status_code, r.headers["x-request-id"]
                if not self.body.get("stream"):
                    self.events.append(orjson.loads(r.read()))
                    return
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(line[6:] if "[DONE]" in line else orjson.loads(line[6:]))
        except httpx2.HTTPError:
            pass


def rows(data: Path) -> dict[str, dict[str, Any]]:
    with closing(sqlite3.connect(data / "llmrelay.db")) as db:
        db.row_factory = sqlite3.Row
        return {row["request_id"]: dict(row) for row in db.execute("SELECT * FROM usage")}


def test_a_stop_waits_at_most_shutdown_timeout_then_ends_and_records_requests(
    tmp_path: Path, upstream: Upstream
) -> None:
    server = serve(tmp_path, upstream)
    stream = InFlight(server, {**ENDLESS, "stream": True})
    whole = InFlight(server, {"model": "relay-hang", "messages": ENDLESS["messages"]})
    time.sleep(1)
    stopped_at = time.monotonic()
    server.process.send_signal(signal.SIGINT)
    server.process.wait(timeout=20)
    took = time.monotonic() - stopped_at
    stream.join(5)
    whole.join(5)
    assert took < 5, f"the stop took {took:.1f} s with shutdown_timeout 1 s"
    assert stream.events[-1]["error"]["code"] == "server_shutting_down", stream.events[-3:]
    assert any("choices" in e for e in stream.events[:-1]), "the stream had begun"
    assert whole.status == 503
    assert whole.events[-1]["error"]["code"] == "server_shutting_down"
    recorded = rows(tmp_path)
    for request in (stream, whole):
        row = recorded[request.request_id]
        assert (row["status"], row["error_code"]) == (503, "server_shutting_down")
    assert recorded[stream.request_id]["completion_tokens"] > 0, "billed for what it had"
    assert "Traceback" not in server.log.read_text()


def test_a_second_signal_stops_at_once_and_still_records_streams(
    tmp_path: Path, upstream: Upstream
) -> None:
    server = serve(tmp_path, upstream)
    streams = [InFlight(server, {**ENDLESS, "stream": True}) for _ in range(3)]
    time.sleep(1)
    server.process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    forced_at = time.monotonic()
    server.process.send_signal(signal.SIGINT)  # forced: no waiting
    server.process.wait(timeout=10)
    assert time.monotonic() - forced_at < 3, "a forced stop waits for no request"
    assert "Traceback" not in server.log.read_text()
    for stream in streams:
        stream.join(5)
    request_ids = {stream.request_id for stream in streams}
    again = serve(tmp_path, upstream)  # what the forced stop left in the spool is written
    again.process.send_signal(signal.SIGINT)
    again.process.wait(timeout=20)
    recorded = rows(tmp_path)
    assert request_ids <= set(recorded), "a row for each stream in flight"
    for request_id in request_ids:
        assert recorded[request_id]["completion_tokens"] > 0
