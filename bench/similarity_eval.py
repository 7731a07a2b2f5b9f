"""How well an embedding backend tells the same problem from a different one.

    make bench-similarity                      # the configured backend (MiniLM by default)
    make bench-similarity ARGS=--all           # every bundled backend, side by side

Reads tests/data/similar_pairs.json (alert titles labelled "same" or "different"),
embeds each title as similarity does (embeddings.normalise), and prints, at the
merge threshold (SIMILARITY_THRESHOLD, 0.85 by default) and at the best threshold
for these pairs: merges found (recall), wrong merges, and the similarity of every
pair, so a team can choose its services' thresholds.
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from apps.incidents import embeddings  # noqa: E402

BACKENDS = ["apps.incidents.embeddings.MiniLM", "apps.incidents.embeddings.Hashing"]
PAIRS = Path(__file__).resolve().parent.parent / "tests" / "data" / "similar_pairs.json"


def scores(backend_path: str, pairs) -> list[float]:
    backend = import_string(backend_path)()
    texts = sorted({embeddings.normalise(t) for a, b, _ in pairs for t in (a, b)})
    vectors = dict(zip(texts, backend.embed(texts)))
    return [sum(x * y for x, y in zip(vectors[embeddings.normalise(a)], vectors[embeddings.normalise(b)])) for a, b, _ in pairs]


def at(threshold, sims, labels):
    merged = [s >= threshold for s in sims]
    found = sum(m and label == "same" for m, label in zip(merged, labels))
    wrong = sum(m and label == "different" for m, label in zip(merged, labels))
    return found, wrong


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="every bundled backend")
    parser.add_argument("-v", action="store_true", help="print every pair")
    args = parser.parse_args()
    pairs = json.loads(PAIRS.read_text())["pairs"]
    labels = [label for _, _, label in pairs]
    same = labels.count("same")
    for backend in BACKENDS if args.all else [settings.EMBEDDING_BACKEND]:
        sims = scores(backend, pairs)
        found, wrong = at(settings.SIMILARITY_THRESHOLD, sims, labels)
        # The lowest threshold with no wrong merge on these pairs.
        safe = max((s for s, label in zip(sims, labels) if label == "different"), default=0) + 1e-6
        safe_found, _ = at(safe, sims, labels)
        print(f"{backend.rsplit('.', 1)[1]:8} at {settings.SIMILARITY_THRESHOLD:.2f}: {found}/{same} same-problem pairs merged, "
              f"{wrong}/{len(pairs) - same} different-problem pairs merged; "
              f"lowest threshold without a wrong merge {safe:.2f}: {safe_found}/{same} merged")
        if args.v:
            for (a, b, label), s in sorted(zip(pairs, sims), key=lambda p: -p[1]):
                print(f"    {s:5.2f} {label:9} {a} | {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
