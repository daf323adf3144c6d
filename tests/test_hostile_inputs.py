"""Issue 12, models, inputs and reports: each hostile input is one line on stderr, exit 2 (1 for a model that
cannot work), and nothing written. Real subprocesses and ONNX Runtime, tiny models (docs/reliability.md)."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

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


BAD_DATA = [("pickled.npy", "holds pickled Python objects"), ("garbage.npy", "not a .npy file"),
            ("pickled.npz", "holds pickled Python objects")]


@pytest.mark.parametrize("command, bad, why", [(c, b, w) for c in ("export", "check", "bench", "run")
                                               for b, w in BAD_DATA if not (c == "run" and b.endswith(".npz"))])
def test_bad_npy_data_is_one_line_naming_the_file(files, tmp_path, command, bad, why):
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
    from edgekit.pipeline.nodes.inference import preprocessing_from  # a graph YAML's `preprocessing:` mapping

    with pytest.raises(EdgekitError, match="preprocessing mean 0.5,0.5 has 2 values"):
        preprocessing_from({"mean": [0.5, 0.5]})
    with pytest.raises(EdgekitError, match="a std of 0"):
        preprocessing_from({"std": 0})
    assert preprocessing_from({"mean": 0.5, "std": 0.5}).std == [0.5] * 3  # the face app's YAML still loads
    assert Preprocessing(mean=[0.5], std=[0.5]).validate().mean == [0.5]  # one value still works
    assert Preprocessing(mean=0.5, std=2).mean == [0.5] * 3  # a bare number is every channel's (Python API)
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


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _reshape_net():
    """x[N,3,H,W] -> Reshape to a fixed [1,3,256]: only 16x16 inputs run."""
    return _model([helper.make_node("Reshape", ["x", "s"], ["y"], name="fixed_reshape")],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 256])],
                  [numpy_helper.from_array(np.array([1, 3, 256], np.int64), "s")])


def _stride_net():
    """x -> conv stride 2 -> upsample x2 -> + x: odd sizes (321) come back as 322 and the Add fails."""
    w = numpy_helper.from_array(np.full((3, 3, 1, 1), 0.1, np.float32), "w")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    return _model([helper.make_node("Conv", ["x", "w"], ["c"], name="down", strides=[2, 2]),
                   helper.make_node("Resize", ["c", "", "scales"], ["u"], name="up", mode="nearest"),
                   helper.make_node("Add", ["u", "x"], ["y"], name="skip")],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "H", "W"])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "H", "W"])], [w, scales])


@pytest.mark.parametrize("net, shape, node", [(_reshape_net, "1x3x17x17", "Reshape node 'fixed_reshape'"),
                                              (_stride_net, "1x3x321x321", "Add node 'skip'")])
@pytest.mark.parametrize("command", ["export", "bench", "run"])
def test_a_shape_the_model_cannot_run_is_one_line_naming_it(tmp_path, net, shape, node, command):
    model = save(net(), tmp_path / "m.onnx")
    dims = tuple(int(d) for d in shape.split("x"))
    np.save(tmp_path / "in.npy", np.zeros(dims, np.float32))
    args = {"export": ["export", model, "--target", "onnx", "--input-shape", f"x:{shape}", "--out", tmp_path / "o"],
            "bench": ["bench", model, "-q", "--input-shape", f"x:{shape}", "--json", tmp_path / "b.json"],
            "run": ["run", model, "--input", f"x={tmp_path / 'in.npy'}", "--save", tmp_path / "saved"]}[command]
    before = _listing(tmp_path)
    if command == "bench" and net is _stride_net:
        # bench fixes the shape into the model first, so ONNX Runtime's shape inference refuses it at load;
        # the runner door adds the shape it was given
        expected = ["m.onnx: ONNX Runtime cannot load the model: Node (skip) Op (Add)", "Incompatible dimensions",
                    f"(with --input-shape x:{shape}: the model cannot run this shape; give another)"]
    else:
        expected = [f"ONNX Runtime cannot run the model on x {shape}: {node}",
                    "give another input shape (--input-shape"]
    line = _one_line(edgekit(*args), 2, *expected)
    assert "onnxruntime_src" not in line and len(line) < 400
    assert _listing(tmp_path) == before


def _nan_net(value):
    m = conv_net()
    w = numpy_helper.to_array(m.graph.initializer[2]).copy()  # w2, after two finite tensors
    w[1, 2] = value
    m.graph.initializer[2].CopyFrom(numpy_helper.from_array(w, "w2"))
    return m


@pytest.mark.parametrize("value, what", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "Inf")])
def test_nan_or_inf_in_the_weights_is_the_models_fault_not_the_converters(tmp_path, value, what):
    model = save(_nan_net(value), tmp_path / "m.onnx")
    proc = edgekit("export", model, "--target", "onnx", "--input-shape", "x:1x3x16x16", "--out", tmp_path / "o")
    _one_line(proc, 2, f"m.onnx: the model itself holds {what} in tensor w2 (shape [5, 4])")
    assert _listing(tmp_path) == ["m.onnx"]


def test_nan_in_a_constant_node_is_found_too(tmp_path):
    from edgekit.errors import EdgekitError
    from edgekit.onnx.load import load_model

    bad = numpy_helper.from_array(np.array([1.0, np.nan], np.float16), "c")
    model = _model([helper.make_node("Constant", [], ["k"], name="k", value=bad),
                    helper.make_node("Add", ["x", "k"], ["y"], name="add")],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [2])])
    with pytest.raises(EdgekitError, match="holds NaN in tensor c"):
        load_model(save(model, tmp_path / "c.onnx"))
    assert load_model(save(conv_net(), tmp_path / "ok.onnx"))  # a finite model loads


def test_a_manifest_with_a_zero_std_is_refused_on_load(files, tmp_path):
    import json
    import shutil

    art = tmp_path / "art"
    shutil.copytree(_art(files), art)
    manifest = json.loads((art / "edgekit.json").read_text())
    manifest["preprocessing"] = {"color": "rgb", "mean": [0.5] * 3, "std": [0.5, 0.0, 0.5], "scale": 1 / 255,
                                 "resize": "stretch", "layout": "NCHW"}
    (art / "edgekit.json").write_text(json.dumps(manifest))
    before = _listing(tmp_path)
    proc = edgekit("run", art, "--input", f"x={files / 'ok.npy'}")
    _one_line(proc, 2, "preprocessing std 0.5,0,0.5: a std of 0 divides by zero")
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("command, flag", [("export", "--json"), ("check", "--markdown"), ("bench", "--html"),
                                           ("bench", "--json")])
def test_a_report_file_that_is_a_folder_is_refused_before_any_work(tmp_path, command, flag):
    model = save(conv_net(batch=1), tmp_path / "m.onnx")
    (tmp_path / "adir").mkdir()
    args = {"export": ["export", model, "--target", "onnx", "--out", tmp_path / "o"],
            "check": ["check", model], "bench": ["bench", model, "-q"]}[command]
    before = _listing(tmp_path)
    _one_line(edgekit(*args, flag, tmp_path / "adir"), 2, f"{flag} {tmp_path / 'adir'} is a folder")
    assert _listing(tmp_path) == before
