"""No import without a pin, no pin without an import.

Run with the Python of a venv built from requirements/base.txt alone (tests/test_requirements.py
builds one); it uses the standard library and our own code, nothing else:

    python tests/check_imports.py [--requirements requirements/base.txt]

It imports every module under apps/ and incident_manager/ the way a process of `make run`
would (Django set up first), then checks what the code imports, at the top of a module or
inside a function, against the pins (following `-r`), and prints JSON:

- failed:   module -> the error its import raised (a missing package shows here first);
- unpinned: top-level import -> the files importing it, where no distribution pinned in
            the requirements provides it (installed only by chance, through another pin,
            or not at all);
- unused:   pins that no module imports and our code does not name (a program we run,
            a dotted path in settings), unless the pin's comment starts "not imported:"
            and says why.
"""

import argparse
import ast
import importlib
import importlib.metadata
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("apps", "incident_manager")
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def our_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path) -> set[str]:
    """Absolute imports anywhere in the file, by their first name."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def pins(requirements: Path) -> dict[str, str]:
    """Distribution name -> the comment on its line ("" for none), following -r."""
    found = {}
    for line in requirements.read_text().splitlines():
        code, _, comment = line.partition("#")
        if code.strip().startswith("-r"):
            found.update(pins(requirements.parent / code.strip()[2:].strip()))
        elif match := _REQUIREMENT.match(code):
            found[normalise(match.group(1))] = comment.strip()
    return found


def import_everything() -> dict[str, str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")
    # Settings only read these; nothing connects at import time.
    os.environ.setdefault("SECRET_KEY", "import-check")
    os.environ.setdefault("ENCRYPTION_KEYS", "aW1wb3J0LWNoZWNrLWltcG9ydC1jaGVjay1pbXBvcnQ=")  # 32 bytes, a Fernet key
    os.environ.setdefault("DATABASE_URL", "postgres://import-check@127.0.0.1:1/import-check")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
    sys.path.insert(0, str(ROOT))
    import django

    try:
        django.setup()  # imports the installed apps, most of ours among them
    except Exception as exc:
        return {"django.setup()": f"{exc.__class__.__name__}: {exc}"}
    failed = {}
    for path in our_files():
        try:
            importlib.import_module(module_name(path))
        except Exception as exc:  # report every module that cannot load, not only the first
            failed[module_name(path)] = f"{exc.__class__.__name__}: {exc}"
    return failed


def check(requirements: Path) -> dict:
    failed = import_everything()
    pinned = pins(requirements)
    providers = importlib.metadata.packages_distributions()
    importers: dict[str, list[str]] = {}
    for path in our_files():
        for name in top_level_imports(path):
            if name not in sys.stdlib_module_names and name not in PACKAGES and name != "__future__":
                importers.setdefault(name, []).append(str(path.relative_to(ROOT)))
    unpinned = {
        name: files for name, files in sorted(importers.items())
        if not {normalise(d) for d in providers.get(name, [])} & pinned.keys()
    }
    source = "\n".join(path.read_text() for path in our_files())
    unused = []
    for distribution, comment in sorted(pinned.items()):
        modules = {m for m, dists in providers.items() if distribution in {normalise(d) for d in dists}}
        named = any(re.search(rf"\b{re.escape(m)}\b", source) for m in modules if not m.startswith("_"))
        if not (modules & importers.keys() or named or comment.startswith("not imported:")):
            unused.append(distribution)
    return {"failed": failed, "unpinned": unpinned, "unused": unused}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requirements", type=Path, default=ROOT / "requirements" / "base.txt")
    report = check(parser.parse_args().requirements.resolve())
    print(json.dumps(report, indent=2))
    return 1 if any(report.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
