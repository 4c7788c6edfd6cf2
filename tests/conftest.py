"""Fixtures: a real llmrelay server on loopback, and the official SDK pointed at it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from tests.net import free_port
from tests.services import postgres_database, redis_database
from tests.spec import ValidatingTransport
from tests.upstream import Upstream

API_KEY = "sk-llmrelay-test-" + "x" * 40


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[str]
    log: Path

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")


def start_server(
    data_dir: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Server:
    """Start ``python -m llmrelay serve`` and wait until /health answers."""
    port = free_port()
    log = data_dir / f"server-{port}.log"
    log_file = log.open("w")
    full_env = {**os.environ, "LLMRELAY_DATA_DIR": str(data_dir), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "llmrelay", "serve", "--port", str(port), *args],
        env=full_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log_file.close()  # the child keeps its own descriptor
    server = Server(f"http://127.0.0.1:{port}/v1", process, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llmrelay exited: {log.read_text()}")
        try:
            if httpx2.get(f"{server.root}/health", timeout=1).status_code == 200:
                return server
        except httpx2.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"llmrelay did not start: {log.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("server"), env={"LLMRELAY_API_KEY": API_KEY})
    yield server
    stop_server(server)


@contextmanager
def configured_server(
    data_dir: Path, config_lines: list[str], env: dict[str, str] | None = None
) -> Iterator[Server]:
    """A server started with a config file made of ``config_lines``, stopped afterwards."""
    config = data_dir / "llmrelay.yaml"
    config.write_text("\n".join(config_lines) + "\n")
    server = start_server(
        data_dir, env={"LLMRELAY_API_KEY": API_KEY, **(env or {})}, args=("--config", str(config))
    )
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """A scripted OpenAI-compatible upstream on loopback (``tests/upstream.py``)."""
    with Upstream() as up:
        yield up


@pytest.fixture
def transport() -> Iterator[ValidatingTransport]:
    transport = ValidatingTransport()
    yield transport
    assert not transport.failures, "\n".join(transport.failures)


def sdk_client(server: Server, transport: ValidatingTransport) -> openai.OpenAI:
    """The official SDK pointed at ``server``, its traffic checked by ``transport``."""
    http_client = httpx2.Client(transport=transport, timeout=120)
    return openai.OpenAI(
        base_url=server.base_url, api_key=API_KEY, max_retries=0, http_client=http_client
    )


def post_chat(
    server: Server, body: bytes | dict[str, Any], key: str | None = API_KEY, timeout: float = 60
) -> httpx2.Response:
    """A raw ``POST /v1/chat/completions``, for what the SDK would not send or would hide."""
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    url = f"{server.base_url}/chat/completions"
    if isinstance(body, dict):
        return httpx2.post(url, json=body, headers=headers, timeout=timeout)
    return httpx2.post(url, content=body, headers=headers, timeout=timeout)


def admin_request(server: Server, method: str, path: str, key: str, **kw: Any) -> httpx2.Response:
    """A request to the admin API (``/admin`` + ``path``) with ``key``."""
    headers = {"authorization": f"Bearer {key}"}
    return httpx2.request(method, f"{server.root}/admin{path}", headers=headers, timeout=10, **kw)


def create_key(server: Server, admin_key: str, **settings: Any) -> dict[str, Any]:
    """A key made through the admin API (named ``k`` unless ``settings`` name it), with the
    key itself."""
    response = admin_request(server, "POST", "/keys", admin_key, json={"name": "k", **settings})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


_KEYED: list[tuple[openai.OpenAI, ValidatingTransport]] = []


def keyed_client(server: Server, key: str) -> openai.OpenAI:
    """The SDK with ``key``; what the server sends it is checked against the spec, and it is
    closed at the end of its test module."""
    transport = ValidatingTransport()
    http = httpx2.Client(transport=transport, timeout=60)
    sdk = openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, http_client=http)
    _KEYED.append((sdk, transport))
    return sdk


@pytest.fixture(autouse=True, scope="module")
def _close_keyed_clients() -> Iterator[None]:
    yield
    while _KEYED:
        sdk, transport = _KEYED.pop()
        sdk.close()
        assert not transport.failures, "\n".join(transport.failures)


@pytest.fixture
def client(server: Server, transport: ValidatingTransport) -> Iterator[openai.OpenAI]:
    with sdk_client(server, transport) as client:
        yield client


@pytest.fixture
def sdk(relay: Server, transport: ValidatingTransport) -> Iterator[openai.OpenAI]:
    """The SDK pointed at the module's own ``relay`` server."""
    with sdk_client(relay, transport) as client:
        yield client


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database of the machine's server, for this test session."""
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


def pytest_sessionstart(session: pytest.Session) -> None:
    """The tests run on the sources as they are. A compiled editable install
    (``LLMRELAY_COMPILE=1``, setup.py) builds the pipeline's modules beside their sources, where
    a change to a source leaves the old build in use until the next install."""
    src = Path(__file__).resolve().parent.parent / "src"
    built = {so.with_name(so.name.split(".")[0] + ".py"): so for so in src.rglob("*.so")}
    stale = sorted(
        str(source.relative_to(src))
        for source, so in built.items()
        if source.exists() and source.stat().st_mtime > so.stat().st_mtime
    )
    if stale:
        raise pytest.UsageError(
            f"changed since they were compiled: {', '.join(stale)}; install again"
            " (LLMRELAY_COMPILE=1 pip install -e .), or delete src/**/*.so to run the sources"
        )
