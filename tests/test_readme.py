"""The README's commands, executed: the tour block in order, and the main job of the first set-up command.
(The install half of the set-up commands is what CI runs before these tests: `.ci/run`.)"""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _block(marker: str) -> str:
    m = re.search(rf"<!-- {marker} -->\s*```bash\n(.*?)```\s*<!-- /{marker} -->", README, re.S)
    assert m, f"README has no {marker} block"
    return m.group(1)


def _bash(script: str, cwd: Path, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def test_setup_commands_are_the_documented_two():
    blocks = re.findall(r"## Set-up: two commands.*?(?=\n## )", README, re.S)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", blocks, re.S)
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert commands == [venv + "bash tools/install.sh && edgekit demo",
                        venv + "bash tools/install.sh test && python3 -m pytest -q"]
    # CI runs the second one as written here: .ci/run takes it from this README
    ci = subprocess.run(["bash", str(ROOT / ".ci" / "run"), "--print"], capture_output=True, text=True)
    assert ci.returncode == 0 and ci.stdout.strip() == commands[1], ci.stdout + ci.stderr
    assert subprocess.run(["bash", "-n", str(ROOT / "tools" / "install.sh")]).returncode == 0


def test_tour_runs_as_written(tmp_path):
    proc = _bash(_block("tour"), tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = proc.stdout
    assert "ch_ppocr_mobile_v2.0_cls_infer_ncnn" in out and "PASS" in out
    assert (tmp_path / "out" / "ch_ppocr_mobile_v2.0_cls_infer_openvino" / "edgekit.json").is_file()
    assert (tmp_path / "bench.json").is_file()


def test_python_api_snippet_runs(tmp_path):
    """The edgekit.apps block, as written (its exports go to the pipeline test cache when one is kept)."""
    m = re.search(r"<!-- api -->\s*```python\n(.*?)```\s*<!-- /api -->", README, re.S)
    assert m, "README has no api block"
    cache = os.environ.get("EDGEKIT_TEST_PIPELINE_CACHE") or str(tmp_path / "cache")
    proc = subprocess.run([sys.executable, "-c", m.group(1)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1200, env={**os.environ, "EDGEKIT_CACHE": cache})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.stdout.count("(6, 2) (468, 2)") == 1  # the astronaut's one face, with its mesh
    assert "'Hello edgekit 2026'" in proc.stdout and "'OCR on every backend'" in proc.stdout


def test_main_job_runs(tmp_path):
    proc = _bash("edgekit demo", tmp_path, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = proc.stdout
    assert out.count(" ok ") >= 4  # every format converted and verified
    assert out.count("PASS") >= 4 and "recommendation:" in out  # checked and benchmarked
    assert "48 frames in, 48 processed" in proc.stdout + proc.stderr  # the pipeline ran the whole video
    assert (tmp_path / "edgekit-demo" / "face_annotated.avi").stat().st_size > 10_000
