"""``POST /v1/embeddings``: the request (``CreateEmbeddingRequest``) and the answer's shape."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from llmrelay.errors import InvalidRequestError
from llmrelay.protocol.decoding import decode

if TYPE_CHECKING:  # NumPy (some 18 MB) only in a server that embeds
    import numpy as np

MAX_INPUTS = 2048


class EmbeddingsRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    model: str
    input: str | list[Any]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, msgspec.Meta(ge=1)] | None = None
    user: str | None = None

    def texts(self) -> list[str] | None:
        """The inputs as strings (None: they are token arrays)."""
        if isinstance(self.input, str):
            return [self.input]
        return self.input if isinstance(self.input[0], str) else None

    def token_arrays(self) -> list[list[int]]:
        """The inputs as token arrays (one array, or several)."""
        return self.input if isinstance(self.input[0], list) else [self.input]  # type: ignore[list-item,return-value]


_decoder = msgspec.json.Decoder(EmbeddingsRequest)


def parse_embeddings_request(body: bytes) -> EmbeddingsRequest:
    request = decode(_decoder, body)
    value = request.input
    if isinstance(value, str):
        if not value:
            raise _invalid("'$.input' is invalid: it is an empty string.")
        return request
    if not 1 <= len(value) <= MAX_INPUTS:
        raise _invalid(f"'$.input' must have 1 to {MAX_INPUTS} items.")
    if all(isinstance(v, str) and v for v in value):
        return request
    if all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        return request
    if all(_token_array(v) for v in value):
        return request
    raise _invalid(
        "'$.input' is invalid: a string, an array of strings (none empty), an array of token "
        "ids, or an array of such arrays."
    )


def _token_array(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    )


def _invalid(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, param="input")


def embeddings_answer(
    vectors: np.ndarray, encoding: str, model: str, prompt_tokens: int
) -> dict[str, Any]:
    """The answer of unit vectors (``float32``): each as numbers, or as the base64 of its
    little-endian floats, as OpenAI sends them."""
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": (
                base64.b64encode(vector.astype("<f4").tobytes()).decode()
                if encoding == "base64"
                else vector.tolist()
            ),
        }
        for i, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}
