"""One preprocessing: the same image file becomes the same tensor, bit for bit, on every path a user has (export
and check verification, bench, `edgekit run IMAGE`, the pipeline's preprocess node), and an unknown resize mode
is refused on each of them instead of quietly becoming another resize."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import edgekit
from edgekit.commands import run as run_cmd
from edgekit.commands.common import preprocessing_from_args
from edgekit.errors import EdgekitError
from edgekit.harness import inputs as inputs_mod
from edgekit.harness.reference import load_golden
from edgekit.manifest import MANIFEST_NAME, Manifest, Precision, Preprocessing, TensorSpec, file_checksums
from edgekit.pipeline.nodes.inference import preprocessing_from
from edgekit.pipeline.nodes.transforms import Preprocess
from edgekit.preprocess import prepare, read_image, synthetic_image

ROOT = Path(__file__).resolve().parents[1]
H, W = 24, 40  # wider than the 45x70 picture is tall: letterbox pads the sides, text lines pad the right
MODES = ("stretch", "letterbox", "keep-ratio-pad-right")


def _shape(layout):
    return [1, H, W, 3] if layout == "NHWC" else [1, 3, H, W]


def _pre(resize, color, layout):
    return Preprocessing(color=color, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], resize=resize,
                         layout=layout)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "picture.png"  # lossless: every reader sees the same pixels
    cv2.imwrite(str(path), synthetic_image(45, 70, seed=3))
    return path


def _artifact(folder, layout, pre):
    """An ONNX artifact (Identity y = x, so a run's output is its input) whose manifest holds `pre`."""
    folder.mkdir()
    shape = _shape(layout)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    specs = [TensorSpec("x", "float32", shape)], [TensorSpec("y", "float32", shape)]
    Manifest("onnx", {"model": "model.onnx"}, {"file": "model.onnx"}, *specs, Precision(),
             preprocessing=pre, checksums=file_checksums(folder, {"model": "model.onnx"})).save(folder)
    return folder


def _run(folder, image, out):
    args = argparse.Namespace(artifact=str(folder), image=str(image), input=[], threads=1, device="cpu",
                              save=str(out))
    assert run_cmd.main(args) == 0
    return np.load(out / "y.npy")


def _every_path(folder, image, tmp_path, pre):
    """The tensor each user path makes of `image` for the artifact in `folder` (manifest preprocessing `pre`)."""
    runner = edgekit.load(folder, threads=1)
    spec = runner.inputs[0]
    golden = tmp_path / "golden"
    edgekit.check([folder], model=folder / "model.onnx", data=[image], samples=1, golden=golden, threads=1)
    node = Preprocess("pre", input_shape=f"x:{'x'.join(map(str, spec.shape))}", preprocessing=pre.__dict__)
    node.open()
    rgb = cv2.cvtColor(read_image(image), cv2.COLOR_BGR2RGB)
    return {
        "export/check samples": inputs_mod.make_samples([spec], [image], pre, 1)[0][0]["x"],
        "check (saved inputs)": load_golden(golden)[0][0]["x"],
        "bench": inputs_mod.timing_inputs(runner, [str(image)], None)[0][0]["x"],
        "run IMAGE": _run(folder, image, tmp_path / "out"),
        "pipeline preprocess": node.process({"frame": cv2.imread(str(image))}, None)["inputs"]["x"],
        "an RGB frame": prepare(rgb, spec, pre, color="rgb")[0],
    }


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("color", ["rgb", "bgr"])
@pytest.mark.parametrize("resize", MODES)
def test_one_image_one_tensor_on_every_path(tmp_path, image, resize, color, layout):
    pre = _pre(resize, color, layout)
    tensors = _every_path(_artifact(tmp_path / "artifact", layout, pre), image, tmp_path, pre)
    first = tensors["export/check samples"]
    assert first.shape == tuple(_shape(layout)) and first.dtype == np.float32
    for path, x in tensors.items():
        assert x.shape == first.shape and x.dtype == first.dtype, path
        assert np.array_equal(x, first), path
    # Written out independently of edgekit.preprocess: where the 45x70 picture lands in the 24x40 input, its
    # pixels there, and the padding around it (black before normalising, or 0 after it for text lines).
    x0, nw = {"stretch": (0, 40), "letterbox": (1, 38), "keep-ratio-pad-right": (0, 38)}[resize]
    hwc = first[0] if layout == "NHWC" else first[0].transpose(1, 2, 0)
    frame = cv2.imread(str(image))
    frame = frame if color == "bgr" else frame[..., ::-1].copy()
    if resize == "letterbox":  # MediaPipe's sampling: frame pixel x -> x * s + pad, corner-aligned (warpAffine)
        s = min(W / frame.shape[1], H / frame.shape[0])
        m = np.float32([[s, 0, (W - frame.shape[1] * s) / 2], [0, s, (H - frame.shape[0] * s) / 2]])
        px = cv2.warpAffine(frame, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[:, x0:x0 + nw]
    else:
        px = cv2.resize(frame, (nw, H), interpolation=cv2.INTER_LINEAR)
    expected = (px.astype(np.float32) / np.float32(255) - np.float32(pre.mean)) / np.float32(pre.std)
    assert np.allclose(hwc[:, x0:x0 + nw], expected, atol=1e-5)
    pad = -np.float32(pre.mean) / np.float32(pre.std) if resize == "letterbox" else 0.0
    assert np.allclose(hwc[:, :x0], pad) and np.allclose(hwc[:, x0 + nw:], pad)


def _bogus():
    """A Preprocessing whose resize mode was changed after creation, past its own validation."""
    pre = Preprocessing()
    pre.resize = "bogus"
    return pre


def test_an_unknown_resize_mode_is_refused_on_every_path(tmp_path, image):
    match = "unknown resize 'bogus'"
    spec = TensorSpec("x", "float32", _shape("NCHW"))
    with pytest.raises(EdgekitError, match=match):  # Python API and exported manifests
        Preprocessing(resize="bogus")
    with pytest.raises(EdgekitError, match=match):  # a pipeline's YAML
        preprocessing_from({"resize": "bogus"})
    with pytest.raises(EdgekitError, match=match):
        Preprocess("pre", input_shape="x:1x3x24x40", preprocessing={"resize": "bogus"})
    cli = argparse.Namespace(mean=None, std=None, scale=None, color=None, resize="bogus", layout=None)
    with pytest.raises(EdgekitError, match=match):  # the CLI's choices aside, the library refuses it too
        preprocessing_from_args(cli)
    frame = read_image(image)
    with pytest.raises(EdgekitError, match=match):
        prepare(frame, spec, _bogus())
    with pytest.raises(EdgekitError, match=match):  # export and check verification, with data and without
        inputs_mod.make_samples([spec], [image], _bogus(), 1)
    with pytest.raises(EdgekitError, match=match):
        inputs_mod.make_samples([spec], None, _bogus(), 1)
    folder = _artifact(tmp_path / "artifact", "NCHW", Preprocessing())
    runner = edgekit.load(folder, threads=1)
    with pytest.raises(EdgekitError, match=match):
        inputs_mod.timing_inputs(runner, [str(image)], _bogus())
    with pytest.raises(EdgekitError, match=match):
        inputs_mod.timing_inputs(runner, None, _bogus())
    with pytest.raises(EdgekitError, match=match):
        edgekit.check([folder], model=folder / "model.onnx", data=[image], samples=1, preprocessing=_bogus())
    node = Preprocess("pre", input_shape="x:1x3x24x40", preprocessing=_bogus())
    node.open()
    with pytest.raises(EdgekitError, match=match):
        node.process({"frame": frame}, None)
    manifest = folder / MANIFEST_NAME  # an edited manifest: `run IMAGE` (and every loader) names the file
    data = json.loads(manifest.read_text())
    data["preprocessing"]["resize"] = "bogus"
    manifest.write_text(json.dumps(data))
    with pytest.raises(EdgekitError, match=f"{MANIFEST_NAME}: malformed manifest .*{match}"):
        _run(folder, image, tmp_path / "out")


def _edgekit_imports(path):
    """The edgekit modules a source file imports, as dotted names relative to the package (`..x` -> `x`)."""
    import ast

    tree = ast.parse(path.read_text())
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            names |= {".".join((*base, node.module or a.name)) for a in node.names}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            names |= {m for m in mods if m and m.startswith("edgekit")}
    return {n.removeprefix("edgekit").lstrip(".") for n in names}


def test_preprocessing_sits_at_the_core_layer():
    """edgekit.preprocess imports only core modules; backends and pipelines take it from there, not from
    harness (which sits above them)."""
    assert _edgekit_imports(ROOT / "edgekit" / "preprocess.py") <= {"errors", "manifest", "onnx.shapes"}
    for layer in ("backends", "pipeline"):
        for f in (ROOT / "edgekit" / layer).rglob("*.py"):
            assert not any(n.startswith("harness") for n in _edgekit_imports(f)), f


@pytest.mark.parametrize("resize", MODES)
def test_a_view_for_a_strided_runner_holds_the_same_tensor(image, resize):
    """contiguous=False (a runner that lays feeds out itself) changes the memory order, never the values; a
    preprocessing changed after it was first used is re-validated and takes effect."""
    frame = read_image(image)
    spec = TensorSpec("x", "float32", _shape("NCHW"))
    pre = _pre(resize, "rgb", "NCHW")
    x, _ = prepare(frame, spec, pre)
    view, _ = prepare(frame, spec, pre, contiguous=False)
    assert x.flags.c_contiguous and not view.flags.c_contiguous and np.array_equal(x, view)
    pre.mean = [0.0, 0.0, 0.0]
    y, _ = prepare(frame, spec, pre)
    assert not np.array_equal(x, y)
    pre.resize = "bogus"
    with pytest.raises(EdgekitError, match="unknown resize 'bogus'"):
        prepare(frame, spec, pre)
