"""Reading tool calls out of streamed text."""

from __future__ import annotations

from llmrelay.engine.toolcalls import ToolCallReader
from llmrelay.protocol.accumulate import MessageBuilder


def read(mode: str, pieces: list[str]) -> tuple[dict, bool, list[dict]]:
    reader, builder, deltas = ToolCallReader(mode), MessageBuilder(), []
    for piece in pieces:
        deltas += reader.feed(piece)
    deltas += reader.finish()
    for delta in deltas:
        builder.add(delta)
    return builder.message(), reader.called, deltas


def test_forced_call_streams_name_once_then_fragments() -> None:
    pieces = ['{"name":"get_', 'weather","arguments":{"ci', 'ty": "Pa', 'ris"}', "}"]
    message, called, deltas = read("call", pieces)
    assert called
    assert message["content"] is None
    assert message["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    heads = [d for d in deltas if "id" in d["tool_calls"][0]]
    assert len(heads) == 1


def test_auto_call_in_tags() -> None:
    pieces = ["<tool", '_call>\n{"name":"f","arguments":{}}', "\n</tool_call>"]
    message, called, _ = read("auto", pieces)
    assert called
    assert message["tool_calls"][0]["function"]["arguments"] == "{}"


def test_auto_text_is_content() -> None:
    message, called, _ = read("auto", ["<", "b>bold</b>"])
    assert not called
    assert message["content"] == "<b>bold</b>"


def test_text_mode_passes_through() -> None:
    message, called, _ = read("text", ["<tool_call>", "x"])
    assert message["content"] == "<tool_call>x" and not called


def cut_short(mode: str, pieces: list[str]) -> list[dict]:
    reader, deltas = ToolCallReader(mode, ("get_weather", "get_time")), []
    for piece in pieces:
        deltas += reader.feed(piece)
    return deltas + reader.finish("length")


def test_a_call_cut_within_its_name_is_named_for_what_it_was_becoming() -> None:
    for pieces, name in (
        [[], "get_weather"],
        [['{"na'], "get_weather"],
        [['{"name":"get_t'], "get_time"],
    ):
        (delta,) = cut_short("call", pieces)
        assert delta["tool_calls"][0]["function"] == {"name": name, "arguments": ""}
    (delta,) = cut_short("auto", ["<tool_call>\n", '{"name":"get_ti'])
    assert delta["tool_calls"][0]["function"]["name"] == "get_time"


def test_a_call_cut_within_its_arguments_keeps_all_of_them() -> None:
    builder = MessageBuilder()
    for delta in cut_short("call", ['{"name":"get_weather","arguments":{"a":{"b":1}']):
        builder.add(delta)
    assert builder.message()["tool_calls"][0]["function"]["arguments"] == '{"a":{"b":1}'
