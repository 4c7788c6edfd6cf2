"""``TokenCounter``: counts tokens with the built-in model's tokenizer (its vocabulary only).

Used where an upstream reports no usage: the count is the built-in tokenizer's, not the
upstream model's, so it is an estimate, and is marked as counted wherever it is kept.
"""

from __future__ import annotations

import asyncio
import functools

from llama_cpp._internals import LlamaModel

from llmrelay.engine.model import builtin_model_path, init_llama


class TokenCounter:
    def __init__(self) -> None:
        init_llama()
        params = LlamaModel.default_params()
        params.vocab_only = True  # no weights: a few MB, loaded in well under a second
        self._model = LlamaModel(path_model=str(builtin_model_path()), params=params, verbose=False)

    def count(self, text: str) -> int:
        return len(self._model.tokenize(text.encode(), add_bos=False, special=False)) if text else 0


@functools.cache
def _shared() -> TokenCounter:
    return TokenCounter()


async def count_tokens(*texts: str) -> list[int]:
    """The token count of each text, off the event loop (long prompts take milliseconds)."""
    return await asyncio.to_thread(lambda: [_shared().count(text) for text in texts])
