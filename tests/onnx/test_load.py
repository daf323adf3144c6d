import onnx
import pytest
from onnx import helper, numpy_helper

from edgekit.errors import EdgekitError
from edgekit.onnx.load import load_model
from tests.models import conv_net, save


def test_loads_a_valid_model(tmp_path):
    model = load_model(save(conv_net(), tmp_path / "m.onnx"))
    assert [n.op_type for n in model.graph.node][:2] == ["Conv", "Relu"]


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"", "empty file"),
    (b"this is a text file, not a protobuf at all \xff\xfe", "not a valid ONNX model"),
])
def test_bad_files_get_one_clear_error(tmp_path, content, message):
    path = tmp_path / "m.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EdgekitError, match=message):
        load_model(path)


def test_truncated_model_is_refused(tmp_path):
    data = conv_net().SerializeToString()
    path = tmp_path / "t.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgekitError, match="truncated|invalid|not an ONNX"):
        load_model(path)


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    model = conv_net()
    w = model.graph.initializer[0]
    secret = tmp_path / "secret.bin"
    secret.write_bytes(numpy_helper.to_array(w).tobytes())
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = onnx.TensorProto.EXTERNAL
    for k, v in {"location": "../secret.bin", "offset": "0", "length": str(secret.stat().st_size)}.items():
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    sub = tmp_path / "model"
    sub.mkdir()
    path = sub / "m.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(EdgekitError, match="outside the model's folder"):
        load_model(path)


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(EdgekitError, match="not a file"):
        load_model(tmp_path)


def test_graph_without_nodes_is_not_a_model(tmp_path):
    path = tmp_path / "empty_graph.onnx"
    path.write_bytes(helper.make_model(helper.make_graph([], "g", [], [])).SerializeToString())
    with pytest.raises(EdgekitError, match="no graph"):
        load_model(path)
