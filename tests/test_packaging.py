"""The package as a user installs it: a wheel built from this tree, installed alone into a fresh venv.

`pip install .` (what the Dockerfile does) must carry everything the bot reads at run time: the gazetteer
and the actors are package data (`bot/data/`), not files of the checkout. The wheel is built and installed
offline (no build isolation, no index); the fresh venv borrows only the third-party dependencies of the
test venv through a path file, never this checkout's `bot`.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _build_wheel(work: Path) -> Path:
    """A wheel of this tree, built from a copy so that the checkout gets no build/ or egg-info."""
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "bot", source / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(work / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    return next((work / "dist").glob("borderwatch-*.whl"))


def _fresh_venv(work: Path, wheel: Path) -> Path:
    """A venv holding only the wheel; the dependencies come from the test venv's site-packages."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # A plain path line: the test venv's .pth files (its editable install of this checkout) are not run.
    dependencies = [
        p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()
    ]
    (Path(purelib) / "test-dependencies.pth").write_text("\n".join(dependencies) + "\n", encoding="utf-8")
    return venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed in it."""
    work = tmp_path_factory.mktemp("wheel")
    return _fresh_venv(work, _build_wheel(work))


def _run(venv: Path, cwd: Path, program: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a program of the venv with none of the caller's borderwatch, Slack or Python settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BORDERWATCH_", "SLACK_", "PYTHON"))}
    return subprocess.run(
        [str(venv / "bin" / program), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_the_wheel_alone_runs_the_demo(installed: Path, tmp_path: Path) -> None:
    where = _run(installed, tmp_path, "python", "-c", "import bot; print(bot.__file__)").stdout
    assert str(installed) in where and str(ROOT) not in where  # the wheel's bot, not the checkout's
    result = _run(installed, tmp_path, "borderwatch", "demo", "--delay", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "demo done: 5 articles" in result.stdout
    assert "== NEW INCIDENT" in result.stdout


def test_the_wheel_alone_checks_a_config_with_the_shipped_gazetteer(installed: Path, tmp_path: Path) -> None:
    config = tmp_path / "watch.yaml"
    config.write_text("watch:\n  keywords: [Afghan*]\n", encoding="utf-8")
    result = _run(installed, tmp_path, "borderwatch", "config", "check", str(config))
    assert result.returncode == 0, result.stderr
    places = next(line for line in result.stdout.splitlines() if line.strip().startswith("places:"))
    assert "bot/data/places.yaml" in places and str(installed) in places
