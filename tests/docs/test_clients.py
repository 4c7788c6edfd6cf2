"""The README's snippets for real client programs, run as written: Codex CLI, Claude Code, the
Vercel AI SDK, the OpenAI Agents SDK, LangChain's embeddings and LlamaIndex. Only the base URL
and the key are changed."""

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

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
NODE_DIR = Path(__file__).parent / "node"
#: LlamaIndex wants openai<3 and the Agents SDK openai>=3: scripts/test gives it a venv of its own
LLAMAINDEX_PYTHON = ROOT / ".venv-llamaindex" / "bin" / "python"
README_ROOT, README_KEY = "http://127.0.0.1:8000", "sk-...your key..."


def snippet(name: str, server: Server) -> str:
    """The code block after ``<!-- test: name -->`` in the README, pointed at ``server``."""
    match = re.search(rf"<!-- test: {name} -->\n```\w+\n(.*?)```", README.read_text(), re.S)
    assert match, f"no snippet {name} in the README"
    code = match.group(1)
    assert README_ROOT in code
    return code.replace(README_ROOT, server.root).replace(README_KEY, API_KEY)


def run(args: list[str], **kwargs: object) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, done.stdout + done.stderr
    return str(done.stdout)


def test_the_openai_agents_sdk(server: Server) -> None:
    assert run([sys.executable, "-c", snippet("openai-agents", server)]).strip()


def test_langchains_embeddings(server: Server) -> None:
    printed = run([sys.executable, "-c", snippet("langchain-embeddings", server)]).split()
    assert printed == ["2", "384", "384"]


def test_llamaindex_completes_through_the_legacy_api(server: Server) -> None:
    assert LLAMAINDEX_PYTHON.exists(), "scripts/test installs LlamaIndex in .venv-llamaindex"
    started = time.time()
    assert run([str(LLAMAINDEX_PYTHON), "-c", snippet("llamaindex", server)]).strip()
    row = first_row_where(
        server,
        "endpoint = 'completions' AND created_at >= ?",
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
    )
    assert row["status"] == 200 and 0 < row["completion_tokens"] <= 20


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
    tool, then says what it read; Claude's model names reach it by ``model_map``."""
    lines = [
        "models:",
        "  - name: gpt-4o-mini",
        "    provider: openai",
        f"    base_url: {upstream.base_url}",
        "    model: agent",
        "model_map:",
        '  "claude-*": gpt-4o-mini',
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


def test_claude_code_runs_a_tool_and_answers(
    agent_relay: Server, upstream: Upstream, tmp_path: Path
) -> None:
    home, work = tmp_path / "claude-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (work / "marker.txt").write_text(MARKER + "\n")
    upstream.workdir = work
    started = time.time()
    path = f"{NODE_DIR / 'node_modules' / '.bin'}:{os.environ['PATH']}"
    env = {**os.environ, "HOME": str(home), "PATH": path}
    output = run(["bash", "-c", snippet("claude-code", agent_relay)], cwd=work, env=env)
    assert f"The marker says: {MARKER}" in output, output
    results = [m for r in upstream.requests[-2:] for m in r["messages"] if m["role"] == "tool"]
    assert any(MARKER in str(m["content"]) for m in results), "Claude Code read the file"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started))
    call = first_row_where(agent_relay, "endpoint = 'messages' AND created_at >= ?", since)
    assert call["model_requested"].startswith("claude-") and call["completion_tokens"] == 6
    answered = first_row_where(
        agent_relay, "endpoint = 'messages' AND completion_tokens = 8 AND created_at >= ?", since
    )
    assert answered["status"] == 200
