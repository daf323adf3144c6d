"""The part of the MediaPipe Tasks export that imports `mediapipe`, run as a script in a child process
(`edgekit.subproc.run_tool`): `import mediapipe` pulls TensorFlow-sized native libraries and matplotlib, and its
C library logs on stderr, so it stays out of edgekit's process. It imports nothing from edgekit.

    python _child.py write SPEC.json   # SPEC: model, out, task, norm_mean, norm_std, labels(, anchors,
                                       #   decoding: a raw SSD head's DETECTOR_METADATA) -> writes out
    python _child.py run SPEC.json     # SPEC: model, task, images -> prints one JSON line of results

`write` uses MediaPipe's own metadata writers. In mediapipe 1.2.x they import
`mediapipe.tasks.cc.metadata.python._pywrap_metadata_version`, a native module missing from the wheel; the
shim below provides its one function, `GetMinimumMetadataParserVersion`, as a constant. MediaPipe's metadata
parser only refuses a model whose minimum version is newer than itself, and every field the writers use here
(image normalisation, colour space, labels, feature/detection outputs) exists since parser version 1.0.0."""
from __future__ import annotations

import json
import sys
import types

MIN_PARSER_VERSION = "1.0.0"


def _shim() -> None:
    """Make MediaPipe's metadata writers importable (see the module docstring)."""
    name = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
    try:
        __import__(name)
        return
    except ImportError:
        pass
    parts = name.split(".")
    for i in range(3, len(parts) + 1):  # mediapipe.tasks.cc, ...: packages the wheel lacks
        sub = ".".join(parts[:i])
        if sub not in sys.modules:
            mod = types.ModuleType(sub)
            mod.__path__ = []
            sys.modules[sub] = mod
    sys.modules[name].GetMinimumMetadataParserVersion = lambda buf: MIN_PARSER_VERSION


def write(spec: dict) -> dict:
    _shim()
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer as mw

    with open(spec["model"], "rb") as f:
        buf = bytearray(f.read())
    w = mw.MetadataWriter.create(buf)
    w.add_general_info(spec.get("name", "model"), spec.get("description", "exported by edgekit"))
    w.add_image_input(norm_mean=spec["norm_mean"], norm_std=spec["norm_std"],
                      color_space_type=mw.metadata_fb.ColorSpaceType.RGB)
    task = spec["task"]
    if task == "image_classifier":
        w.add_classification_output(mw.Labels().add(spec["labels"]))
    elif task == "object_detector" and spec.get("anchors"):  # a raw SSD head: MediaPipe decodes it from these
        from mediapipe.tasks.python.metadata.metadata_writers import metadata_info
        from mediapipe.tasks.python.metadata.metadata_writers import object_detector as od

        w.add_raw_detection_output(mw.Labels().add(spec["labels"]),
                                   output_tensors_order=metadata_info.RawDetectionOutputTensorsOrder.LOCATION_SCORE)
        anchors = od.SsdAnchorsOptions(od.FixedAnchorsSchema(
            [od.FixedAnchor(x_center=x, y_center=y, width=aw, height=ah) for x, y, aw, ah in spec["anchors"]]))
        w.add_custom_metadata(od.ObjectDetectorOptionsMd(anchors, od.TensorsDecodingOptions(**spec["decoding"])))
    elif task == "object_detector":
        # The writer pairs location, category, score and count with the outputs in the order of their tensor
        # indices (TFLite_Detection_PostProcess's ports); a converted model's indices need not follow its
        # outputs (onnx2tf numbered this head's count before its scores), so pair them in output order, which
        # the export has put in the task's order
        from mediapipe.tasks.python.metadata.metadata_writers import writer_utils

        w.add_detection_output(mw.Labels().add(spec["labels"]))
        names = writer_utils.get_output_tensor_names(buf)
        for md, tensor in zip(w._output_mds, names):
            md.tensor_name = tensor
        w._output_group_mds[-1].tensor_names = names[:3]
    elif task == "face_detector":  # the FaceDetector graph decodes the raw SSD tensors itself: boxes, then scores
        w.add_feature_output(name="regressors", description="box and keypoint offsets per anchor")
        w.add_feature_output(name="classificators", description="face score logit per anchor")
    else:
        raise SystemExit(f"unknown task {task}")
    model, metadata_json = w.populate()
    del w  # its __del__ cleans a temporary folder; at interpreter exit `os` is gone and it would complain
    with open(spec["out"], "wb") as f:
        f.write(model)
    return {"metadata": json.loads(metadata_json), "min_parser_version": MIN_PARSER_VERSION}


def run(spec: dict) -> dict:
    """Each image through the task's MediaPipe API (IMAGE mode): classifications or detections."""
    import cv2
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    base = BaseOptions(model_asset_path=spec["model"])
    task = spec["task"]
    if task == "image_classifier":
        api = vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(
            base_options=base, max_results=-1))
    elif task == "object_detector":
        api = vision.ObjectDetector.create_from_options(vision.ObjectDetectorOptions(
            base_options=base, max_results=-1, score_threshold=spec.get("min_score", 0.0)))
    else:
        api = vision.FaceDetector.create_from_options(vision.FaceDetectorOptions(
            base_options=base, min_detection_confidence=spec.get("min_score", 0.5),
            min_suppression_threshold=spec.get("nms_threshold", 0.3)))
    results = []
    with api:
        for path in spec["images"]:
            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
            if task == "image_classifier":
                head = api.classify(image).classifications[0]
                results.append({"scores": {c.index: c.score for c in head.categories}})
                continue
            dets = []
            for d in api.detect(image).detections:
                b = d.bounding_box
                dets.append({"box": [b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height],
                             "score": d.categories[0].score if d.categories else None,
                             "label": d.categories[0].category_name if d.categories else None,
                             "keypoints": [[k.x, k.y] for k in (d.keypoints or [])]})
            results.append({"detections": dets, "size": [rgb.shape[1], rgb.shape[0]]})
    return {"results": results, "version": getattr(mp, "__version__", "?")}


def main() -> int:
    # mediapipe's metadata module opens files through TensorFlow when it can import it (20 s here); plain
    # files need no TensorFlow, so the import is refused and it falls back to open()
    sys.modules["tensorflow"] = None
    what, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        spec = json.load(f)
    try:
        out = {"write": write, "run": run}[what](spec)
    except Exception as e:  # one line the parent reports (MediaPipe's objects log more noise as they go)
        print(f"EDGEKIT-ERROR {type(e).__name__}: {' '.join(str(e).split())}", flush=True)
        raise
    print("EDGEKIT-RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
