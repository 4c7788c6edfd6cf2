"""A ledger that loses nothing a client was answered for: real servers killed with SIGKILL under
load, a PostgreSQL of the test's own stopped under them, budgets across crashes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
import pytest

from tests.conftest import API_KEY, Server, start_server, stop_server
from tests.ledger import rows_among
from tests.load import HELLO, Load
from tests.services import OwnPostgres
from tests.upstream import Upstream, relay_models

#: a request whose reservation leaves room for many in flight (its output is at most 10)
SMALL = {**HELLO, "max_tokens": 10}
ADMIN_KEY = "sk-admin-spool-" + "s" * 30


def serve(data: Path, upstream: Upstream, database_url: str | None = None) -> Server:
    config = data / "llmrelay.yaml"
    config.write_text("\n".join(relay_models(upstream, ["answer"])) + "\n")
    env = {"LLMRELAY_API_KEY": API_KEY, "LLMRELAY_ADMIN_KEY": ADMIN_KEY}
    if database_url:
        env["LLMRELAY_DATABASE_URL"] = database_url
    return start_server(data, env=env, args=("--config", str(config)))


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_killed_server_loses_no_row_of_what_it_answered(
    tmp_path: Path, upstream: Upstream, postgres_url: str, store: str
) -> None:
    database_url = postgres_url if store == "postgresql" else None
    server = serve(tmp_path, upstream, database_url)
    load = Load(server)
    time.sleep(2)
    server.process.kill()  # mid-load, with rows in memory and requests in flight
    server.process.wait()
    load.stop()
    answered = list(load.answered)
    assert len(answered) > 100
    again = serve(tmp_path, upstream, database_url)
    try:
        found = rows_among(tmp_path, database_url, answered)
        assert set(answered) - found == set(), "an answered request without its row"
        assert "wrote" in again.log.read_text() and "left in the spool" in again.log.read_text()
    finally:
        stop_server(again)
    assert not list((tmp_path / "spool").glob("*.jsonl")), "written, the spool is emptied"


def test_a_budget_holds_across_crashes(tmp_path: Path, upstream: Upstream) -> None:
    budget = 5200
    server = serve(tmp_path, upstream)
    created = httpx2.post(
        f"{server.root}/admin/keys",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"name": "budget", "budget_tokens": budget, "budget_period": "total"},
    ).json()
    served = 0
    for _ in range(3):  # killed three times, right in the middle of a burst
        load = Load(server, created["key"], clients=50, body=SMALL)
        time.sleep(1)
        server.process.kill()
        server.process.wait()
        load.stop()
        served += sum(load.answered.values())
        server = serve(tmp_path, upstream)
    try:
        refused = httpx2.post(
            f"{server.base_url}/chat/completions",
            json=HELLO,
            headers={"authorization": f"Bearer {created['key']}"},
        )
        assert refused.status_code == 429, "the budget is spent"
    finally:
        stop_server(server)
    assert budget // 2 < served <= budget, f"{served} tokens served on a budget of {budget}"


def test_while_the_database_is_down_rows_wait_on_disk(tmp_path: Path, upstream: Upstream) -> None:
    with OwnPostgres() as postgres:
        server = serve(tmp_path, upstream, postgres.url)
        try:
            load = Load(server, clients=8)
            time.sleep(0.5)
            postgres.stop()
            time.sleep(4)
            assert len(list((tmp_path / "spool").glob("*.jsonl"))) >= 1
            postgres.start()
            time.sleep(1)
            load.stop()
            answered = list(load.answered)
            deadline = time.monotonic() + 40  # the writer's backoff reaches some seconds
            while "writes to the database again" not in server.log.read_text():
                assert time.monotonic() < deadline, "the ledger did not write again"
                time.sleep(0.5)
            time.sleep(1)
            assert set(answered) - rows_among(tmp_path, postgres.url, answered) == set()
        finally:
            stop_server(server)
        log = server.log.read_text()
    assert log.count("cannot write to the database") == 1, "one line for the outage"
    assert "Traceback" not in log


def test_rows_left_by_a_crash_while_the_database_was_down_are_written_at_start(
    tmp_path: Path, upstream: Upstream
) -> None:
    with OwnPostgres() as postgres:
        server = serve(tmp_path, upstream, postgres.url)
        postgres.stop()
        load = Load(server, clients=4)
        time.sleep(2)
        server.process.kill()
        server.process.wait()
        load.stop()
        postgres.start()
        answered = list(load.answered)
        assert answered
        stop_server(serve(tmp_path, upstream, postgres.url))
        assert set(answered) - rows_among(tmp_path, postgres.url, answered) == set()
