"""GBNF grammars for constrained decoding: JSON mode, JSON Schema, and tool calls.

Built with llama-cpp-python's port of llama.cpp's JSON-Schema-to-grammar converter. A tool
call is written compactly as ``{"name":"NAME","arguments":ARGS}``, ARGS following that
function's ``parameters`` schema.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from llama_cpp.llama_grammar import SchemaConverter

from llmrelay.engine.prompt import TOOL_CLOSE, TOOL_OPEN
from llmrelay.protocol.request import FunctionDef

# With tool choice "auto" the grammar starts once the output opens a tool call.
AUTO_TOOL_TRIGGER = r"\s*(" + TOOL_OPEN + r"[\s\S]*)"
# A JSON string's character: the converter's rule lets control characters (a raw newline or
# tab) into strings, which strict JSON parsers (Python's json, JavaScript's JSON.parse) refuse.
_CHAR_RULE = re.compile(r"^char ::= .*$", re.MULTILINE)
_STRICT_CHAR = (
    r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] '
    r"[0-9a-fA-F] [0-9a-fA-F])"
)


class GrammarError(ValueError):
    """The schema uses something the grammar converter cannot express."""


def _converter() -> SchemaConverter:
    return SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def json_schema_grammar(schema: dict[str, Any]) -> str:
    """A grammar for JSON text valid against ``schema``."""
    converter = _converter()
    try:
        converter.visit(converter.resolve_refs(schema, "schema"), "")
    except Exception as exc:  # the converter raises bare exceptions of several kinds
        raise GrammarError(str(exc) or type(exc).__name__) from exc
    return _strict_strings(converter.format_grammar())


def json_object_grammar() -> str:
    return json_schema_grammar({"type": "object"})


def call_prefix(name: str) -> str:
    return f'{{"name":"{name}","arguments":'


def tool_call_grammar(functions: list[FunctionDef], *, tagged: bool) -> str:
    """A grammar for one call of one of ``functions``; ``tagged`` wraps it in tool-call tags."""
    converter = _converter()
    alternatives = []
    for i, function in enumerate(functions):
        schema = function.parameters or {"type": "object", "properties": {}}
        if schema.get("type") is None and "properties" not in schema:
            schema = {**schema, "type": "object"}
        try:
            rule = converter.visit(converter.resolve_refs(schema, f"tool{i}"), f"args{i}")
        except Exception as exc:
            raise GrammarError(f"tools[{i}].function.parameters: {exc}") from exc
        alternatives.append(f"{_literal(call_prefix(function.name))} {rule} {_literal('}')}")
    call = " | ".join(f"( {a} )" for a in alternatives)
    if tagged:
        root = f'{_literal(TOOL_OPEN)} "\\n"? ( {call} ) "\\n"? {_literal(TOOL_CLOSE)}'
    else:
        root = call
    return f"root ::= {root}\n{_strict_strings(converter.format_grammar())}"


def _strict_strings(grammar: str) -> str:
    return _CHAR_RULE.sub(lambda _: _STRICT_CHAR, grammar)


def _literal(text: str) -> str:
    return orjson.dumps(text).decode()
