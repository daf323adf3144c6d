"""Issue 12, models, inputs and reports: each hostile input is one line on stderr, exit 2 (1 for a model that
cannot work), and nothing written. Real subprocesses and ONNX Runtime, tiny models (docs/reliability.md)."""
import numpy as np
import pytest

from tests.commands.test_cli import edgekit
from tests.models import conv_net, save


def _one_line(proc, code, *fragments):
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("[")]
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], proc.stderr
    return lines[0]


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    save(conv_net(), d / "conv.onnx")
    save(conv_net(h="H", w="W"), d / "dyn.onnx")
    np.save(d / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (d / "garbage.npy").write_bytes(b"definitely not numpy " * 20)
    np.save(d / "ok.npy", np.zeros((1, 3, 16, 16), np.float32))
    np.savez(d / "pickled.npz", x=np.array([{"a": 1}], dtype=object))
    (d / "a-file").write_text("x")
    proc = edgekit("export", d / "conv.onnx", "--target", "onnx", "--input-shape", "x:1x3x16x16", "--out", d / "art")
    assert proc.returncode == 0, proc.stderr
    return d


def _art(d):
    return next(p for p in (d / "art").iterdir() if p.is_dir())


@pytest.mark.parametrize("bad, why", [("pickled.npy", "holds pickled Python objects"),
                                      ("garbage.npy", "not a .npy file"),
                                      ("pickled.npz", "holds pickled Python objects")])
@pytest.mark.parametrize("command", ["export", "check", "bench", "run"])
def test_bad_npy_data_is_one_line_naming_the_file(files, tmp_path, command, bad, why):
    if command == "run" and bad.endswith(".npz"):
        pytest.skip("run takes .npy inputs")
    f = files / bad
    args = {"export": ["export", files / "conv.onnx", "--target", "onnx", "--input-shape", "x:1x3x16x16",
                       "--data", f, "--out", tmp_path / "out"],
            "check": ["check", _art(files), "--data", f],
            "bench": ["bench", files / "conv.onnx", "-q", "--data", f, "--json", tmp_path / "b.json"],
            "run": ["run", files / "conv.onnx", "--input", f"x={f}", "--save", tmp_path / "saved"]}[command]
    before = _listing(files)
    _one_line(edgekit(*args), 2, str(f), why)
    assert list(tmp_path.iterdir()) == [] and _listing(files) == before


@pytest.mark.parametrize("flag, value, message", [
    ("--mean", "0.5,0.5", "preprocessing mean 0.5,0.5 has 2 values; give one value, or one per channel (3)"),
    ("--std", "0", "a std of 0 divides by zero"),
    ("--std", "0.2,0,0.2", "preprocessing std 0.2,0,0.2: a std of 0"),
    ("--mean", "nan", "every value must be a finite number")])
def test_bad_mean_or_std_is_refused_on_the_cli(files, tmp_path, flag, value, message):
    proc = edgekit("export", files / "conv.onnx", "--target", "onnx", "--input-shape", "x:1x3x16x16",
                   flag, value, "--out", tmp_path / "out")
    _one_line(proc, 2, message)
    assert list(tmp_path.iterdir()) == []


def test_bad_mean_or_std_is_refused_from_python_yaml_and_manifests():
    from edgekit.errors import EdgekitError
    from edgekit.manifest import Preprocessing

    for kwargs in ({"mean": [0.5, 0.5]}, {"std": [0.0]}, {"std": [1, 1, 1, 1]}, {"mean": []}):
        with pytest.raises(EdgekitError, match="preprocessing (mean|std)"):
            Preprocessing(**kwargs)  # what a pipeline YAML's preprocess node and a manifest's JSON build
    p = Preprocessing()
    p.std = [1.0, 0.0, 1.0]
    with pytest.raises(EdgekitError, match="a std of 0"):
        p.validate()
    assert Preprocessing(mean=[0.5], std=[0.5]).validate().mean == [0.5]  # one value still works
    assert Preprocessing(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


def test_run_save_onto_a_file_is_refused_and_into_a_new_folder_works(files, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    proc = edgekit("run", files / "conv.onnx", "--input", f"x={files / 'ok.npy'}", "--save", target)
    _one_line(proc, 2, f"--save {target} is a file, not a folder")
    assert target.read_text() == "keep me" and _listing(tmp_path) == ["a-file"]
    proc = edgekit("run", files / "conv.onnx", "--input", f"x={files / 'ok.npy'}", "--save", tmp_path / "new" / "o")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "new" / "o").iterdir()) == ["feat.npy", "prob.npy"]


@pytest.mark.parametrize("command", ["export", "bench"])
def test_a_huge_claimed_shape_is_refused_with_the_figure_before_allocating(files, tmp_path, command):
    args = ["--input-shape", "x:1x3x100000x100000"]
    args = (["export", files / "dyn.onnx", "--target", "onnx", "--out", tmp_path / "o", *args] if command == "export"
            else ["bench", files / "dyn.onnx", "-q", *args])
    line = _one_line(edgekit(*args), 2, "x 1x3x100000x100000", "GiB", "more than half of the",
                     "give a smaller --input-shape")
    assert "111.8 GiB" in line or "223.5 GiB" in line
    assert list(tmp_path.iterdir()) == []
