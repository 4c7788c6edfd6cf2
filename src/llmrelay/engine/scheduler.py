"""Continuous batching over llama.cpp: every active sequence advances in one ``llama_decode``.

One thread owns the llama.cpp context (it is not thread-safe). Each step it admits waiting jobs
into free sequence slots, puts one token per decoding sequence and a slice of each pending prompt
into a single batch, decodes it, and samples each sequence with its own sampler chain. Events go
back to the event loop with ``call_soon_threadsafe``, so generation never blocks the loop.
A job with ``n`` choices evaluates its prompt once and copies the KV cache to its other slots.
A finished sequence leaves its KV cache in its slot; a new job takes the free slot that shares
the longest prefix with its prompt and evaluates only the rest (a shared system prompt, or the
next turn of the same conversation, is not computed again).
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import logging
import queue
import threading
from dataclasses import dataclass, field

import llama_cpp
import numpy as np
from llama_cpp._internals import LlamaBatch, LlamaSampler

from llmrelay.engine.events import Event, Failed, Finished, TextDelta
from llmrelay.engine.model import LoadedModel
from llmrelay.engine.sampling import SamplingParams, build_sampler, token_logprobs
from llmrelay.engine.textstream import Detokenizer, StopMatcher

log = logging.getLogger(__name__)

# Tokens of one decode step: decoding sequences first, then prompt slices up to this budget.
BATCH_TOKENS = 512
# A prompt is evaluated in chunks of at most this many tokens, aligned to multiples of it. With
# more query rows llama.cpp's attention switches to kernels that round differently, so a token's
# KV cache would depend on how its prompt was split (by the cache, by other sequences): aligned
# chunks of 32 give the same numbers as one-token decoding, which keeps seeds reproducible.
PREFILL_CHUNK = 32


@dataclass(eq=False)
class Job:
    """One request: a prompt and ``n`` choices sampled from it."""

    prompt: list[int]
    n: int
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[Event]
    cancelled: threading.Event = field(default_factory=threading.Event)
    prefilled: int = 0
    cached: int = 0
    seqs: list[_Sequence] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, event)


@dataclass(eq=False)
class _Sequence:
    job: Job
    index: int
    slot: int
    sampler: LlamaSampler
    stops: StopMatcher
    detok: Detokenizer = field(default_factory=Detokenizer)
    pos: int = 0
    last: int = -1
    done: bool = False
    tokens: list[int] = field(default_factory=list)
    logit_row: int = -1
    held_logprobs: list[dict[str, object]] = field(default_factory=list)


class Scheduler:
    """Runs jobs on one llama.cpp context with ``slots`` parallel sequences."""

    def __init__(self, loaded: LoadedModel, slots: int) -> None:
        self._loaded = loaded
        self._model = loaded.model
        self._ctx = loaded.context
        self._free = collections.deque(range(slots))
        self._kv_tokens: dict[int, list[int]] = {}  # what a free slot's KV cache holds
        self._waiting: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._backlog: collections.deque[Job] = collections.deque()
        self._jobs: list[Job] = []
        self._batch = LlamaBatch(n_tokens=BATCH_TOKENS, embd=0, n_seq_max=1, verbose=False)
        self._n_vocab = self._model.n_vocab()
        self._thread = threading.Thread(target=self._run, name="llmrelay-engine", daemon=True)
        self._thread.start()

    def load(self) -> dict[str, int]:
        """How busy the engine is (read from another thread: a snapshot, not exact)."""
        running = sum(len(job.seqs) for job in list(self._jobs))
        return {"running": running, "waiting": len(self._backlog) + self._waiting.qsize()}

    def submit(self, job: Job) -> None:
        self._waiting.put(job)

    def close(self) -> None:
        self._waiting.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            if not self._take_new(block=not self._jobs and not self._backlog):
                return
            self._admit()
            self._drop_cancelled()
            if not self._jobs:
                continue
            try:
                self._step()
            except Exception as exc:  # a fault in llama.cpp fails the running jobs, not the thread
                log.exception("engine step failed")
                for job in list(self._jobs):
                    job.emit(Failed(f"the local engine failed: {exc}"))
                    self._release(job, keep_cache=False)

    def _take_new(self, block: bool) -> bool:
        try:
            job = self._waiting.get(block=block)
            while True:
                if job is None:
                    return False
                self._backlog.append(job)
                job = self._waiting.get_nowait()
        except queue.Empty:
            return True

    def _admit(self) -> None:
        while self._backlog and len(self._free) >= self._backlog[0].n:
            job = self._backlog.popleft()
            if job.cancelled.is_set():
                continue
            for index in range(job.n):
                slot = self._reuse_slot(job) if index == 0 else self._free.popleft()
                job.seqs.append(
                    _Sequence(
                        job=job,
                        index=index,
                        slot=slot,
                        sampler=build_sampler(self._model, job.params, index),
                        stops=StopMatcher(list(job.params.stop)),
                    )
                )
            self._jobs.append(job)

    def _reuse_slot(self, job: Job) -> int:
        """Take the free slot whose cache shares most of the prompt; keep that shared part."""

        def shared(slot: int) -> int:
            cached = self._kv_tokens.get(slot, ())
            n = 0
            for a, b in zip(cached, job.prompt, strict=False):
                if a != b:
                    break
                n += 1
            return n

        slot = max(self._free, key=shared)
        self._free.remove(slot)
        # at least the prompt's last token is evaluated again: its logits start the answer
        reusable = min(shared(slot), len(job.prompt) - 1)
        job.cached = job.prefilled = reusable // PREFILL_CHUNK * PREFILL_CHUNK
        self._ctx.kv_cache_seq_rm(slot, job.cached, -1)
        return slot

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._jobs if j.cancelled.is_set()]:
            self._release(job)

    def _release(self, job: Job, keep_cache: bool = True) -> None:
        prefilled = job.prefilled == len(job.prompt)
        for seq in job.seqs:
            in_cache = seq.pos if prefilled else job.prefilled if seq is job.seqs[0] else 0
            if not keep_cache:
                in_cache = 0
                self._ctx.kv_cache_seq_rm(seq.slot, -1, -1)
            self._kv_tokens[seq.slot] = (job.prompt + seq.tokens)[:in_cache]
            self._free.append(seq.slot)
        job.seqs.clear()
        self._jobs.remove(job)

    def _step(self) -> None:
        batch = self._batch.batch
        batch.n_tokens = 0
        decoding = [
            s
            for job in self._jobs
            if job.prefilled == len(job.prompt)
            for s in job.seqs
            if not s.done
        ]
        for seq in decoding:
            seq.logit_row = self._add(seq.last, seq.pos, seq.slot, logits=True)
            seq.pos += 1
        finishing: list[tuple[Job, int]] = []
        budget = BATCH_TOKENS - len(decoding)
        for job in self._jobs:
            if budget <= 0 or job.prefilled == len(job.prompt):
                continue
            start = job.prefilled
            end = min(len(job.prompt), start + budget, (start // PREFILL_CHUNK + 1) * PREFILL_CHUNK)
            last = len(job.prompt) - 1
            for pos in range(start, end):
                row = self._add(job.prompt[pos], pos, job.seqs[0].slot, logits=pos == last)
            job.prefilled, budget = end, budget - (end - start)
            if end == len(job.prompt):
                finishing.append((job, row))
        status = llama_cpp.llama_decode(self._ctx.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status}")
        for job, row in finishing:
            first = job.seqs[0]
            for seq in job.seqs:
                if seq is not first:
                    self._ctx.kv_cache_seq_cp(first.slot, seq.slot, -1, -1)
                seq.pos, seq.logit_row = len(job.prompt), row
            decoding.extend(job.seqs)
        for seq in decoding:
            self._sample(seq)
        for job in [j for j in self._jobs if all(s.done for s in j.seqs)]:
            self._release(job)

    def _add(self, token: int, pos: int, slot: int, logits: bool) -> int:
        batch = self._batch.batch
        i = batch.n_tokens
        batch.token[i] = token
        batch.pos[i] = pos
        batch.seq_id[i][0] = slot
        batch.n_seq_id[i] = 1
        batch.logits[i] = logits
        batch.n_tokens = i + 1
        return i

    def _sample(self, seq: _Sequence) -> None:
        params = seq.job.params
        token = seq.sampler.sample(self._ctx, seq.logit_row)
        if token in self._loaded.end_tokens:
            self._finish(seq, "stop")
            return
        if params.logprobs:
            pointer = llama_cpp.llama_get_logits_ith(self._ctx.ctx, seq.logit_row)
            logits = np.ctypeslib.as_array(
                ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(self._n_vocab,)
            )
            seq.held_logprobs.append(
                token_logprobs(logits, token, params.top_logprobs, self._loaded.piece)
            )
        seq.tokens.append(token)
        seq.last = token
        text, stopped = seq.stops.feed(seq.detok.feed(self._loaded.piece(token)))
        self._send(seq, text)
        if stopped:
            seq.held_logprobs.clear()
            self._finish(seq, "stop", flush=False)
        elif len(seq.tokens) >= params.max_tokens:
            self._finish(seq, "length")

    def _send(self, seq: _Sequence, text: str) -> None:
        if not text:
            return
        logprobs = None
        if seq.job.params.logprobs:
            logprobs, seq.held_logprobs = seq.held_logprobs, []
        seq.job.emit(TextDelta(seq.index, text, logprobs, len(seq.tokens)))

    def _finish(self, seq: _Sequence, reason: str, flush: bool = True) -> None:
        if flush:
            self._send(seq, seq.stops.feed(seq.detok.flush())[0] + seq.stops.flush())
        seq.job.emit(Finished(seq.index, reason, len(seq.tokens), seq.job.cached))
        seq.done = True
