"""`edgekit export MODEL.onnx --target mediapipe --task image_classifier|object_detector|face_detector`: a TFLite
artifact that MediaPipe Tasks loads, verified twice.

The TFLite file is the tflite backend's own export (its conversion ladder and its LiteRT-vs-ONNX Runtime
verification, called, not copied). The metadata MediaPipe Tasks needs is then attached by MediaPipe's own
metadata writers, run in a child process behind an import shim (`_child.py`). Why the writers and not our own
flatbuffers code: the metadata is a flatbuffer inside the TFLite flatbuffer plus a zip of associated files
(labels) appended to it; writing it directly means checking in ~800 KB of generated schema code (or needing
`flatc`, in no pip package) and keeping it in step with MediaPipe's schema, while the writers are what MediaPipe's
own models are made with and only miss one native module (a version constant, see `_child.py`). The cost: export
needs the `mediapipe` extra; without it `--target mediapipe` stops with exit 2 naming the extra, since an artifact
MediaPipe never loaded is what this target exists to rule out.

What is written, from the manifest's preprocessing and the model's outputs:
- image input metadata: RGB and NormalizationOptions (pixel - mean) / std in 0..255 units. MediaPipe always feeds
  RGB, so a BGR model gets its channel order reversed in front of the graph (a Gather) before conversion; and
  it takes one mean and std for all channels, so a per-channel normalisation (ImageNet's) moves into the graph
  (Sub, Div) with metadata mean 0, std 1;
- image_classifier: one [1, N] score output, N labels (given, or "0".."N-1") as TENSOR_AXIS_LABELS;
- object_detector: the four post-NMS outputs of a detection-postprocess head (boxes [1, N, 4], classes [1, N],
  scores [1, N], count [1]) with labels, or a raw SSD head (boxes [1, A, 4 + 2K], scores [1, A, C]) with
  `--anchors`: its anchors and box coding become MediaPipe's DETECTOR_METADATA (`ssd.py`), which is also how
  full-range BlazeFace, which MediaPipe's FaceDetector cannot take, runs in MediaPipe Tasks;
- face_detector: BlazeFace's raw SSD tensors, boxes [1, A, 16] then scores [1, A, 1] (outputs reordered when the
  model has them the other way round). MediaPipe's FaceDetector decodes them with options fixed in its graph
  (short-range BlazeFace's anchors for a 128x128 input), so the input must be 128x128 and A = 896.

The second verification runs the artifact through the Tasks API itself (ImageClassifier / ObjectDetector /
FaceDetector, IMAGE mode, in the child) and compares it with edgekit's runner on the same images: scores for a
classifier, per-face box IoU and score for the face detector (edgekit's decoding: the face pipeline's anchors
and weighted NMS), per-detection box IoU and label for an object detector (a raw head: `ssd.decode` and
`ssd.nms`; an in-model NMS head: its first `count` rows above the score threshold). Both verifications are
recorded in the manifest (`verification`, `tasks`)."""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from ..errors import BackendMissing, EdgekitError, ModelError
from ..fsutil import atomic_dir, check_destination, check_writable_dir
from ..manifest import Manifest, Preprocessing, file_checksums
from ..options import spell
from ..preprocess import input_hw

TASKS = ("image_classifier", "object_detector", "face_detector")
EXTRA = "mediapipe"
INSTALL = ("pip install --no-deps mediapipe==1.2.3 && pip install matplotlib certifi "
           "(or tools/install.sh test); --no-deps keeps opencv-contrib-python out")
MIN_IOU = 0.9  # a face both find must be the same box (the agreement bar)
# MediaPipe reports boxes in whole pixels, origin and size each truncated: an edge may move by up to 2 pixels,
# which takes a 20-pixel box below MIN_IOU
PIXEL_SLACK = 2.0
MIN_SCORE = 0.5  # the detection score both sides keep in the Tasks check (MediaPipe's own default)
MAX_SCORE_DIFF = 0.01  # classifier scores and face scores, Tasks vs edgekit's runner
CHILD = Path(__file__).with_name("_child.py")


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("mediapipe") is not None


def require() -> None:
    if not available():
        raise BackendMissing("mediapipe", "MediaPipe Tasks (the `mediapipe` extra)", INSTALL)


def export_tasks(model: str | Path, task: str, *, out: str | Path | None = None, labels: list[str] | None = None,
                 input_shapes: dict | list | None = None, data: list | None = None, samples: int = 2,
                 preprocessing: Preprocessing | None = None, tolerances: dict | None = None, force: bool = False,
                 anchors: str | None = None, progress: Callable[[str, str], None] | None = None):
    """Export an ONNX image model as a MediaPipe Tasks-ready .tflite (metadata attached) into
    OUT/<model>_mediapipe/, verified with LiteRT against ONNX Runtime and through MediaPipe Tasks itself.

    Args:
        model: the .onnx file (one image input, float32).
        task: "image_classifier", "object_detector" or "face_detector".
        out: the parent folder (default: the current one).
        labels: class labels (image_classifier, object_detector); default "0".."N-1".
        input_shapes, data, samples, tolerances: as for `edgekit.export`; image files in `data` are also the
            images the Tasks check runs on.
        preprocessing: required: its normalisation and colour order become the input metadata.
        force: replace an existing artifact.
        anchors: an object_detector's raw SSD head: "short_range", "full_range" or a JSON file (`ssd.py`).

    Returns:
        one ExportResult (format "mediapipe"); `.ok`, `.path`, `.manifest` (with `tasks`), `.error`.

    Raises:
        EdgekitError: bad input (unknown task, labels not matching the output, outputs that cannot be the task's,
            mediapipe not installed), before anything is written.
    """
    from .. import exporter
    from ..exporter import ExportResult
    from ..onnx.load import load_model
    from ..onnx.shapes import fix_input_shapes, parse_shape_args, resolve_input_shapes

    progress = progress or (lambda fmt, stage: None)
    if task not in TASKS:
        raise EdgekitError(f"unknown task '{task}' for {spell('target', 'mediapipe')}; use one of: "
                           f"{', '.join(TASKS)}")
    require()
    if anchors is not None and task != "object_detector":
        raise EdgekitError(f"{spell('anchors', anchors)} goes with --task object_detector (a raw SSD head)")
    if preprocessing is None:
        raise EdgekitError(f"a MediaPipe Tasks model carries its input normalisation: give the preprocessing "
                           f"({spell('mean', 'M')}, {spell('std', 'S')}, {spell('scale', 'K')}, rgb/bgr)")
    model_path = Path(model)
    out_dir = Path(out) if out is not None else Path.cwd()
    dest = out_dir / f"{model_path.stem}_mediapipe"
    check_writable_dir(out_dir, "the output folder")
    check_destination(dest, force)
    original = load_model(model_path)
    if isinstance(input_shapes, list):
        input_shapes = parse_shape_args(input_shapes)
    shapes = resolve_input_shapes(original, input_shapes or {})
    fixed = fix_input_shapes(original, shapes)
    spec = _image_input(fixed, preprocessing)
    out_shapes = _output_shapes(fixed, spec)
    plan = _plan(task, spec, preprocessing, out_shapes, labels, anchors)  # every refusal happens here, first

    with tempfile.TemporaryDirectory(prefix="edgekit-mediapipe-") as scratch:
        scratch = Path(scratch)
        prepared = _prepare_model(fixed, plan, preprocessing, scratch / model_path.name)
        pre = plan["preprocessing"]
        progress("mediapipe", "exporting to TFLite")
        (res,) = exporter.export(prepared, "tflite", out=scratch / "tflite",
                                 data=data, samples=samples, preprocessing=pre, labels=plan.get("labels"),
                                 tolerances=tolerances, progress=progress)
        result = ExportResult("mediapipe", seconds=res.seconds, recipe=res.recipe, attempts=res.attempts,
                              manifest=res.manifest, error=res.error, log_tail=res.log_tail)
        if not res.ok:
            return result
        art = res.path
        staged = scratch / "staged"
        shutil.copytree(art, staged)
        progress("mediapipe", "writing MediaPipe metadata")
        meta = _child("write", {"model": str(art / "model.tflite"), "out": str(staged / "model.tflite"),
                                "task": task, "name": model_path.stem, "norm_mean": plan["norm_mean"],
                                "norm_std": plan["norm_std"], "labels": plan.get("labels") or [],
                                **_detector_metadata(plan)}, scratch)
        manifest = Manifest.from_dict(dataclasses.asdict(res.manifest))  # the verified one stays as it was
        manifest.checksums = file_checksums(staged, manifest.files)
        manifest.export_options.update(target="mediapipe", task=task)
        spec = manifest.inputs[0]  # the prepared model's NCHW RGB input
        _same_as_litert(art, staged, manifest, res.manifest, spec)
        progress("mediapipe", "running it through MediaPipe Tasks")
        images = _task_images(data, spec, pre, task, scratch / "images")
        ran = _child("run", {"model": str(staged / "model.tflite"), "task": task, "images": [str(p) for p in images],
                             "min_score": plan.get("min_score", MIN_SCORE),
                             "nms_threshold": plan.get("nms_threshold", 0.3)}, scratch)
        check = _compare(task, ran["results"], staged, manifest, spec, images, plan)
        manifest.tasks = {"task": task, "api": plan["api"], "mediapipe": ran["version"],
                          "metadata": {"color_space": "RGB", "norm_mean": plan["norm_mean"],
                                       "norm_std": plan["norm_std"], "outputs": plan["roles"],
                                       "labels": len(plan.get("labels") or []),
                                       "min_parser_version": meta["min_parser_version"],
                                       "channel_reversed_in_graph": plan["reverse_channels"],
                                       "normalization_in_graph": plan["normalization_in_graph"],
                                       "mediapipe_resize": plan["mediapipe_resize"],
                                       **({"decoding": plan["coding"].describe()} if "coding" in plan else {})},
                          "verification": check}
        result.manifest = manifest
        if not check["passed"]:
            result.error = (f"mediapipe: MediaPipe Tasks' {plan['api']} disagrees with edgekit's runner on the "
                            f"exported model: {check['why']}")
            return result
        manifest.save(staged)
        with atomic_dir(dest, force) as tmp:
            for f in staged.iterdir():
                shutil.move(str(f), tmp / f.name)
        result.ok, result.path = True, dest
        return result


def _detector_metadata(plan: dict) -> dict:
    """A raw SSD head's anchors and decoding options for the writer (MediaPipe reads the boxes as YXHW)."""
    coding = plan.get("coding")
    if coding is None:
        return {}
    sx, sy, sw, sh = coding.scale
    return {"anchors": coding.anchors.tolist(),
            "decoding": {"num_classes": len(plan["labels"]), "num_boxes": len(coding.anchors),
                         "num_coords": 4 + 2 * plan["keypoints"], "keypoint_coord_offset": 4,
                         "num_keypoints": plan["keypoints"], "num_values_per_keypoint": 2, "x_scale": sx,
                         "y_scale": sy, "w_scale": sw, "h_scale": sh,
                         "apply_exponential_on_box_size": coding.exp_box_size,
                         "sigmoid_score": coding.sigmoid_score}}


def _image_input(model: onnx.ModelProto, pre: Preprocessing):
    from ..onnx import inspect

    ins = inspect.graph_inputs(model)
    if len(ins) != 1:
        raise EdgekitError(f"a MediaPipe Tasks vision model has one image input; this one has {len(ins)}: "
                           f"{', '.join(s.name for s in ins)}")
    spec = ins[0]
    channels = spec.shape[1] if pre.layout == "NCHW" else spec.shape[-1] if spec.shape else None
    if len(spec.shape) != 4 or spec.shape[0] != 1 or channels != 3 or spec.dtype != "float32":
        raise EdgekitError(f"input '{spec.name}' {spec.shape} ({spec.dtype}) is not a float32 1x3xHxW / 1xHxWx3 "
                           f"image in the {pre.layout} layout the preprocessing gives; set {spell('layout', 'NHWC')}"
                           " for an NHWC model")
    return spec


def _output_shapes(model: onnx.ModelProto, spec) -> dict[str, tuple]:
    """Output name -> shape, from one ONNX Runtime run (inference may leave output axes unnamed)."""
    from ..runner import reference

    ref = reference(model)
    feeds = {spec.name: np.zeros([int(d) for d in spec.shape], np.float32)}
    return {k: tuple(v.shape) for k, v in ref(feeds).items()}


# mediapipe/tasks/cc/vision/face_detector/face_detector_graph.cc fixes the decoding: short-range BlazeFace's SSD
# anchors for a 128x128 input (896), 16 coordinates (box + 6 keypoints), boxes then scores, weighted NMS
FACE_INPUT = 128


def face_anchor_count(size: int) -> int:
    """How many anchors short-range BlazeFace's SSD options give a square input of `size`."""
    from ..pipeline.nodes.face import SHORT_RANGE, ssd_anchors

    return len(ssd_anchors(**{**SHORT_RANGE, "input_size": size}))


def _plan(task, spec, pre: Preprocessing, outs: dict[str, tuple], labels, anchors: str | None = None) -> dict:
    """What the metadata says and how the model must look for it; refuses what MediaPipe cannot use."""
    scale = float(pre.scale)
    mean = [float(v) / scale for v in (pre.mean if len(pre.mean) == 3 else pre.mean * 3)]
    std = [float(v) / scale for v in (pre.std if len(pre.std) == 3 else pre.std * 3)]
    reverse = pre.color == "bgr"
    if reverse:  # the Gather in front takes RGB pixels: normalise each in its RGB position
        mean, std = mean[::-1], std[::-1]
    fold = len(set(mean)) > 1 or len(set(std)) > 1
    if fold:  # MediaPipe takes one mean and std for all channels ("Per-channel image normalization is not
        # available"): the graph normalises per channel itself and MediaPipe hands it 0..255 pixels
        folded, mean, std = (mean, std), [0.0] * 3, [1.0] * 3
    rgb = dataclasses.replace(pre, color="rgb", mean=[v * scale for v in mean], std=[v * scale for v in std],
                              layout="NCHW",  # _prepare_model puts an NCHW RGB input in front
                              resize="stretch" if task == "object_detector" else pre.resize)  # as MediaPipe does
    plan = {"norm_mean": [round(v, 6) for v in mean], "norm_std": [round(v, 6) for v in std],
            "reverse_channels": reverse, "preprocessing": rgb, "order": list(outs),
            "normalization_in_graph": folded if fold else None}
    names = list(outs)
    shown = ", ".join(f"{k} {list(v)}" for k, v in outs.items())
    if task == "image_classifier":
        if len(outs) != 1 or len(outs[names[0]]) != 2 or outs[names[0]][0] != 1 or outs[names[0]][1] < 2:
            raise EdgekitError(f"an image_classifier needs one [1, N] score output (N >= 2); this model has {shown}")
        n = outs[names[0]][1]
        labels = list(labels) if labels else [str(i) for i in range(n)]
        if len(labels) != n:
            raise EdgekitError(f"{len(labels)} labels for output '{names[0]}' of {n} classes: give one label per "
                               "class, in the output's order")
        plan.update(api="ImageClassifier", labels=labels, roles={names[0]: "scores"}, mediapipe_resize="stretch")
    elif task == "object_detector":
        ranks = [len(s) for s in outs.values()]
        raw = _raw_head(outs)
        if anchors is not None and raw is None:
            raise EdgekitError(f"{spell('anchors', anchors)} is for a raw SSD head (boxes [1, A, 4 + 2K] and scores "
                               f"[1, A, C]); this model has {shown}")
        if raw is None and (len(outs) != 4 or ranks != [3, 2, 2, 1] or list(outs.values())[0][-1] != 4):
            raise EdgekitError(f"an object_detector needs the four post-NMS outputs MediaPipe's ObjectDetector takes "
                               f"(boxes [1, N, 4], classes [1, N], scores [1, N], count [1], in that order), or a "
                               f"raw SSD head (boxes [1, A, 4 + 2K], scores [1, A, C]) with "
                               f"{spell('anchors', 'short_range|full_range|FILE.json')}; this model has {shown}")
        plan.update(api="ObjectDetector", labels=list(labels) if labels else None, mediapipe_resize="stretch")
        if not plan["labels"]:
            raise EdgekitError(f"an object_detector needs its class labels: give {spell('labels', 'FILE')}")
        if raw is None:
            plan.update(roles=dict(zip(names, ("boxes", "classes", "scores", "count"))))
        else:
            plan.update(_raw_plan(raw, outs, spec, pre, anchors, plan["labels"]))
    else:
        h, w = input_hw(spec, pre.layout)
        boxes = [k for k, s in outs.items() if len(s) == 3 and s[0] == 1 and s[2] == 16]
        scores = [k for k, s in outs.items() if len(s) == 3 and s[0] == 1 and s[2] == 1]
        if len(outs) != 2 or len(boxes) != 1 or len(scores) != 1 or outs[boxes[0]][1] != outs[scores[0]][1]:
            raise EdgekitError(f"a face_detector needs BlazeFace's two raw SSD outputs, boxes and 6 keypoints "
                               f"[1, A, 16] and scores [1, A, 1]; this model has {shown}")
        want = face_anchor_count(FACE_INPUT)
        if (h, w) != (FACE_INPUT, FACE_INPUT) or outs[boxes[0]][1] != want:
            raise EdgekitError(f"MediaPipe's FaceDetector decodes a {FACE_INPUT}x{FACE_INPUT} input with {want} "
                               f"anchors (short-range BlazeFace's SSD options, fixed in its graph); this model takes "
                               f"{h}x{w} and has {outs[boxes[0]][1]}. MediaPipe's ObjectDetector takes other "
                               f"anchors: --task object_detector --labels FILE "
                               f"{spell('anchors', 'full_range|FILE.json')}")
        if labels:
            raise EdgekitError(f"a face_detector has no labels; leave out {spell('labels', 'FILE')}")
        plan.update(api="FaceDetector", order=[boxes[0], scores[0]], roles={boxes[0]: "boxes", scores[0]: "scores"},
                    mediapipe_resize="letterbox", anchors=want, size=h, min_score=0.5, nms_threshold=0.3)
    return plan


def _raw_head(outs: dict[str, tuple]) -> tuple[str, str] | None:
    """(boxes, scores) output names when the outputs are a raw SSD head: [1, A, 4 + 2K] and [1, A, C]."""
    if len(outs) != 2 or any(len(s) != 3 or s[0] != 1 for s in outs.values()):
        return None
    (a, sa), (b, sb) = outs.items()
    if sa[1] != sb[1]:
        return None
    fits = [(x, y) for x, y in ((a, b), (b, a)) if outs[x][2] >= 4 and outs[x][2] % 2 == 0]
    # both could be boxes (4 classes beside 4 coordinates): the model's output order, boxes first as MediaPipe's
    return next((f for f in fits if not (outs[f[1]][2] >= 4 and outs[f[1]][2] % 2 == 0)), fits[0] if fits else None)


def _raw_plan(raw, outs, spec, pre: Preprocessing, anchors: str | None, labels: list) -> dict:
    """The DETECTOR_METADATA for a raw SSD head, from `--anchors`; refuses a coding that does not fit it."""
    from . import ssd

    boxes, scores = raw
    a, coords, classes = outs[boxes][1], outs[boxes][2], outs[scores][2]
    if anchors is None:
        raise EdgekitError(f"'{boxes}' {list(outs[boxes])} and '{scores}' {list(outs[scores])} are a raw SSD head: "
                           f"MediaPipe decodes it with the anchors and box coding in the model's metadata; give "
                           f"{spell('anchors', 'short_range|full_range|FILE.json')} (see edgekit/mediapipe/ssd.py)")
    coding = ssd.load_coding(anchors, input_hw(spec, pre.layout))
    if len(coding.anchors) != a:
        raise EdgekitError(f"{spell('anchors', anchors)} gives {len(coding.anchors)} anchors; the model's "
                           f"'{boxes}' has {a}")
    if len(labels) != classes:
        raise EdgekitError(f"{len(labels)} labels for '{scores}' of {classes} classes: give one label per class, "
                           "in the output's order")
    return {"order": [boxes, scores], "roles": {boxes: "location", scores: "score"}, "coding": coding,
            "yxhw_order": ssd.yxhw_order(coords, coding.box_format), "keypoints": (coords - 4) // 2,
            "min_score": coding.min_score, "nms_threshold": 0.3}


def _prepare_model(model: onnx.ModelProto, plan: dict, pre: Preprocessing, path: Path) -> Path:
    """The (shape-fixed) model as MediaPipe must see it: outputs in the task's order; an NCHW image input in
    front (an NHWC model gets a Transpose after it: onnx2tf makes an NCHW input NHWC, so the TFLite file takes
    1xHxWx3 as MediaPipe requires, where an NHWC ONNX input would come out 1xHx3xW); before that, for a BGR
    model a channel reversal (MediaPipe feeds RGB), and first a per-channel normalisation MediaPipe cannot do."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    by_name = {o.name: o for o in m.graph.output}
    order = [by_name[n] for n in plan["order"]]
    del m.graph.output[:]
    m.graph.output.extend(order)
    if plan.get("yxhw_order"):  # MediaPipe reads raw boxes as YXHW: reorder an XYWH model's coordinates
        boxes = plan["order"][0]
        idx = onnx.helper.make_tensor(f"{boxes}__yxhw_index", onnx.TensorProto.INT64, [len(plan["yxhw_order"])],
                                      plan["yxhw_order"])
        m.graph.initializer.append(idx)
        for node in m.graph.node:
            node.output[:] = [f"{boxes}__xywh" if o == boxes else o for o in node.output]
            node.input[:] = [f"{boxes}__xywh" if i == boxes else i for i in node.input]
        m.graph.node.append(onnx.helper.make_node("Gather", [f"{boxes}__xywh", idx.name], [boxes], axis=2,
                                                  name="edgekit_xywh_to_yxhw"))
    x = m.graph.input[0]
    front, name = [], x.name
    if plan["normalization_in_graph"]:  # per-channel (x - mean) / std on 0..255 RGB pixels, before any swap
        for op, vals in zip(("Sub", "Div"), plan["normalization_in_graph"]):
            c = onnx.helper.make_tensor(f"{x.name}__{op.lower()}", onnx.TensorProto.FLOAT, [1, 3, 1, 1], vals)
            m.graph.initializer.append(c)
            front.append(onnx.helper.make_node(op, [name, c.name], [f"{x.name}__{op.lower()}ed"],
                                               name=f"edgekit_normalize_{op.lower()}"))
            name = f"{x.name}__{op.lower()}ed"
    if plan["reverse_channels"]:
        idx = onnx.helper.make_tensor(f"{x.name}__bgr_index", onnx.TensorProto.INT64, [3], [2, 1, 0])
        m.graph.initializer.append(idx)
        front.append(onnx.helper.make_node("Gather", [name, idx.name], [f"{x.name}__bgr"], axis=1,
                                           name="edgekit_rgb_to_bgr"))
        name = f"{x.name}__bgr"
    if pre.layout == "NHWC":
        front.append(onnx.helper.make_node("Transpose", [name], [f"{x.name}__nhwc"], perm=[0, 2, 3, 1],
                                           name="edgekit_nchw_to_nhwc"))
        name = f"{x.name}__nhwc"
        dims = x.type.tensor_type.shape.dim
        n, h, w, c = (d.dim_value for d in dims)
        for d, v in zip(dims, (n, c, h, w)):
            d.dim_value = v
    if front:
        for node in m.graph.node:
            node.input[:] = [name if i == x.name else i for i in node.input]
        for node in reversed(front):
            m.graph.node.insert(0, node)
    onnx.save(m, str(path))
    return path


def _child(what: str, spec: dict, scratch: Path) -> dict:
    """Run `_child.py what` with this spec; its one result line, or a ModelError with its last lines."""
    from ..subproc import run_tool

    path = scratch / f"{what}.json"
    path.write_text(json.dumps(spec))
    proc = run_tool([sys.executable, str(CHILD), what, str(path)], cwd=scratch, timeout=600)
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("EDGEKIT-RESULT ")), None)
    if proc.returncode != 0 or line is None:
        lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
        error = next((ln for ln in reversed(lines) if ln.startswith("EDGEKIT-ERROR ")), None)
        why = (error[len("EDGEKIT-ERROR "):] if error else lines[-1] if lines else f"exit {proc.returncode}")[:600]
        step = "metadata writer" if what == "write" else "Tasks"
        raise ModelError(f"mediapipe: MediaPipe's {step} failed: {why}") from None
    return json.loads(line[len("EDGEKIT-RESULT "):])


def _same_as_litert(art: Path, staged: Path, manifest, original_manifest, spec) -> None:
    """The metadata must not change what LiteRT computes: the staged file runs through the runner door and
    must give the verified artifact's outputs exactly."""
    from ..preprocess import prepare, synthetic_image
    from ..runner import open_artifact


    h, w = input_hw(spec, manifest.preprocessing.layout)
    x = {spec.name: prepare(synthetic_image(h, w), spec, manifest.preprocessing, color="rgb")[0]}
    a, b = open_artifact(art, original_manifest), open_artifact(staged, manifest)
    try:
        ra, rb = a(x), b(x)
    finally:
        a.close()
        b.close()
    if any(not np.array_equal(ra[k], rb[k]) for k in ra):
        raise ModelError("mediapipe: the model with metadata computes other outputs than the verified TFLite file")


def _task_images(data, spec, pre: Preprocessing, task: str, folder: Path) -> list[Path]:
    """The images the Tasks check runs on: the image files among `data` (a classifier's resized to the input
    size, so MediaPipe's resize and edgekit's agree), else one synthetic image."""
    import cv2

    from ..preprocess import IMAGE_SUFFIXES, synthetic_image

    folder.mkdir(parents=True, exist_ok=True)
    h, w = input_hw(spec, pre.layout)
    paths = []
    for p in (Path(d).resolve() for d in data or []):  # absolute: the Tasks child runs in another folder
        paths += sorted(p.iterdir()) if p.is_dir() else [p]
    paths = [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]
    if not paths:
        p = folder / "synthetic.png"
        cv2.imwrite(str(p), synthetic_image(max(h, 64), max(w, 64)))
        paths = [p]
    if task != "image_classifier":
        return paths
    out = []
    for i, p in enumerate(paths):
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        q = folder / f"input_{i}.png"
        cv2.imwrite(str(q), cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA))
        out.append(q)
    return out


def _compare(task, mp_results, folder, manifest, spec, images, plan) -> dict:
    """Tasks' results against edgekit's runner on the same images."""
    import cv2

    from ..preprocess import prepare
    from ..runner import open_artifact

    runner = open_artifact(folder, manifest)
    rows, why = [], []
    try:
        for path, got in zip(images, mp_results):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            x, t = prepare(frame, spec, manifest.preprocessing, color="bgr")
            outs = runner({spec.name: x})
            if task == "image_classifier":
                ours = outs[plan["order"][0]].reshape(-1)
                theirs = np.array([got["scores"].get(str(i), np.nan) for i in range(ours.size)], np.float64)
                if np.isnan(theirs).any() or len(got["scores"]) != ours.size:  # a class MediaPipe did not score
                    why.append(f"{Path(path).name}: MediaPipe scored {len(got['scores'])} of {ours.size} classes")
                    continue
                diff = float(np.max(np.abs(ours - theirs)))
                top = bool(int(np.argmax(ours)) == int(np.argmax(theirs)))
                rows.append({"image": Path(path).name, "max_score_diff": diff, "top1_agrees": top})
                if diff > MAX_SCORE_DIFF or not top:
                    why.append(f"{Path(path).name}: scores differ by {diff:.4f}, top-1 {'kept' if top else 'changed'}")
            elif task == "face_detector":
                ours = face_boxes(outs[plan["order"][0]], outs[plan["order"][1]], t, plan["size"], plan["min_score"],
                                  plan["nms_threshold"])
                _same_boxes(Path(path).name, got["detections"], ours, "face", False, rows, why)
            elif "coding" in plan:
                ours = raw_detections(outs[plan["order"][0]], outs[plan["order"][1]], t, plan)
                _same_boxes(Path(path).name, got["detections"], ours, "detection", True, rows, why)
            else:
                ours = post_nms_detections([outs[k] for k in plan["order"]], t, plan["labels"],
                                           plan.get("min_score", MIN_SCORE))
                _same_boxes(Path(path).name, got["detections"], ours, "detection", True, rows, why)
    finally:
        runner.close()
    metric = {"image_classifier": f"max |score difference| <= {MAX_SCORE_DIFF} and top-1 equal",
              "face_detector": f"same faces, box IoU >= {MIN_IOU} each (edgekit: the face pipeline's decoding)",
              "object_detector": f"same detections and labels, box IoU >= {MIN_IOU} or edges within "
                                 f"{PIXEL_SLACK:g} px each (edgekit: " + (
                  "ssd.decode, ssd.nms)" if "coding" in plan else "the model's first `count` rows above the score "
                                                                 "threshold)")}[task]
    return {"passed": not why, "images": len(rows), "criterion": metric, "per_image": rows, "why": "; ".join(why)}


def _same_boxes(image: str, theirs: list, ours: list, noun: str, labels: bool, rows: list, why: list) -> None:
    """One image's detections, MediaPipe's against edgekit's: the same count, each box the same (IoU >= MIN_IOU, or
    every edge within PIXEL_SLACK, which a small box loses to MediaPipe's whole pixels) and (with `labels`) the
    same labels; its row into `rows`, what disagrees into `why`."""
    pairs = match_pairs([d["box"] for d in theirs], [d["box"] for d in ours])
    ious = [box_iou(a, b) for a, b in pairs]
    same_boxes = all(v >= MIN_IOU or np.abs(np.subtract(a, b)).max() < PIXEL_SLACK for v, (a, b) in zip(ious, pairs))
    row = {"image": image, f"{noun}s_mediapipe": len(theirs), f"{noun}s_edgekit": len(ours),
           "ious": [round(v, 4) for v in ious]}
    same = not labels or sorted(map(str, (d["label"] for d in theirs))) == sorted(map(str, (d["label"] for d in ours)))
    if labels:
        row["labels_agree"] = same
    rows.append(row)
    if len(theirs) != len(ours) or not same_boxes or not same:
        why.append(f"{image}: MediaPipe {len(theirs)} {noun}(s), edgekit {len(ours)}, box IoU "
                   f"{', '.join(f'{v:.3f}' for v in ious) or '-'}" + ("" if same else ", labels differ"))


def face_boxes(raw_boxes, raw_scores, transform, size, min_score, nms_threshold) -> list[dict]:
    """BlazeFace raw outputs -> faces in frame pixels, with the face pipeline's decoding and weighted NMS."""
    from ..pipeline.nodes.face import SHORT_RANGE, decode, ssd_anchors, weighted_nms

    anchors = ssd_anchors(**{**SHORT_RANGE, "input_size": size})
    boxes, scores = decode(raw_boxes, raw_scores, anchors, size, min_score)
    faces = []
    for pts, score in weighted_nms(boxes, scores, nms_threshold):
        p = transform.norm_to_frame(pts)
        faces.append({"box": [float(p[0, 0]), float(p[0, 1]), float(p[1, 0]), float(p[1, 1])], "score": score})
    return faces


def raw_detections(raw_boxes, raw_scores, transform, plan) -> list[dict]:
    """A raw SSD head's outputs (YXHW, as exported) -> detections in frame pixels, decoded as MediaPipe's
    ObjectDetector does (`ssd.decode`, then hard NMS)."""
    from . import ssd

    boxes, points, scores, classes = ssd.decode(raw_boxes, raw_scores, plan["coding"], plan["min_score"])
    out = []
    for i in ssd.nms(boxes, scores, plan["nms_threshold"]):
        p = transform.norm_to_frame(boxes[i].reshape(2, 2))
        out.append({"box": [float(p[0, 0]), float(p[0, 1]), float(p[1, 0]), float(p[1, 1])],
                    "score": float(scores[i]), "label": plan["labels"][int(classes[i])],
                    "keypoints": transform.norm_to_frame(points[i]).tolist()})
    return out


def post_nms_detections(outs, transform, labels, min_score) -> list[dict]:
    """A detection-postprocess head's four outputs (boxes [1, N, 4] as ymin, xmin, ymax, xmax in 0..1, classes,
    scores, count) -> the detections MediaPipe's ObjectDetector reports: the first `count` rows scoring at least
    `min_score`, in frame pixels."""
    boxes, classes, scores, count = (np.asarray(o, np.float64).reshape(-1) for o in outs)
    boxes = boxes.reshape(-1, 4)
    out = []
    for i in range(min(int(count[0]), len(scores))):
        if scores[i] >= min_score:
            p = transform.norm_to_frame(boxes[i][[1, 0, 3, 2]].reshape(2, 2))
            out.append({"box": [float(p[0, 0]), float(p[0, 1]), float(p[1, 0]), float(p[1, 1])],
                        "score": float(scores[i]),
                        "label": labels[int(classes[i])] if 0 <= classes[i] < len(labels) else None})
    return out


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_pairs(theirs: list, ours: list) -> list[tuple]:
    """Each of `theirs` with its best match among `ours` by IoU (greedy, one use each)."""
    left, out = list(ours), []
    for a in theirs:
        if not left:
            break
        best = max(range(len(left)), key=lambda i: box_iou(a, left[i]))
        out.append((a, left.pop(best)))
    return out


def match_ious(theirs: list, ours: list) -> list[float]:
    """For each of `theirs`, the IoU with its best match among `ours` (greedy, one use each)."""
    return [box_iou(a, b) for a, b in match_pairs(theirs, ours)]
