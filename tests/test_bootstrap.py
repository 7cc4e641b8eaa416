"""The README's first command on a machine the way the README promises it: Python, no `uv`.

The test runs `bin/dev` in a copy of this checkout with a PATH of a few basic tools, so no
`uv` executable can be found however the developer's machine is set up.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("bash", "sh", "dirname", "env", "id", "cat", "uname", "ls", "rm", "mkdir")
DEV_ONLY = ("pytest", "pyspark", "playwright", "schemathesis", "hypothesis", "ruff")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tracked files of this checkout, as a fresh clone would have them (no .venv)."""
    dest = tmp_path_factory.mktemp("clone")
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def _bare_path(folder: Path, python: str) -> str:
    """A PATH folder holding only basic tools and `python3` (never `uv`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    # A wrapper, not a symlink: a virtual environment's interpreter reached through a symlink
    # elsewhere would not find its pyvenv.cfg and would run as the base interpreter.
    wrapper = folder / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{python}" "$@"\n')
    wrapper.chmod(0o755)
    return str(folder)


def _base_python() -> str:
    # The interpreter this environment was made from, outside the environment.
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def _bin_dev(checkout: Path, path: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    # The machine's environment (proxy, certificates, caches) with only PATH replaced.
    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    environ.update(PATH=path, **env)
    return subprocess.run(
        ["bash", "bin/dev", *args],
        cwd=checkout,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _readme_query_lines() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Query the result", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.strip().splitlines() if line.strip()]


def _installed(checkout: Path) -> set[str]:
    site = next((checkout / ".venv" / "lib").glob("python3*/site-packages"))
    return {re.split(r"[-_.]", p.name, maxsplit=1)[0].lower() for p in site.iterdir()}


def test_demo_installs_uv_into_a_bare_python_and_runtime_dependencies_only(
    checkout: Path, tmp_path: Path
) -> None:
    # A fresh interpreter environment with pip and no uv: bin/dev installs uv from the package
    # index with pip and runs it as `python3 -m uv` (pip's script folder is not on PATH).
    subprocess.run([_base_python(), "-m", "venv", str(tmp_path / "py")], check=True)
    python = str(tmp_path / "py" / "bin" / "python3")
    assert subprocess.run([python, "-m", "uv", "--version"], capture_output=True).returncode != 0
    path = _bare_path(tmp_path / "bin", python)
    # The trap that broke the README's first command: a shell function named `uv` makes
    # `command -v uv` succeed although no uv executable exists.
    trap = {"BASH_FUNC_uv%%": "() { echo 'the uv function was called' >&2; return 97; }"}
    done = _bin_dev(checkout, path, "demo", "--persons", "40", "--days", "2", **trap)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "installing uv from PyPI" in done.stderr
    assert "the uv function was called" not in done.stderr
    assert "contacts demo: last night's run" in done.stdout
    assert subprocess.run([python, "-m", "uv", "--version"], capture_output=True).returncode == 0
    assert _installed(checkout).isdisjoint(DEV_ONLY)
    # The README's query lines run as written after the demo, offline and without uv.
    for line in _readme_query_lines():
        ran = subprocess.run(
            ["bash", "-c", line],
            cwd=checkout,
            env={"PATH": path, "HOME": os.environ["HOME"]},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, f"{line}\n{ran.stderr}"
        assert ran.stdout.strip(), line
