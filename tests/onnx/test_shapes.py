import pytest

from edgekit.errors import EdgekitError
from edgekit.onnx.inspect import graph_inputs, graph_outputs
from edgekit.onnx.shapes import fix_input_shapes, parse_shape_args, require_static, resolve_input_shapes
from tests.models import conv_net


def test_parse_shapes():
    assert parse_shape_args(["x:1x3x48x192", "y:2,4"]) == {"x": [1, 3, 48, 192], "y": [2, 4]}


@pytest.mark.parametrize("bad", ["x", "x:", "x:1xax3", ":1x2", "x:1x0x3"])
def test_unparseable_shapes(bad):
    with pytest.raises(EdgekitError, match="--input-shape"):
        parse_shape_args([bad])


def test_shape_must_match_an_input():
    with pytest.raises(EdgekitError, match="model's inputs are: x"):
        resolve_input_shapes(conv_net(), {"image": [1, 3, 16, 16]})


def test_shape_rank_and_fixed_axes_are_checked():
    with pytest.raises(EdgekitError, match="3 dims given"):
        resolve_input_shapes(conv_net(), {"x": [1, 3, 16]})
    with pytest.raises(EdgekitError, match="axis 1 is fixed to 3"):
        resolve_input_shapes(conv_net(), {"x": [1, 4, 16, 16]})


def test_dynamic_batch_defaults_to_one_and_other_axes_need_a_shape():
    assert resolve_input_shapes(conv_net(), {}) == {"x": [1, 3, 16, 16]}
    shapes = resolve_input_shapes(conv_net(h="H"), {})
    with pytest.raises(EdgekitError, match=r"--input-shape x:1x3xNx16"):
        require_static(shapes, "the converters need static shapes")


def test_fix_input_shapes_propagates_to_outputs():
    model = fix_input_shapes(conv_net(h="H", w="W"), {"x": [1, 3, 24, 32]})
    assert graph_inputs(model)[0].shape == [1, 3, 24, 32]
    assert graph_outputs(model)[0].shape == [1, 4, 24, 32]
