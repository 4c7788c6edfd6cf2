"""The examples of the API documentation (../shared/doc/chat-completions-api.txt), run as written.

Only the base URL and the key are changed, as the page tells its readers to. The page's text
lost the indentation of its Python example; it is restored by one rule (a line after a line
ending in ':' goes one level deeper) and nothing else is touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import API_KEY, Server
from tests.spec import SPEC_DIR, sse_payloads, validate

DOC = SPEC_DIR.parent / "doc" / "chat-completions-api.txt"
NODE_DIR = Path(__file__).parent / "node"
DOC_URL, DOC_KEY = "https://api.nextapi.pro/v1", "sk-你的密钥"


def _between(text: str, start: str, end: str) -> str:
    begin = text.index(start) + len(start)
    return text[begin : text.index(end, begin)]


def _example(server: Server, start: str, end: str) -> str:
    code = _between(DOC.read_text(), start, end)
    assert DOC_URL in code and DOC_KEY in code
    return code.replace(DOC_URL, server.base_url).replace(DOC_KEY, API_KEY)


def _reindent(code: str) -> str:
    lines, depth = [], 0
    for line in code.splitlines():
        lines.append("    " * depth + line)
        if line.rstrip().endswith(":"):
            depth += 1
    return "\n".join(lines) + "\n"


def _run(args: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_python_example(server: Server) -> None:
    code = _reindent(_example(server, "Python\npython\n", "Node.js\njavascript"))
    output = _run([sys.executable, "-c", code])
    assert output.strip()


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "openai").exists():
        pytest.fail("node and the openai npm package are needed: run `npm ci` in tests/docs/node")
    return node


@pytest.mark.parametrize("call", ["chat();", "streamChat();"])
def test_node_example(server: Server, node: str, tmp_path: Path, call: str) -> None:
    # The page defines chat() and streamChat() but calls only chat(); both are run.
    code = _example(server, "Node.js\njavascript\n", "cURL\nbash")
    assert code.rstrip().endswith("chat();")
    script = NODE_DIR / f"example-{tmp_path.name}.js"
    script.write_text(code.rstrip().removesuffix("chat();") + call + "\n")
    try:
        output = _run([node, str(script)], cwd=NODE_DIR)
    finally:
        script.unlink()
    assert output.strip()


def test_curl_examples(server: Server) -> None:
    commands = _example(server, "cURL\nbash\n", "错误处理").split("# 流式请求")
    normal, streaming = (c.replace("# 普通请求", "") for c in commands)
    body = json.loads(_run(["bash", "-c", normal]))
    validate("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["content"]
    payloads = sse_payloads(_run(["bash", "-c", streaming]).encode())
    assert payloads[-1] == "[DONE]"
    for payload in payloads[:-1]:
        validate("CreateChatCompletionStreamResponse", json.loads(payload))
