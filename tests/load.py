"""``Load``: clients that keep a server busy, for the drills that kill or starve it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx2

from tests.conftest import API_KEY, Server

HELLO = {"model": "relay-answer", "messages": [{"role": "user", "content": "hi"}]}


class Load:
    """Clients sending requests as fast as they are answered, until stopped; the request ids
    (and the usage) of every request that was answered."""

    def __init__(
        self, server: Server, key: str = API_KEY, clients: int = 16, body: dict = HELLO
    ) -> None:
        self.answered: dict[str, int] = {}
        self.failed = 0  # answers with a status other than 200
        self._server, self._key, self._body = server, key, body
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(clients)
        self._runs = [self._pool.submit(self._run) for _ in range(clients)]

    def _run(self) -> None:
        headers = {"authorization": f"Bearer {self._key}"}
        with httpx2.Client(timeout=10) as http:
            while not self._stop.is_set():
                try:
                    response = http.post(
                        f"{self._server.base_url}/chat/completions",
                        json=self._body,
                        headers=headers,
                    )
                except httpx2.TransportError:  # the server is gone
                    return
                if response.status_code == 200:
                    used = response.json()["usage"]["total_tokens"]
                    self.answered[response.headers["x-request-id"]] = used
                else:
                    self.failed += 1

    def stop(self) -> None:
        self._stop.set()
        for run in self._runs:
            run.result()
        self._pool.shutdown()
