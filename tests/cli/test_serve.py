"""``llmrelay serve`` as an operator starts it: the first-start key, and a config file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx2
import pytest

from tests.conftest import start_server, stop_server
from tests.spec import validate


def models(base_url: str, key: str) -> httpx2.Response:
    return httpx2.get(f"{base_url}/models", headers={"authorization": f"Bearer {key}"}, timeout=10)


@pytest.fixture
def no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMRELAY_API_KEY", raising=False)
    monkeypatch.delenv("LLMRELAY_ADMIN_KEY", raising=False)


@pytest.mark.usefixtures("no_env_keys")
def test_first_start_creates_a_key_and_the_admin_key_and_keeps_only_hashes(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path)
    try:
        log = server.log.read_text()
        assert len(re.findall(r"sk-[A-Za-z0-9_-]{40,}", log)) == 2
        key = re.search(r"Created an API key.*\n\n    (sk-\S+)", log).group(1)  # type: ignore[union-attr]
        admin = re.search(r"Created the admin key.*\n\n    (sk-\S+)", log).group(1)  # type: ignore[union-attr]
        assert models(server.base_url, key).status_code == 200
        assert models(server.base_url, key + "x").status_code == 401
        assert models(server.base_url, admin).status_code == 401, "the admin key is for /admin"
        listed = httpx2.get(
            f"{server.root}/admin/keys", headers={"authorization": f"Bearer {admin}"}
        )
        assert [k["name"] for k in listed.json()["data"]] == ["default"]
        assert key not in listed.text
    finally:
        stop_server(server)
    for stored in tmp_path.glob("llmrelay.db*"):
        assert key.encode() not in stored.read_bytes()
    assert admin not in (tmp_path / "admin_key.json").read_text()
    assert oct((tmp_path / "admin_key.json").stat().st_mode & 0o777) == "0o600"

    again = start_server(tmp_path)
    try:
        assert "sk-" not in again.log.read_text(), "the keys are printed only once"
        assert models(again.base_url, key).status_code == 200
    finally:
        stop_server(again)


@pytest.mark.usefixtures("no_env_keys")
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


@pytest.mark.usefixtures("no_env_keys")
def test_the_data_directory_is_for_its_owner_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as an earlier version left it
    (data / "admin_key.json").write_text('{"sha256": "0"}')
    (data / "admin_key.json").chmod(0o644)
    server = start_server(data)
    stop_server(server)
    assert data.stat().st_mode & 0o777 == 0o700
    files = [p for p in data.iterdir() if p.name.startswith(("llmrelay.db", "admin_key"))]
    assert any(p.name == "llmrelay.db" for p in files)
    assert {p.name: p.stat().st_mode & 0o777 for p in files} == dict.fromkeys(
        (p.name for p in files), 0o600
    )
    fresh = tmp_path / "fresh"  # made by the server
    stop_server(start_server(tmp_path, env={"LLMRELAY_DATA_DIR": str(fresh)}))
    assert fresh.stat().st_mode & 0o777 == 0o700
    assert (fresh / "llmrelay.db").stat().st_mode & 0o777 == 0o600
