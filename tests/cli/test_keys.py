"""``llmrelay keys``: what an operator types, and a server on the same store honouring it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from tests.conftest import start_server, stop_server
from tests.net import free_port


def llmrelay(data_dir: Path, *args: str) -> str:
    env = {**os.environ, "LLMRELAY_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "llmrelay", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_keys_from_the_command_line(tmp_path: Path) -> None:
    created = llmrelay(
        tmp_path, "keys", "create", "ci-bot", "--models", "gpt-4o-mini", "--rpm", "30"
    )
    key = re.search(r"^\s+(sk-\S{40,})$", created, re.M).group(1)  # type: ignore[union-attr]
    key_id = re.search(r"(key_[0-9a-f]+)\s+ci-bot", created).group(1)  # type: ignore[union-attr]
    listed = llmrelay(tmp_path, "keys", "list")
    assert "ci-bot" in listed and "gpt-4o-mini" in listed and key not in listed
    assert key[:8] in listed, "the display prefix tells keys apart"
    updated = llmrelay(
        tmp_path,
        "keys",
        "update",
        key_id,
        "--tpm",
        "5000",
        "--budget",
        "100000",
        "--budget-usd",
        "12.5",
    )
    assert re.search(
        r"ci-bot\s+\S+\s+active\s+gpt-4o-mini\s+30\s+5000\s+100000\s+12.5\s+total", updated
    )

    server = start_server(tmp_path)
    try:
        headers = {"authorization": f"Bearer {key}"}
        models = httpx2.get(f"{server.base_url}/models", headers=headers, timeout=10)
        assert [m["id"] for m in models.json()["data"]] == ["gpt-4o-mini"]
        answer = httpx2.post(
            f"{server.base_url}/chat/completions",
            headers=headers,
            # a short answer: the test is of keys and usage, not of how long the model talks
            json={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 16,
            },
            timeout=60,
        ).json()
        assert "revoked" in llmrelay(tmp_path, "keys", "revoke", key_id)
        assert "revoked" in llmrelay(tmp_path, "keys", "show", key_id)
    finally:
        stop_server(server)
    again = start_server(tmp_path)
    try:
        refused = httpx2.get(f"{again.base_url}/models", headers=headers, timeout=10)
        assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    finally:
        stop_server(again)
    usage = llmrelay(tmp_path, "usage", "--key", key_id)
    total = answer["usage"]["total_tokens"]
    # requests, errors, prompt, cached, completion, total tokens, cost (the built-in model's: 0)
    assert re.search(
        rf"^total\s+1\s+0\s+\d+\s+\d+\s+\d+\s+{total}\s+0\.000000000\s+0$", usage, re.M
    ), usage
    assert re.search(
        r"^total(\s+0){6}\s+0\.000000000\s+0$",
        llmrelay(tmp_path, "usage", "--since", "2099-01-01"),
        re.M,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rpm", "0"], "rpm must be a whole number from 1"),
        (["--expires", "tomorrow"], "Invalid value for --expires"),
        (["--metadata", "{nope"], "Invalid value for --metadata: not JSON"),
    ],
)
def test_a_bad_setting_is_a_one_line_error(tmp_path: Path, args: list[str], message: str) -> None:
    env = {**os.environ, "LLMRELAY_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "llmrelay", "keys", "create", "x", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and message in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_store_is_a_one_line_error(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LLMRELAY_DATA_DIR": str(tmp_path),
        "LLMRELAY_DATABASE_URL": f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/x",
    }
    done = subprocess.run(
        [sys.executable, "-m", "llmrelay", "keys", "list"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1 and "the key store cannot be used" in done.stderr
    assert "Traceback" not in done.stderr
