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
    # installed into a new venv (dependencies from the running environment), run from elsewhere: the profiles
    # come from the prefix. The new venv sees this interpreter's site-packages through a .pth file, after its own:
    # `--system-site-packages` would see the base interpreter's, which in a venv (as the README sets up) lacks them.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index", "--no-deps",
                    str(wheel)], check=True)
    ours = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    assert deps, sys.path
    (Path(ours) / "zz-edgekit-test-deps.pth").write_text("".join(f"{p}\n" for p in deps))
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    where = subprocess.run([str(py), "-c", "import edgekit, onnx; print(edgekit.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, env=env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the wheel's copy, not the checkout's
    proc = subprocess.run([str(py), "-m", "edgekit.cli", "targets"], cwd=tmp_path, capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"device profiles ({tmp_path / 'venv' / 'share' / 'edgekit' / 'targets'})" in proc.stdout
    assert "raspberry-pi-5" in proc.stdout
