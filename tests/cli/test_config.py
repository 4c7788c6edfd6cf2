"""``llmrelay config``, and a config file that cannot be used: one clear line, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from tests.conftest import API_KEY, start_server, stop_server
from tests.upstream import Upstream

LITELLM = """
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/answer
      api_base: {base_url}
      api_key: os.environ/UPSTREAM_KEY
      rpm: 100
  - model_name: gemini
    litellm_params: {{model: gemini/gemini-pro}}
router_settings:
  fallbacks: [{{"gpt-4o": ["gemini"]}}]
  cooldown_time: 12
general_settings:
  master_key: {master}
"""


def llmrelay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmrelay", *args], capture_output=True, text=True, env=env
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("keys: sk-abc\n", "Expected `array`, got `str` (at `keys`)"),
        ("server: {port: eighty}\n", "Expected `int`, got `str` (at `server.port`)"),
        ("server: {prot: 80}\n", "unknown field `prot` (at `server`)"),
        ("model_list: []\n", "import-litellm"),
        ("models: [{name: a, provider: openai}]\n", "missing required field `base_url`"),
        ("limits: {redis_failure: open}\n", "(at `limits.redis_failure`)"),
    ],
)
def test_a_config_that_cannot_be_used_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "llmrelay.yaml"
    config.write_text(text)
    result = llmrelay("config", "check", str(config))
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(RuntimeError, match="llmrelay exited") as refused:
        start_server(tmp_path, args=("--config", str(config)))
    assert message in str(refused.value) and "Traceback" not in str(refused.value)


def test_a_litellm_config_is_imported_and_served(tmp_path: Path, upstream: Upstream) -> None:
    litellm = tmp_path / "litellm.yaml"
    litellm.write_text(LITELLM.format(base_url=upstream.base_url, master=API_KEY))
    imported = tmp_path / "llmrelay.yaml"
    result = llmrelay("config", "import-litellm", str(litellm), "-o", str(imported))
    assert result.returncode == 0, result.stderr
    text = imported.read_text()
    assert "litellm_params.rpm" in text and "gemini" in text, "what is left out is listed"
    env = {"UPSTREAM_KEY": "sk-upstream-" + "k" * 30}
    server = start_server(tmp_path, env=env, args=("--config", str(imported)))
    try:
        response = httpx2.post(
            f"{server.base_url}/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {API_KEY}"},  # LiteLLM's master key
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert upstream.headers[-1]["Authorization"] == f"Bearer {env['UPSTREAM_KEY']}"
    finally:
        stop_server(server)
