"""``LocalEmbeddingProvider``: a sentence-embedding model run in this process (NumPy), for
``/v1/embeddings`` alone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from llmrelay.errors import InvalidRequestError
from llmrelay.outcome import Outcome, Usage
from llmrelay.protocol.embeddings import EmbeddingsRequest, embeddings_answer
from llmrelay.protocol.request import ChatRequest
from llmrelay.providers.base import Call, ChunkStream, Provider


class LocalEmbeddingProvider(Provider):
    """Loads the model on its first request (some 90 MB a server that embeds nothing does not
    hold), then encodes each request's inputs as batches, one request at a time in a thread:
    NumPy's matrix products use every core already.

    >>> LocalEmbeddingProvider("all-minilm-l6-v2", embedding_model_dir())
    """

    owned_by = "llmrelay-local"
    native_apis = frozenset({"embeddings"})

    def __init__(self, model_name: str, directory: Path) -> None:
        self.model_name = model_name
        self._directory = directory
        self._encoder: Any = None  # a SentenceEncoder, once loaded
        self._turn = asyncio.Lock()

    async def relay(self, call: Call, outcome: Outcome) -> dict[str, Any] | ChunkStream:
        request: EmbeddingsRequest = call.request
        async with self._turn:
            if self._encoder is None:
                self._encoder = await asyncio.to_thread(self._load)
            encoder = self._encoder
            if request.dimensions is not None and request.dimensions != encoder.dimensions:
                raise InvalidRequestError(
                    f"This model does not support specifying dimensions other than its own "
                    f"({encoder.dimensions}).",
                    param="dimensions",
                )
            texts = request.texts()
            if texts is not None:
                sequences = await asyncio.to_thread(encoder.tokenize, texts)
            else:
                arrays = request.token_arrays()
                if bad := [t for array in arrays for t in array if t >= encoder.vocabulary]:
                    raise InvalidRequestError(
                        f"Invalid value for 'input': token id {bad[0]} is out of this model's "
                        f"vocabulary (0 to {encoder.vocabulary - 1}).",
                        param="input",
                    )
                sequences = [encoder.with_specials(array) for array in arrays]
            vectors = await asyncio.to_thread(encoder.encode, sequences)
        tokens = sum(len(s) - 2 for s in sequences)  # the input's, without [CLS] and [SEP]
        outcome.served_by(self.model_name)
        outcome.usage = Usage(tokens, 0)
        return embeddings_answer(vectors, request.encoding_format, self.model_name, tokens)

    def _load(self) -> Any:
        from llmrelay.engine.embeddings import SentenceEncoder  # NumPy: only once asked for

        return SentenceEncoder(self._directory)

    async def complete(self, request: ChatRequest, outcome: Outcome) -> dict[str, Any]:
        raise self._not_chat()

    async def stream(self, request: ChatRequest, outcome: Outcome) -> ChunkStream:
        raise self._not_chat()

    def _not_chat(self) -> InvalidRequestError:
        return InvalidRequestError(
            f"The model `{self.model_name}` is an embedding model: it answers /v1/embeddings "
            "alone.",
            param="model",
            code="model_not_supported",
        )

    def status(self) -> dict[str, Any]:
        return {"loaded": self._encoder is not None}
