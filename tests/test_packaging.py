"""The distribution: the compiled request path is built where it can be, and its absence
never stops an install (``pip install`` on a host without a C compiler)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def compiled(names: list[str]) -> list[str]:
    return [n for n in names
            if n.startswith("perfmonitor/capture/_speedups") and n.endswith((".so", ".pyd"))]


def build_wheel(out: Path, **env: str) -> Path:
    """Build a wheel from a copy of the sources (no compiled file of the checkout's)."""
    source = out / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "perfmonitor", source / "perfmonitor",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True, env={**os.environ, **env}, capture_output=True, timeout=600)
    [wheel] = out.glob("django_perfmonitor-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_carries_the_compiled_module_and_its_source_the_python(tmp_path):
    names = zipfile.ZipFile(build_wheel(tmp_path)).namelist()
    assert len(compiled(names)) == 1
    assert "perfmonitor/capture/query_hook.py" in names
    assert "perfmonitor/capture/middleware.py" in names


@pytest.mark.slow
def test_without_a_compiler_the_install_goes_on_in_pure_python(tmp_path):
    # CC names a compiler that always fails: the optional extension is skipped.
    wheel = build_wheel(tmp_path, CC="false", LDSHARED="false")
    names = zipfile.ZipFile(wheel).namelist()
    assert compiled(names) == []
    assert "perfmonitor/capture/query_hook.py" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=600)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); "
             "import perfmonitor.capture; from importlib.util import find_spec; "
             "print(find_spec('perfmonitor.capture._speedups'), perfmonitor.__file__)")
    out = subprocess.run([sys.executable, "-c", probe, str(target)], check=True,
                         capture_output=True, text=True, cwd=tmp_path).stdout
    assert out.startswith("None ") and str(target) in out
