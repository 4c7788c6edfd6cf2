"""``SentenceEncoder``: a BERT sentence-embedding model (all-MiniLM-L6-v2 built in) run as a
NumPy forward pass, its weights read from safetensors and its text cut by its own tokenizer.

No PyTorch: six layers of 384 dimensions are a few matrix products a sentence, and NumPy's
(BLAS) do them for a whole batch at once, its threads outside the GIL. Mean pooling over the
tokens, then L2 normalisation, as sentence-transformers does for this model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

#: the longest input, in tokens (the model was trained on 256); longer inputs are cut
MAX_TOKENS = 256
#: sentences encoded together (sorted by length first, so that little of a batch is padding):
#: more gained nothing here, as the products are bound by the arithmetic by then
BATCH = 32


class SentenceEncoder:
    """A BERT encoder in ``directory`` (``config.json``, ``model.safetensors``,
    ``tokenizer.json``)."""

    def __init__(self, directory: Path) -> None:
        config = json.loads((directory / "config.json").read_text())
        self.dimensions = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self._w = load_file(str(directory / "model.safetensors"))
        for name in [n for n in self._w if n.endswith("dense.weight") or ".self." in n]:
            if name.endswith(".weight"):  # transposed once, for x @ w
                self._w[name] = np.ascontiguousarray(self._w[name].T)
        self.vocabulary = self._w["embeddings.word_embeddings.weight"].shape[0]
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        self._cls, self._sep = self._special("[CLS]"), self._special("[SEP]")

    def _special(self, token: str) -> int:
        found = self._tokenizer.token_to_id(token)
        if found is None:
            raise ValueError(f"the tokenizer has no {token} token")
        return found

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]

    def with_specials(self, ids: list[int]) -> list[int]:
        """Token ids given as they are, framed as the tokenizer frames text (and cut)."""
        return [self._cls, *ids[: MAX_TOKENS - 2], self._sep]

    def encode(self, sequences: list[list[int]]) -> np.ndarray:
        """One unit vector a sequence of token ids (``float32``, ``dimensions`` wide)."""
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        vectors = np.empty((len(sequences), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            vectors[batch] = self._forward([sequences[i] for i in batch])
        return vectors

    def _forward(self, sequences: list[list[int]]) -> np.ndarray:
        w, length = self._w, max(len(s) for s in sequences)
        ids = np.zeros((len(sequences), length), dtype=np.int64)
        mask = np.zeros((len(sequences), length), dtype=np.float32)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1.0
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        hide = (1.0 - mask)[:, None, None, :] * -1e9  # padding gets no attention
        for layer in range(self._layers):
            x = self._layer(x, hide, f"encoder.layer.{layer}.")
        pooled = (x * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def _layer(self, x: np.ndarray, hide: np.ndarray, at: str) -> np.ndarray:
        batch, length, width = x.shape
        heads, size = self._heads, width // self._heads

        def split(name: str) -> np.ndarray:
            projected = self._dense(x, f"{at}attention.self.{name}")
            return projected.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

        q, k, v = split("query"), split("key"), split("value")
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + hide
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
        x = self._norm(
            x + self._dense(context, f"{at}attention.output.dense"),
            f"{at}attention.output.LayerNorm",
        )
        inner = _gelu(self._dense(x, f"{at}intermediate.dense"))
        return self._norm(x + self._dense(inner, f"{at}output.dense"), f"{at}output.LayerNorm")

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        """A linear layer, as one 2-D product (NumPy's batched 3-D product is four times as
        slow, outside BLAS)."""
        weight = self._w[f"{name}.weight"]
        flat = x.reshape(-1, x.shape[-1]) @ weight + self._w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], weight.shape[1])

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        normed = (x - mean) / np.sqrt(variance + self._eps)
        return normed * self._w[f"{name}.weight"] + self._w[f"{name}.bias"]


_GELU_SCALE = math.sqrt(2 / math.pi)


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU in its tanh form, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): nine passes over
    the layer's widest array, one new array. BERT's own is x·Φ(x) with erf, which NumPy lacks:
    erf by a polynomial is several times dearer, and the vectors differ from it by far less
    than any two sentences' do."""
    inner = x * x
    inner *= 0.044715
    inner += 1.0
    inner *= x
    inner *= _GELU_SCALE
    np.tanh(inner, out=inner)
    inner += 1.0
    inner *= x
    inner *= 0.5
    return inner
