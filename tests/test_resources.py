"""targets/, apps/ and tools/ are found in the checkout (editable install) and, from a wheel, under
<prefix>/share/edgekit; a wheel install runs `edgekit targets` with its shipped profiles."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edgekit import resources
from edgekit.errors import EdgekitError

ROOT = Path(__file__).resolve().parents[1]


def test_checkout_first_then_the_install_prefix(tmp_path, monkeypatch):
    assert resources.shipped("targets") == ROOT / "targets"
    installed = tmp_path / "share" / "edgekit"
    (installed / "apps").mkdir(parents=True)
    monkeypatch.setattr(resources, "CHECKOUT", tmp_path / "not-a-checkout")
    monkeypatch.setattr(resources, "INSTALLED", installed)
    assert resources.shipped("apps") == installed / "apps"
    with pytest.raises(EdgekitError, match="edgekit's targets/ folder is neither in .* nor in .*: reinstall"):
        resources.shipped("targets")


def test_a_wheel_install_ships_profiles_apps_and_the_media_tool(tmp_path):
    # built from a copy of the tree git knows (setuptools builds in place: no build/ left in the checkout)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for f in files:
        if (ROOT / f).is_file():
            (tmp_path / "src" / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, tmp_path / "src" / f)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(tmp_path / "src")], check=True, cwd=tmp_path)
    wheel, = (tmp_path / "dist").glob("edgekit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = "edgekit-0.1.0.data/data/share/edgekit/"
    for f in ("targets/raspberry-pi-5.toml", "apps/face/graph.yaml", "apps/ocr/graph.yaml", "apps/ocr/ocr_nodes.py",
              "tools/make_sample_media.py"):
        assert data + f in names, f
    # installed (dependencies from this environment), run from elsewhere: the profiles come from the prefix
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp_path / "venv")], check=True)
    py = tmp_path / "venv" / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    proc = subprocess.run([str(py), "-m", "edgekit.cli", "targets"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert f"device profiles ({tmp_path / 'venv' / 'share' / 'edgekit' / 'targets'})" in proc.stdout
    assert "raspberry-pi-5" in proc.stdout
