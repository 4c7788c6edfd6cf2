"""A scripted OpenAI-compatible upstream: a real aiohttp server on loopback, in its own thread.

What it does depends on the upstream model name it is asked for (see ``SCRIPTS``); it keeps every
request body and header it received, for the tests to look at.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import threading
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tests.net import free_port

ANSWERING_MODEL = "upstream-model-2025-01-01"
#: what the agent scripts' marker.txt holds, which an agent CLI must read for them
MARKER = "llmrelay-marker-4127"
STREAM_PIECES = ["Hel", "lo", ", wor", "ld", "!"]
PIECE_DELAY = 0.05
SLOW_REST_PAUSE = 0.5


def _completion(message: dict[str, Any], finish: str) -> dict[str, Any]:
    message = {"refusal": None, **message}
    return {
        "id": "chatcmpl-upstream1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": ANSWERING_MODEL,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
    }


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
    body = {
        "id": "chatcmpl-upstream2",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": ANSWERING_MODEL,
        "choices": choices,
        **extra,
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


EMBEDDING_MODEL = "upstream-embedder-3"


def _text_completion(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "cmpl-upstream1",
        "object": "text_completion",
        "created": 1700000000,
        "model": ANSWERING_MODEL,
        "choices": choices,
        **extra,
    }


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _error(
    status: int,
    message: str,
    type_: str,
    param: str | None,
    code: str | None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


class Upstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.flaky_down = True  # what the "flaky" script does: fail while this is set
        self.headers: list[dict[str, str]] = []
        self.in_flight = self.most_in_flight = 0
        self.workdir = Path(".")  # where an agent's marker.txt is (the agent script reads it)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Upstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_route("*", "/v1/responses/{response_id:.*}", self._stored_response)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        script = SCRIPTS[body["model"]]
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await script(self, request, body)
        finally:
            self.in_flight -= 1

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's own Responses API, as a ``responses: native`` deployment reaches it."""
        body = await request.json(loads=orjson.loads)
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if body.get("stream"):
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            for piece in NATIVE_STREAM:
                await response.write(piece)
            return response
        return web.json_response(NATIVE_RESPONSE)

    async def _stored_response(self, request: web.Request) -> web.StreamResponse:
        self.requests.append({"method": request.method, "path": request.path_qs})
        if request.method == "DELETE":
            return web.json_response({"id": NATIVE_ID, "object": "response", "deleted": True})
        if request.path.endswith("/input_items"):
            listed = {"object": "list", "data": [], "first_id": None, "last_id": None}
            return web.json_response({**listed, "has_more": False})
        return web.json_response(NATIVE_RESPONSE)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's embeddings: a vector of three an input (the n-th input's first number is
        n), in the encoding asked for."""
        body = await request.json(loads=orjson.loads)
        self.requests.append(body)
        inputs = [body["input"]] if isinstance(body["input"], str) else body["input"]
        data = []
        for i in range(len(inputs)):
            vector = [float(i), 0.5, -0.25]
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack("<3f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        usage = {"prompt_tokens": 6, "total_tokens": 6}
        return web.json_response(
            {"object": "list", "data": data, "model": EMBEDDING_MODEL, "usage": usage}
        )

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's legacy completions: "Hello, world!", whole or in pieces."""
        body = await request.json(loads=orjson.loads)
        self.requests.append(body)
        usage = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
        if not body.get("stream"):
            choice = {
                "text": "Hello, world!",
                "index": 0,
                "logprobs": None,
                "finish_reason": "stop",
            }
            return web.json_response(_text_completion([choice], usage=usage))
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for piece, finish in [*((p, None) for p in STREAM_PIECES), ("", "stop")]:
            choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}
            await response.write(_data(_text_completion([choice])))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(_data(_text_completion([], usage=usage)))
        await response.write(b"data: [DONE]\n\n")
        return response

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        return await CLAUDE_SCRIPTS[body["model"]](request, body)


async def answer(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    if body.get("stream"):
        return await stream(up, request, body)
    return web.json_response(_completion({"role": "assistant", "content": "Hello, world!"}, "stop"))


#: what ``cached`` reports: most of its prompt read from the upstream's cache
CACHED_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 10,
    "total_tokens": 1010,
    "prompt_tokens_details": {"cached_tokens": 800, "audio_tokens": 0},
}


async def cached(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """An answer whose prompt was mostly cached upstream, as OpenAI reports it."""
    if body.get("stream"):
        return await stream(up, request, body, CACHED_USAGE)
    completion = _completion({"role": "assistant", "content": "Hello, world!"}, "stop")
    return web.json_response({**completion, "usage": CACHED_USAGE})


async def stream(
    up: Upstream,
    request: web.Request,
    body: dict[str, Any],
    usage: dict[str, Any] | None = None,
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    await response.write(
        _chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    )
    for piece in STREAM_PIECES:
        await asyncio.sleep(PIECE_DELAY)
        await response.write(
            _chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        )
    await response.write(_chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = usage or {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
        await response.write(_chunk([], usage=usage))
    await response.write(b"data: [DONE]\n\n")
    return response


async def slow(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """The usual answer, after half a second."""
    await asyncio.sleep(SLOW_REST_PAUSE)
    return await answer(up, request, body)


async def greedy(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """After half a second, an answer that used 100 prompt tokens and all of max_tokens."""
    await asyncio.sleep(SLOW_REST_PAUSE)
    completion = _completion({"role": "assistant", "content": "Hello, world!"}, "stop")
    used = {"prompt_tokens": 100, "completion_tokens": body["max_tokens"]}
    completion["usage"] = {**used, "total_tokens": 100 + body["max_tokens"]}
    return web.json_response(completion)


async def no_usage(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """An upstream that reports no usage, asked or not."""
    if body.get("stream"):
        return await stream(up, request, {**body, "stream_options": None})
    completion = _completion({"role": "assistant", "content": "Hello, world!"}, "stop")
    # also leaves out what vLLM and llama.cpp leave out (the schema requires them)
    del completion["usage"], completion["choices"][0]["logprobs"]
    del completion["choices"][0]["message"]["refusal"]
    return web.json_response(completion)


async def slow_rest(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """The first chunk at once, the rest after a long pause."""
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    first = {"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}
    await response.write(_chunk([first]))
    await asyncio.sleep(SLOW_REST_PAUSE)
    await response.write(_chunk([{"index": 0, "delta": {"content": "lo"}, "finish_reason": None}]))
    await response.write(_chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    await response.write(b"data: [DONE]\n\n")
    return response


async def tools_stream(
    up: Upstream, request: web.Request, body: dict[str, Any]
) -> web.StreamResponse:
    """A streamed call whose arguments come in pieces, slowly; never any usage."""
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    opening = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup"}}
    delta = {"role": "assistant", "content": None, "tool_calls": [{**opening}]}
    await response.write(_chunk([{"index": 0, "delta": delta, "finish_reason": None}]))
    for piece in ['{"query": "', "weather in ", "Paris and ", "Tokyo", '"}']:
        await asyncio.sleep(PIECE_DELAY)
        call = {"index": 0, "function": {"arguments": piece}}
        await response.write(
            _chunk([{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}])
        )
    await response.write(_chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]))
    await response.write(b"data: [DONE]\n\n")
    return response


async def endless(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """A stream that goes on for a minute, a word every tenth of a second."""
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    delta = {"role": "assistant", "content": ""}
    await response.write(_chunk([{"index": 0, "delta": delta, "finish_reason": None}]))
    word = _chunk([{"index": 0, "delta": {"content": "word "}, "finish_reason": None}])
    try:
        for _ in range(600):
            await asyncio.sleep(0.1)
            await response.write(word)
        await response.write(b"data: [DONE]\n\n")
    except ConnectionError:  # the gateway went away (it stopped, or was killed)
        pass
    return response


async def cut(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    await response.write(
        _chunk(
            [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}]
        )
    )
    assert request.transport is not None
    request.transport.close()
    return response


async def tools(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    calls = [
        {
            "id": f"call_{city}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": orjson.dumps({"city": city}).decode()},
        }
        for city in ("Paris", "Tokyo")
    ]
    return web.json_response(
        _completion({"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls")
    )


async def limited(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    return _error(
        429,
        "Rate limit reached for requests",
        "requests",
        None,
        "rate_limit_exceeded",
        {"retry-after": "7", "retry-after-ms": "7000"},
    )


async def bad_param(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    return _error(
        400,
        "Unsupported value: 'temperature'",
        "invalid_request_error",
        "temperature",
        "unsupported_value",
    )


async def broken(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    return web.Response(status=500, text="internal error at upstream-secret-host")


async def refuses_key(
    up: Upstream, request: web.Request, body: dict[str, Any]
) -> web.StreamResponse:
    return _error(
        401,
        "Incorrect API key provided: sk-upst***cret.",
        "invalid_request_error",
        None,
        "invalid_api_key",
    )


async def echo_key(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """An upstream whose error message echoes the credential it got (some do)."""
    received = request.headers.get("authorization", "")
    return _error(
        400, f"Key not valid for this model: {received}", "invalid_request_error", None, None
    )


async def flaky(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    if up.flaky_down:
        return web.Response(status=503, text="down for now")
    return await answer(up, request, body)


async def odd(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """An answer whose model is no string and whose usage counts are no numbers."""
    oddities = {"model": 123, "usage": {"prompt_tokens": "nine", "completion_tokens": [5]}}
    if not body.get("stream"):
        completion = _completion({"role": "assistant", "content": "Hello, world!"}, "stop")
        return web.json_response({**completion, **oddities})
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    delta = {"role": "assistant", "content": "Hello"}
    await response.write(_chunk([{"index": 0, "delta": delta, "finish_reason": None}], **oddities))
    await response.write(_chunk([], **oddities))
    await response.write(b"data: [DONE]\n\n")
    return response


async def max_tokens(
    up: Upstream, request: web.Request, body: dict[str, Any]
) -> web.StreamResponse:
    """Says back the max_tokens it was asked for."""
    asked = body.get("max_tokens", body.get("max_completion_tokens"))
    return web.json_response(_completion({"role": "assistant", "content": str(asked)}, "stop"))


async def hang(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    await asyncio.sleep(10)
    return web.json_response({})


async def agent(up: Upstream, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """An agent's model, as Codex CLI and Claude Code meet it: asked with tools and no tool
    result yet, it calls the client's tool that reads files (or runs commands) to read
    ``marker.txt``; given the result, it answers with what the result said. Asked without
    tools (a client's side questions: a title, a summary), it answers in a word."""
    results = [m for m in body["messages"] if m["role"] == "tool"]
    if results:
        said = results[-1]["content"]
        said = said if isinstance(said, str) else "".join(p.get("text", "") for p in said)
        return await _stream_text(request, f"The marker says: {MARKER if MARKER in said else '?'}")
    if not body.get("tools"):
        return await _stream_text(request, "Marker")
    tools = {t["function"]["name"]: t["function"] for t in body["tools"]}
    tool = next((tools[n] for n in ("Read", "Bash") if n in tools), body["tools"][0]["function"])
    command = "cat marker.txt"
    parameters = str(tool.get("parameters"))
    arguments = {"cmd": command} if "cmd" in parameters else {"command": command}
    if "file_path" in parameters:
        arguments = {"file_path": str(up.workdir / "marker.txt")}
    return await _stream_call(request, tool["name"], orjson.dumps(arguments).decode())


async def _stream_text(request: web.Request, text: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    delta = {"role": "assistant", "content": text}
    await response.write(_chunk([{"index": 0, "delta": delta, "finish_reason": None}]))
    await response.write(_chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    usage = {"prompt_tokens": 50, "completion_tokens": 8, "total_tokens": 58}
    await response.write(_chunk([], usage=usage))
    await response.write(b"data: [DONE]\n\n")
    return response


async def _stream_call(request: web.Request, name: str, arguments: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    opening = {"index": 0, "id": "call_agent1", "type": "function"}
    opening["function"] = {"name": name, "arguments": ""}
    delta = {"role": "assistant", "content": None, "tool_calls": [opening]}
    await response.write(_chunk([{"index": 0, "delta": delta, "finish_reason": None}]))
    for piece in (arguments[:5], arguments[5:]):
        call = {"index": 0, "function": {"arguments": piece}}
        await response.write(
            _chunk([{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}])
        )
    await response.write(_chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]))
    usage = {"prompt_tokens": 40, "completion_tokens": 6, "total_tokens": 46}
    await response.write(_chunk([], usage=usage))
    await response.write(b"data: [DONE]\n\n")
    return response


SCRIPTS: dict[
    str, Callable[[Upstream, web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]
] = {
    "answer": answer,
    "cached": cached,
    "cut": cut,
    "endless": endless,
    "no-usage": no_usage,
    "slow": slow,
    "greedy": greedy,
    "tools-stream": tools_stream,
    "slow-rest": slow_rest,
    "tools": tools,
    "limited": limited,
    "bad-param": bad_param,
    "broken": broken,
    "refuses-key": refuses_key,
    "echo-key": echo_key,
    "agent": agent,
    "max-tokens": max_tokens,
    "hang": hang,
    "flaky": flaky,
    "odd": odd,
}


CLAUDE_MODEL = "claude-test-20250101"
CLAUDE_USAGE = {"input_tokens": 21, "output_tokens": 7}


#: what ``claude-cached`` reports: a prompt mostly read from Anthropic's cache, part written
CLAUDE_CACHED_USAGE = {
    "input_tokens": 100,
    "cache_read_input_tokens": 800,
    "cache_creation_input_tokens": 200,
    "output_tokens": 10,
}


def _claude_message(
    content: list[dict[str, Any]], stop_reason: str, usage: dict[str, int] = CLAUDE_USAGE
) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": CLAUDE_MODEL,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def _event(data: dict[str, Any]) -> bytes:
    return b"event: " + data["type"].encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _claude_stream(
    request: web.Request, blocks: list[dict[str, Any]], stop: str
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    start = _claude_message([], stop)
    start["stop_reason"], start["usage"] = None, {"input_tokens": 21, "output_tokens": 1}
    await response.write(_event({"type": "message_start", "message": start}))
    await response.write(_event({"type": "ping"}))
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            await response.write(
                _event(
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    }
                )
            )
            for piece in STREAM_PIECES:
                await response.write(
                    _event(
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": piece},
                        }
                    )
                )
        else:
            opening = {**block, "input": {}}
            await response.write(
                _event({"type": "content_block_start", "index": index, "content_block": opening})
            )
            text = orjson.dumps(block["input"]).decode()
            for part in (text[:5], text[5:]):
                await response.write(
                    _event(
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": part},
                        }
                    )
                )
        await response.write(_event({"type": "content_block_stop", "index": index}))
    await response.write(
        _event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 7},
            }
        )
    )
    await response.write(_event({"type": "message_stop"}))
    return response


CLAUDE_TEXT = [{"type": "text", "text": "".join(STREAM_PIECES)}]
CLAUDE_CALLS = [
    {"type": "text", "text": "".join(STREAM_PIECES)},
    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
    {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "Tokyo"}},
]


async def claude_answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    if body.get("stream"):
        return await _claude_stream(request, CLAUDE_TEXT, "end_turn")
    return web.json_response(_claude_message(CLAUDE_TEXT, "end_turn"))


async def claude_tools(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    if body.get("stream"):
        return await _claude_stream(request, CLAUDE_CALLS, "tool_use")
    return web.json_response(_claude_message(CLAUDE_CALLS, "tool_use"))


async def claude_cached(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    return web.json_response(_claude_message(CLAUDE_TEXT, "end_turn", CLAUDE_CACHED_USAGE))


async def claude_overloaded(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    return web.json_response(error, status=529)


CLAUDE_SCRIPTS: dict[
    str, Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]
] = {
    "claude-answer": claude_answer,
    "claude-tools": claude_tools,
    "claude-cached": claude_cached,
    "claude-overloaded": claude_overloaded,
}


def relay_models(upstream: Upstream, scripts: Iterable[str], *settings: str) -> list[str]:
    """Config lines: a model ``relay-<script>`` relayed to each script, with ``settings``."""
    lines = ["models:"]
    for name in scripts:
        assert name in SCRIPTS, name
        lines += [
            f"  - name: relay-{name}",
            "    provider: openai",
            f"    base_url: {upstream.base_url}",
            f"    model: {name}",
            *(f"    {setting}" for setting in settings),
        ]
    return lines


NATIVE_ID = "resp_native0000000000000000000000000000000000000000"
NATIVE_RESPONSE = {
    "id": NATIVE_ID,
    "object": "response",
    "created_at": 1754925861,
    "status": "completed",
    "background": False,
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "model": "gpt-5-native-2025",
    "output": [
        {
            "id": "rs_native1",
            "type": "reasoning",
            "summary": [],
            "encrypted_content": "gAAAA-opaque",
        },
        {
            "id": "msg_native1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hi!"}],
        },
    ],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": "medium", "summary": None},
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto",
    "tools": [{"type": "web_search"}],
    "top_p": 1.0,
    "truncation": "disabled",
    "usage": {
        "input_tokens": 31,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 12,
        "output_tokens_details": {"reasoning_tokens": 9},
        "total_tokens": 43,
    },
    "metadata": {},
}


def _native_event(number: int, kind: str, **fields: Any) -> bytes:
    data = orjson.dumps({"type": kind, "sequence_number": number, **fields})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


#: a native stream, as written (its second write splits an event in two)
_NATIVE_EVENTS = b"".join(
    [
        _native_event(0, "response.created", response={**NATIVE_RESPONSE, "status": "in_progress"}),
        _native_event(
            1,
            "response.output_item.added",
            output_index=0,
            item={"id": "msg_native1", "type": "message", "status": "in_progress"}
            | {"role": "assistant", "content": []},
        ),
        _native_event(
            2,
            "response.output_text.delta",
            item_id="msg_native1",
            output_index=0,
            content_index=0,
            delta="Hi!",
            logprobs=[],
        ),
        _native_event(3, "response.completed", response=NATIVE_RESPONSE),
    ]
)
NATIVE_STREAM = [_NATIVE_EVENTS[:100], _NATIVE_EVENTS[100:700], _NATIVE_EVENTS[700:]]
