import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.harness.inputs import generated_inputs, load_samples
from edgekit.manifest import Preprocessing, TensorSpec
from edgekit.preprocess import prepare


def preprocess(img_rgb, spec, pre):
    return prepare(img_rgb, spec, pre, color="rgb")[0]

LINE = TensorSpec("x", "float32", [1, 3, 48, 320])


def test_text_lines_fill_the_height_and_pad_after_normalising():
    """PaddleOCR's recogniser input (rapidocr's resize_norm_img): height filled, ratio kept, zeros on the right."""
    img = np.full((32, 64, 3), 255, np.uint8)  # ratio 2 -> 96 px wide at height 48
    pre = Preprocessing(color="bgr", mean=[0.5] * 3, std=[0.5] * 3, resize="keep-ratio-pad-right")
    x = preprocess(img, LINE, pre)
    assert x.shape == (1, 3, 48, 320)
    assert np.allclose(x[..., :96], 1.0) and np.allclose(x[..., 96:], 0.0)
    long_line = np.full((10, 1000, 3), 0, np.uint8)  # longer than the input: squeezed, not shrunk in height
    assert np.allclose(preprocess(long_line, LINE, pre), -1.0)


def test_stretch_letterbox_and_colour_order():
    img = np.zeros((10, 20, 3), np.uint8)
    img[..., 0] = 255  # red in RGB
    spec = TensorSpec("x", "float32", [1, 3, 20, 20])
    rgb = preprocess(img, spec, Preprocessing(color="rgb", resize="stretch"))
    bgr = preprocess(img, spec, Preprocessing(color="bgr", resize="stretch"))
    assert rgb[0, 0].mean() == pytest.approx(1.0) and bgr[0, 2].mean() == pytest.approx(1.0)
    boxed = preprocess(img, spec, Preprocessing(color="rgb", resize="letterbox"))
    assert boxed[0, 0, 10, 10] == pytest.approx(1.0) and boxed[0, 0, 0, 10] == 0.0  # centred, black bars
    nhwc = preprocess(img, TensorSpec("x", "float32", [1, 20, 20, 3]), Preprocessing(layout="NHWC"))
    assert nhwc.shape == (1, 20, 20, 3)


def test_generated_inputs_are_pictures_not_noise():
    feeds, what = generated_inputs([TensorSpec("x", "float32", [1, 3, 64, 64]), TensorSpec("k", "int64", [2])],
                                   None)
    x = feeds["x"]
    assert x.min() >= -1.0 and x.max() <= 1.0 and "synthetic image" in what and "integers" in what
    assert np.abs(np.diff(x, axis=-1)).mean() < 0.2  # smooth like a photo, unlike N(0,1) noise (~1.1)


def test_samples_from_files(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((1, 3, 48, 320), np.float32))
    (s,) = load_samples([tmp_path / "a.npy"], [LINE], None)
    assert s["x"].shape == (1, 3, 48, 320)
    with pytest.raises(EdgekitError, match="no such file"):
        load_samples([tmp_path / "missing"], [LINE], None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgekitError, match="no images"):
        load_samples([tmp_path / "empty"], [LINE], None)
