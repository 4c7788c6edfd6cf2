"""How deep free-form JSON may nest: deeper is a 400 naming the parameter, never a recursion
error further on (a JSON encoder, the grammar converter and the database's JSON columns all
recurse, and each has its own, lower, limit)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec

from llmrelay.errors import InvalidRequestError

#: the deepest a value may nest: far beyond any JSON Schema or metadata seen in practice
MAX_DEPTH = 64
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"\s*:?|[\[\]{}]')


def may_be_too_deep(body: bytes) -> bool:
    """Whether a body has enough brackets to nest past ``MAX_DEPTH`` (a cheap count first: a
    body that cannot nest that deep is not looked at again)."""
    return body.count(b"{") + body.count(b"[") > MAX_DEPTH


def too_deep(value: object, depth: int = 0) -> bool:
    """Whether a decoded value nests deeper than ``MAX_DEPTH``."""
    if depth > MAX_DEPTH:
        return True
    if isinstance(value, dict):
        return any(too_deep(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return any(too_deep(v, depth + 1) for v in value)
    return False


def check_depth(request: msgspec.Struct) -> None:
    """A 400 naming the first free-form field of a decoded request that nests too deep."""
    for param, value in _free_form(request, ""):
        if too_deep(value):
            raise nested_too_deep(param)


def _free_form(value: object, path: str) -> Iterator[tuple[str, Any]]:
    """The free-form JSON values (dicts and lists of no struct) within a request, by path."""
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            yield from _free_form(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, list) and any(isinstance(item, msgspec.Struct) for item in value):
        for i, item in enumerate(value):
            yield from _free_form(item, f"{path}[{i}]")
    elif isinstance(value, dict | list):
        yield path, value


def deepest_param(body: bytes) -> str | None:
    """The top-level field of a JSON object body that nests past ``MAX_DEPTH``, found without
    decoding it (for a body too deep to decode)."""
    depth, key = 0, None
    for match in _TOKENS.finditer(body):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
            if depth > MAX_DEPTH + 1:
                return key
        elif token in (b"}", b"]"):
            depth -= 1
        elif depth == 1 and token.endswith(b":"):
            key = token[1 : token.rindex(b'"')].decode(errors="replace")
    return None


def nested_too_deep(param: str | None) -> InvalidRequestError:
    where = f"'{param}'" if param else "the body"
    return InvalidRequestError(
        f"Invalid value for {where}: JSON nested deeper than {MAX_DEPTH} levels.", param=param
    )
