"""The README's snippets for real client programs, run as written: Codex CLI, the Vercel AI
SDK, the OpenAI Agents SDK. Only the base URL and the key are changed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import API_KEY, Server, configured_server
from tests.ledger import first_row_where
from tests.upstream import MARKER, Upstream

README = Path(__file__).resolve().parents[2] / "README.md"
NODE_DIR = Path(__file__).parent / "node"
README_URL, README_KEY = "http://127.0.0.1:8000/v1", "sk-...your key..."


def snippet(name: str, server: Server) -> str:
    """The code block after ``<!-- test: name -->`` in the README, pointed at ``server``."""
    match = re.search(rf"<!-- test: {name} -->\n```\w+\n(.*?)```", README.read_text(), re.S)
    assert match, f"no snippet {name} in the README"
    code = match.group(1)
    assert README_URL in code
    return code.replace(README_URL, server.base_url).replace(README_KEY, API_KEY)


def run(args: list[str], **kwargs: object) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, done.stdout + done.stderr
    return str(done.stdout)


def test_the_openai_agents_sdk(server: Server) -> None:
    assert run([sys.executable, "-c", snippet("openai-agents", server)]).strip()


def test_the_vercel_ai_sdk(server: Server, tmp_path: Path) -> None:
    script = NODE_DIR / f"ai-sdk-{tmp_path.name}.mjs"
    script.write_text(snippet("ai-sdk", server))
    try:
        output = run(["node", str(script)], cwd=NODE_DIR)
    finally:
        script.unlink()
    assert len(output.strip().splitlines()) >= 2, "an answer, then a streamed one"


@pytest.fixture(scope="module")
def agent_relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``gpt-4o-mini`` as a scripted agent model: it reads ``marker.txt`` with the client's own
    tool, then says what it read."""
    lines = [
        "models:",
        "  - name: gpt-4o-mini",
        "    provider: openai",
        f"    base_url: {upstream.base_url}",
        "    model: agent",
    ]
    with configured_server(tmp_path_factory.mktemp("agents"), lines) as server:
        yield server


def test_codex_cli_runs_a_tool_and_answers(
    agent_relay: Server, upstream: Upstream, tmp_path: Path
) -> None:
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(snippet("codex", agent_relay))
    (work / "marker.txt").write_text(MARKER + "\n")
    upstream.workdir = work
    started = time.time()
    env = {**os.environ, "CODEX_HOME": str(home), "HOME": str(home), "LLMRELAY_API_KEY": API_KEY}
    codex = NODE_DIR / "node_modules" / ".bin" / "codex"
    output = run(
        [str(codex), "exec", "--skip-git-repo-check", "What does marker.txt say?"],
        cwd=work,
        env=env,
    )
    assert f"The marker says: {MARKER}" in output, output
    tool_results = [
        m for r in upstream.requests[-2:] for m in r.get("messages", ()) if m["role"] == "tool"
    ]
    assert any(MARKER in str(m["content"]) for m in tool_results), "Codex ran the command"
    first = first_row_where(
        agent_relay,
        "endpoint = 'responses' AND created_at >= ?",
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
    )
    assert first["completion_tokens"] == 6, "the tool call's turn"
    answered = first_row_where(agent_relay, "endpoint = 'responses' AND completion_tokens = 8")
    assert answered["status"] == 200
