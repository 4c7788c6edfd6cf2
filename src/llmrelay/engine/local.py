"""``LocalEngine``: the built-in model behind an async interface, one call per request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from llmrelay.engine.events import Event, Failed, Finished
from llmrelay.engine.model import LoadedModel
from llmrelay.engine.prompt import ChatTemplate
from llmrelay.engine.sampling import SamplingParams
from llmrelay.engine.scheduler import Job, Scheduler


class EngineError(RuntimeError):
    """The engine failed while generating."""


class LocalEngine:
    """Loads a GGUF once and decodes every request on it, batched.

    >>> engine = LocalEngine(builtin_model_path(), slots=8)
    >>> async for event in engine.generate(tokens, 1, SamplingParams(max_tokens=16)): ...
    """

    def __init__(
        self, path: Path, *, slots: int = 8, context: int | None = None, threads: int | None = None
    ) -> None:
        self.loaded = LoadedModel(path, slots=slots, context=context, threads=threads)
        self.template = ChatTemplate(self.loaded.chat_template, self.loaded.bos, self.loaded.eos)
        self._scheduler = Scheduler(self.loaded, slots)

    @property
    def context_length(self) -> int:
        return self.loaded.context_length

    @property
    def slots(self) -> int:
        return self.loaded.slots

    @property
    def n_vocab(self) -> int:
        return self.loaded.model.n_vocab()

    def load(self) -> dict[str, int]:
        return self._scheduler.load()

    def tokenize(self, text: str) -> list[int]:
        return self.loaded.tokenize(text)

    def detokenize(self, tokens: list[int]) -> str:
        return b"".join(map(self.loaded.piece, tokens)).decode(errors="replace")

    async def generate(
        self, prompt: list[int], n: int, params: SamplingParams
    ) -> AsyncIterator[Event]:
        """Yield the events of ``n`` choices until all have finished.

        Leaving the iteration early (a client that went away) cancels the generation.
        """
        job = Job(
            prompt=prompt,
            n=n,
            params=params,
            loop=asyncio.get_running_loop(),
            events=asyncio.Queue(),
        )
        self._scheduler.submit(job)
        remaining = n
        try:
            while remaining:
                event = await job.events.get()
                if isinstance(event, Failed):
                    raise EngineError(event.message)
                if isinstance(event, Finished):
                    remaining -= 1
                yield event
        finally:
            job.cancelled.set()

    def close(self) -> None:
        self._scheduler.close()
        self.loaded.close()
