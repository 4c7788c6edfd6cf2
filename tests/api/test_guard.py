"""Slow and greedy clients, on real sockets: a head that trickles or is too large, a body that
trickles or is abandoned, more connections than the server holds."""

from __future__ import annotations

import resource
import socket
import statistics
import time
from collections.abc import Iterator

import httpx2
import pytest

from tests.conftest import API_KEY, Server, configured_server
from tests.upstream import Upstream, relay_models

HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5
MAX_CONNECTIONS = 100
DESCRIPTORS = 250
HELLO = b'{"model": "relay-answer", "messages": [{"role": "user", "content": "hi"}]}'


@pytest.fixture(scope="module")
def relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    lines = [
        "server:",
        f"  head_timeout: {HEAD_TIMEOUT}",
        "  max_head_bytes: 4096",
        f"  body_timeout: {BODY_TIMEOUT}",
        f"  max_connections: {MAX_CONNECTIONS}",
        *relay_models(upstream, ["answer"]),
    ]
    with configured_server(tmp_path_factory.mktemp("guard"), lines) as server:
        # fewer descriptors than the slow clients below would hold, were they not bounded
        resource.prlimit(server.process.pid, resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))
        yield server
    assert "Traceback" not in server.log.read_text()


def connect(server: Server) -> socket.socket:
    port = int(server.root.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def status_of(sock: socket.socket) -> tuple[int, float]:
    """The status of the response the socket gets, and how long it took to come."""
    started = time.monotonic()
    head = sock.recv(65536)
    return int(head.split(b" ", 2)[1]), time.monotonic() - started


def post_head(length: int) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
        + f"authorization: Bearer {API_KEY}\r\ncontent-type: application/json\r\n".encode()
        + f"content-length: {length}\r\n\r\n".encode()
    )


def chat(server: Server) -> httpx2.Response:
    headers = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}
    return httpx2.post(f"{server.base_url}/chat/completions", content=HELLO, headers=headers)


def test_a_head_that_trickles_is_closed(relay: Server) -> None:
    with connect(relay) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        time.sleep(HEAD_TIMEOUT / 2)
        sock.sendall(b"host: x\r\n")  # a line now and then does not keep it open
        status, waited = status_of(sock)
    assert status == 408
    assert HEAD_TIMEOUT / 2 - 0.2 < waited < HEAD_TIMEOUT / 2 + 1


def test_a_connection_that_sends_nothing_is_closed(relay: Server) -> None:
    with connect(relay) as sock:
        status, waited = status_of(sock)
    assert status == 408 and waited < HEAD_TIMEOUT + 1


def test_a_head_too_large_gets_a_431(relay: Server) -> None:
    with connect(relay) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 8000 + b"\r\n\r\n")
        assert status_of(sock)[0] == 431


def test_a_body_that_trickles_is_cut_off(relay: Server) -> None:
    with connect(relay) as sock:
        sock.sendall(post_head(len(HELLO)) + HELLO[:10])
        started = time.monotonic()
        for byte in HELLO[10:20]:  # a byte at a time, slower than the body may take
            sock.sendall(bytes([byte]))
            time.sleep(0.3)
            if time.monotonic() - started > BODY_TIMEOUT:
                break
        response = sock.recv(65536)
    assert response.startswith(b"HTTP/1.1 408")
    assert b'"code":"request_timeout"' in response and b"connection: close" in response


def test_a_client_that_leaves_while_sending_its_body_is_no_error(relay: Server) -> None:
    with connect(relay) as sock:
        sock.sendall(post_head(1000) + b'{"model": ')
        time.sleep(0.2)
    time.sleep(0.3)
    log = relay.log.read_text()
    assert log.count("the client went away while sending its body") == 1
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    assert chat(relay).status_code == 200


def test_slow_clients_beyond_the_connection_limit_leave_room_for_others(relay: Server) -> None:
    """Three times as many slow connections as the server holds (more than it has descriptors
    for): the oldest make way, and a client that sends its request at once is served, about as
    fast as without them."""
    baseline = [_timed(relay) for _ in range(20)]
    slow = []
    for _ in range(3 * MAX_CONNECTIONS):
        sock = connect(relay)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        slow.append(sock)
    try:
        during = [_timed(relay) for _ in range(20)]
    finally:
        for sock in slow:
            sock.close()
    assert all(status == 200 for status, _ in baseline + during)
    typical = statistics.median(t for _, t in baseline)
    assert max(t for _, t in during) < typical + 0.5, (baseline, during)


def _timed(server: Server) -> tuple[int, float]:
    started = time.monotonic()
    status = chat(server).status_code
    return status, time.monotonic() - started
