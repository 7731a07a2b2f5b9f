"""What `make run` costs a machine: the venv from requirements/base.txt, and the
embedding model in each worker process.

    make bench-footprint            # builds a throwaway venv from base.txt (warm pip cache)
    make bench-footprint ARGS=-n5   # five model loads instead of three

Prints:
- the venv's size right after `pip install --no-compile -r requirements/base.txt` (as the
  Makefile installs it), and again once every module of ours has been imported in it (the
  bytecode Python writes on first import), on disk (du) and in bytes (apparent size);
- how long the install took;
- for the model: the time and the resident memory (all of it, and the private part, which
  is what a second worker process adds) from before the backend is built to after its first
  embedding, in a fresh Django process each time; the median of -n runs.
The start-up time of `make run` itself is measured by .ci/smoke-make-run.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in the new venv's Python: build the configured backend and embed once.
LOAD = """
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")
os.environ.setdefault("SECRET_KEY", "footprint")
os.environ.setdefault("DATABASE_URL", "postgres://footprint@127.0.0.1:1/footprint")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
import django
django.setup()
from apps.incidents import embeddings

def memory():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    kib = lambda name: int(fields[name].split()[0])
    return kib("VmRSS"), kib("RssAnon")

rss, anon = memory()
started = time.perf_counter()
embeddings.embed(["disk almost full on postgres-#"])
seconds = time.perf_counter() - started
rss_after, anon_after = memory()
print(json.dumps({"seconds": seconds, "rss_mib": (rss_after - rss) / 1024, "private_mib": (anon_after - anon) / 1024}))
"""


def size(path: Path) -> tuple[float, float]:
    """(on disk, apparent) in MiB."""
    disk = apparent = 0
    for folder, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            disk += st.st_blocks * 512
            apparent += st.st_size
    return disk / 2**20, apparent / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=3, help="model loads to take the median of")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        venv = Path(tmp) / "venv"
        python = venv / "bin" / "python"
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
                        "-r", str(ROOT / "requirements" / "base.txt")], check=True)
        installed = time.monotonic() - started
        disk, apparent = size(venv)
        print(f"venv from requirements/base.txt: {disk:.0f} MiB on disk ({apparent:.0f} MiB apparent), "
              f"installed in {installed:.0f} s")
        subprocess.run([str(python), str(ROOT / "tests" / "check_imports.py")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        disk, apparent = size(venv)
        print(f"  after every module of ours was imported once: {disk:.0f} MiB on disk ({apparent:.0f} MiB apparent)")
        runs = []
        for _ in range(args.n):
            out = subprocess.run([str(python), "-c", LOAD, str(ROOT)], check=True, capture_output=True, text=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        print(f"embedding model ({os.environ.get('EMBEDDING_BACKEND', 'the default backend')}), median of {args.n}: "
              f"load and first embedding {med['seconds']:.2f} s, resident +{med['rss_mib']:.0f} MiB "
              f"(private +{med['private_mib']:.0f} MiB)")
        print("  runs: " + "; ".join(f"{r['seconds']:.2f} s +{r['rss_mib']:.0f}/{r['private_mib']:.0f} MiB" for r in runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
