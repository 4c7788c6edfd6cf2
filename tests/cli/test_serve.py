"""``llmrelay serve`` as an operator starts it: the first-start key, and a config file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx2
import pytest

from tests.conftest import start_server, stop_server
from tests.spec import validate


@pytest.fixture
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMRELAY_API_KEY", raising=False)


def models(base_url: str, key: str) -> httpx2.Response:
    return httpx2.get(f"{base_url}/models", headers={"authorization": f"Bearer {key}"}, timeout=10)


@pytest.mark.usefixtures("no_env_key")
def test_first_start_creates_one_key_and_keeps_only_its_hash(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        found = re.findall(r"sk-[A-Za-z0-9_-]{40,}", server.log.read_text())
        assert len(found) == 1
        key = found[0]
        assert models(server.base_url, key).status_code == 200
        assert models(server.base_url, key + "x").status_code == 401
    finally:
        stop_server(server)
    stored = (tmp_path / "keys.json").read_text()
    assert key not in stored
    assert oct((tmp_path / "keys.json").stat().st_mode & 0o777) == "0o600"

    again = start_server(tmp_path)
    try:
        assert "sk-" not in again.log.read_text(), "the key is printed only once"
        assert models(again.base_url, key).status_code == 200
    finally:
        stop_server(again)


@pytest.mark.usefixtures("no_env_key")
def test_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_KEY", "sk-team-" + "t" * 40)
    config = tmp_path / "llmrelay.yaml"
    config.write_text(
        "keys:\n  - ${TEAM_KEY}\n"
        "models:\n"
        "  - name: tiny\n    aliases: [gpt-4o-mini, gpt-3.5-turbo]\n"
        "    parallel: 2\n    context: 2048\n    max_output_tokens: 16\n"
    )
    server = start_server(tmp_path, args=("--config", str(config)))
    try:
        listed = models(server.base_url, os.environ["TEAM_KEY"]).json()
        assert [m["id"] for m in listed["data"]] == ["tiny", "gpt-4o-mini", "gpt-3.5-turbo"]
        answer = httpx2.post(
            f"{server.base_url}/chat/completions",
            headers={"authorization": f"Bearer {os.environ['TEAM_KEY']}"},
            json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]},
            timeout=60,
        ).json()
        validate("CreateChatCompletionResponse", answer)
        assert answer["model"] == "tiny"
        assert answer["usage"]["completion_tokens"] <= 16
        long = {"model": "tiny", "messages": [{"role": "user", "content": "hi " * 2100}]}
        refused = httpx2.post(
            f"{server.base_url}/chat/completions",
            headers={"authorization": f"Bearer {os.environ['TEAM_KEY']}"},
            json=long,
            timeout=60,
        ).json()
        validate("ErrorResponse", refused)
        assert refused["error"]["code"] == "context_length_exceeded"
        assert "2048" in refused["error"]["message"]
    finally:
        stop_server(server)
    assert "sk-team" not in server.log.read_text()


def test_a_broken_config_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("keys: [${NOT_SET_ANYWHERE}]\n")
    with pytest.raises(RuntimeError, match="NOT_SET_ANYWHERE"):
        start_server(tmp_path, args=("--config", str(config)))
