"""The embedding model and the text it is given: what similarity merges, and what it must not."""

import json
from pathlib import Path

from django.conf import settings

from apps.incidents import embeddings

PAIRS = json.loads((Path(__file__).parent / "data" / "similar_pairs.json").read_text())["pairs"]
# Vectors of the float32 model under sentence-transformers (torch), which the int8 ONNX one replaced.
REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference_vectors.json").read_text())


def similarity(a: str, b: str) -> float:
    va, vb = embeddings.embed([embeddings.normalise(a), embeddings.normalise(b)])
    return sum(x * y for x, y in zip(va, vb))


def test_normalise_masks_numbers_and_ids_but_keeps_names():
    assert embeddings.normalise("Disk 95.5% full on postgres-1", "pod api-7f9c3e2a1b") == "disk #% full on postgres-#. pod api-#"


def test_the_bundled_model_at_the_default_threshold_merges_no_different_problems():
    merged = [(a, b) for a, b, label in PAIRS if label == "different" and similarity(a, b) >= settings.SIMILARITY_THRESHOLD]
    assert merged == []


def test_the_bundled_model_merges_rewordings_that_share_their_words():
    found = [(a, b) for a, b, label in PAIRS if label == "same" and similarity(a, b) >= settings.SIMILARITY_THRESHOLD]
    assert len(found) >= 10  # 11 of 22 when written; the rest are free paraphrases (docs/adr/0004)
    assert ("Disk almost full on postgres-1", "Disk almost full on postgres-2") in found


def test_vectors_are_unit_length_with_the_schema_dimensions():
    [vector] = embeddings.embed(["gpu memory above #% on gpu-#"])
    assert len(vector) == 384
    assert abs(sum(x * x for x in vector) - 1) < 1e-4


def test_the_int8_model_gives_the_vectors_of_the_float32_sentence_transformers_model():
    vectors = embeddings.embed(REFERENCE["texts"])
    for text, ours, reference in zip(REFERENCE["texts"], vectors, REFERENCE["vectors"]):
        assert sum(x * y for x, y in zip(ours, reference)) > 0.999, text


def test_a_batch_gives_each_text_the_vector_it_gets_alone():
    """Texts of a batch are padded to the longest; the padding must not leak into the mean."""
    short, long = "disk full", "certificate for api.example.org expires in # days on the edge proxies"
    alone = embeddings.embed([short])[0]
    batched = embeddings.embed([short, long])[0]
    assert sum(x * y for x, y in zip(alone, batched)) > 0.99999
