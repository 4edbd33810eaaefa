"""The package installs as a package: a built wheel, not the checkout, runs the app."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What pyproject.toml builds the wheel from (the rest of the checkout is not shipped).
SOURCES = ("app", "templates", "static", "migrations", "pyproject.toml", "README.md")

CHECK = """
import json, sys
from pathlib import Path
import app
from app import create_app
app_ = create_app()
client = app_.test_client()
page = client.get("/movies?q=heat")
htmx = next(Path(app_.static_folder, "vendor").glob("htmx-*.min.js")).name
print(json.dumps({
    "package": app.__file__,
    "templates": app_.template_folder,
    "health": client.get("/healthz").get_json(),
    "movies": [page.status_code, 'class="site-header"' in page.text,
               "Heat" in page.text],
    "static": client.get(f"/static/vendor/{htmx}").status_code,
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the checkout, installed into a directory."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # No build isolation: the test tools' setuptools builds it, with no download.
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", base / "dist"]
        + [str(source)],
        check=True,
    )
    (wheel,) = (base / "dist").glob("reeltable-*.whl")
    site = base / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True)
    return site


def test_a_wheel_install_migrates_and_serves(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # not the checkout: nothing to find there
    elsewhere.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(installed),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'wheel.sqlite3'}",
        "SECRET_KEY": "a wheel test",
    }
    env.pop("FLASK_APP", None)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    for command in (["db", "upgrade"], ["seed"]):
        subprocess.run(flask + command, cwd=elsewhere, env=env, check=True)
    out = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=elsewhere,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    found = json.loads(out.stdout)
    # The installed copy ran, with the files the wheel carries.
    assert Path(found["package"]).is_relative_to(installed)
    assert Path(found["templates"]).is_relative_to(installed)
    assert found["health"] == {"database": "ok", "migrations": "current"}
    assert found["movies"] == [200, True, True]
    assert found["static"] == 200
