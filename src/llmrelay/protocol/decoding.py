"""``decode``: a request body into its validated type, once, at the edge, with msgspec; what is
wrong with it an ``InvalidRequestError`` naming the parameter, as OpenAI does."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from llmrelay.errors import InvalidRequestError
from llmrelay.protocol.nesting import check_depth, deepest_param, may_be_too_deep, nested_too_deep

T = TypeVar("T", bound=msgspec.Struct)
_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_FIELD = re.compile(r"(?:missing required|unknown) field `(?P<field>[^`]+)`")
NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
)


def decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """Decode and validate a request body; a 400 naming the param if it is not what it must be
    (JSON nested too deep included)."""
    try:
        request = decoder.decode(body)
    except RecursionError as exc:
        raise nested_too_deep(deepest_param(body)) from exc
    except msgspec.ValidationError as exc:
        raise validation_error(str(exc)) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(NOT_JSON) from exc
    if may_be_too_deep(body):
        check_depth(request)
    return request


def validation_error(detail: str, prefix: str = "") -> InvalidRequestError:
    """msgspec's validation message as OpenAI's 400; ``prefix``: the path of what was
    validated, within the request."""
    match = _PATH.search(detail)
    # msgspec writes a mapping's value as `[...]`; OpenAI names the mapping itself
    path = match.group("path").replace("[...]", "") if match else ""
    detail = detail[: match.start()] if match else detail
    field = _FIELD.search(detail)
    if field:
        path = f"{path}.{field.group('field')}" if path else field.group("field")
    if prefix:
        path = f"{prefix}{'' if not path or path.startswith('[') else '.'}{path}"
    param = path or None
    if detail.startswith("Object contains unknown field") and param and "." not in param:
        return InvalidRequestError(f"Unrecognized request argument supplied: {param}", param=param)
    if detail.startswith("Object missing required field"):
        return InvalidRequestError(f"Missing required parameter: '{param}'.", param=param)
    return InvalidRequestError(f"Invalid value for '{param}': {detail}", param=param)
