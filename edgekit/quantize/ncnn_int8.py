"""Rewrite an fp32 ncnn model as int8, as ncnn2int8 does, without ncnn's C++ tools.

What ncnn2int8 writes (ncnn a4d2ea1 `tools/quantize/ncnn2int8.cpp` quantize_convolution (8=2 at line 209) /
quantize_convolutiondepthwise (8=1, line 271) / quantize_innerproduct (8=2, line 326), saved by
`tools/modelwriter.h` ModelWriter::save, fwrite_weight_tag_data lines 635-692, depthwise scales 1134-1156):
`8=2` on Convolution and InnerProduct (per-output-channel weight scales), `8=1` on ConvolutionDepthWise
(per-group weight scales); the weights are stored quantized, as a tagged int8 blob (tag 0x000D4B38, padded to
4 bytes); the bias stays raw fp32; then, untagged fp32, the weight scales and the one bottom-blob scale. The
loader reads exactly that (`src/layer/convolution.cpp`, `convolutiondepthwise.cpp`, `innerproduct.cpp`
load_model: weight, bias, weight_data_int8_scales, bottom_blob_int8_scales; convolution.cpp lines 63-84,
convolutiondepthwise.cpp 70-104, innerproduct.cpp 42-58). Requantize fusion follows (`requantize=True`,
ncnn_requantize): an int8 convolution whose output only int8 convolutions read gets 8=102 / 8=101 and a top
scale (the consumers' bottom scale) and writes int8; every other int8 layer takes and gives fp32.
The runtime only takes the int8 path with `opt.use_int8_inference = True` (`forward`: "if
(opt.use_int8_inference && weight_data.elemsize == 1)"); see `int8_net`."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgekitError
from . import calibrate, ncnn_requantize, reference
from .ncnn_model import TAG_FP32, NcnnModel, fp16_blob, fp32_blob, int8_blob
from .ncnn_rewrite import fold_affines, gemms_to_innerproducts, innerproducts_to_convolutions

METHODS = ("kl", "aciq", "eq", "best")
BEST_SAMPLES = 4


@dataclass
class LayerReport:
    name: str
    type: str
    bottom: str
    bottom_scale: float
    weight_scales: list[float]
    int8_scale_term: int
    chosen: str = ""  # method "best": which candidate scale won, and each candidate's layer cosine
    cosines: dict = field(default_factory=dict)


@dataclass
class QuantizeReport:
    method: str
    samples: int
    quantized: list[LayerReport] = field(default_factory=list)
    kept_float: list[str] = field(default_factory=list)
    gemm_rewritten: list[str] = field(default_factory=list)  # Gemm layers now InnerProduct (ncnn_rewrite)
    folded: list[str] = field(default_factory=list)  # BinaryOp / activation layers folded into convolutions
    ip_as_conv: list[str] = field(default_factory=list)  # 2D InnerProducts now 1x1 Convolutions (ncnn_rewrite)
    requantized: list[str] = field(default_factory=list)  # int8 layers that write int8 (ncnn_requantize)
    float_weights: str = "fp32"
    fp32_bytes: int = 0
    int8_bytes: int = 0

    @property
    def size_ratio(self) -> float:
        return self.int8_bytes / self.fp32_bytes if self.fp32_bytes else float("nan")


def int8_net(param: str | Path, binf: str | Path, threads: int = 1):
    """An ncnn.Net for an int8 artifact: int8 inference on, fp16/bf16 storage off for the float layers."""
    import ncnn

    net = ncnn.Net()
    for key in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
        setattr(net.opt, key, False)
    net.opt.use_int8_inference = True
    net.opt.num_threads = threads
    if net.load_param(str(param)) != 0 or net.load_model(str(binf)) != 0:
        raise EdgekitError(f"ncnn cannot load the int8 model {param} / {binf}")
    return net


def feeds_for_ncnn(samples: list[dict], input_names: dict[str, str] | None, drop_batch: bool) -> list[dict]:
    """Samples keyed by ONNX input name (with batch axis) -> keyed by ncnn blob name, batch axis dropped."""
    out = []
    for s in samples:
        f = {}
        for k, v in s.items():
            name = (input_names or {}).get(k, k)
            v = np.asarray(v, np.float32)
            f[name] = v[0] if drop_batch else v
        out.append(f)
    return out


def quantize(param: str | Path, binf: str | Path, out_param: str | Path, out_bin: str | Path,
             samples: list[dict], input_names: dict[str, str] | None = None, method: str = "kl",
             keep_float: set[str] | frozenset = frozenset(), drop_batch: bool = True, threads: int = 1,
             eq_samples: int = calibrate.EQ_SAMPLES, gemm_to_innerproduct: bool = True,
             float_weights: str = "fp32", fold: bool = True, requantize: bool = True,
             innerproduct_to_conv: bool = True, cache: dict | None = None) -> QuantizeReport:
    """Calibrate on `samples` and write the int8 model; layers named in `keep_float` stay fp32.

    `method`: kl / aciq / eq as ncnn2table; "best" takes, per layer, whichever of the KL, ACIQ and absmax
    bottom scales gives that layer's int8 output the highest cosine to fp32, then adds to the bias the mean
    per-channel error int8 leaves (calibrate.bias_correction) where that raises the cosine further (edgekit's
    additions; "+bias" in the layer's `chosen`).
    `samples`: dicts of input name -> array; `input_names` maps those names to ncnn blob names (in0, ...)
    where they differ; `drop_batch` strips the leading batch axis (ncnn blobs have none).
    `gemm_to_innerproduct`: first rewrite plain constant-B Gemm layers as InnerProduct (checked to give the same
    fp32 numbers on the first sample) so that they are quantized too.
    `float_weights="fp16"` stores the weights of every layer left in float as tagged fp16 (ncnn widens them
    to fp32 at load, so those layers still compute in fp32, on fp16-rounded weights): a smaller file.
    `cache`: a dict kept between calls on the same model, samples and method (the accuracy repair's rounds):
    each layer's calibrated scales are computed once, since they depend on fp32 statistics only.
    `innerproduct_to_conv`: an InnerProduct on a 2D blob becomes a 1x1 Convolution between two Permutes
    (ncnn_rewrite.innerproducts_to_convolutions: x86 int8 is slower than fp32 on the former, ~8x faster on the
    latter), checked like the Gemm rewrite.
    `requantize`: int8 convolutions whose output only int8 convolutions read write int8 (ncnn_requantize.fuse;
    ncnn2int8's fuse_requantize), so no fp32 blob lies between them.
    `fold`: fold scalar affines and activations into the convolutions (ncnn_rewrite.fold_affines; checked like
    the Gemm rewrite). A layer that then pads with a non-zero value stays float: ncnn's int8 path pads the
    already quantized blob with that raw value (`convolution.cpp` make_padding after quantize_to_int8 in
    `x86/convolution_x86.cpp` forward_int8_x86), which would be wrong."""
    if method not in METHODS:
        raise EdgekitError(f"unknown calibration method '{method}'; use one of: {', '.join(METHODS)}")
    if not samples:
        raise EdgekitError("int8 calibration needs at least one sample")
    model = NcnnModel.read(param, binf)
    unknown = set(keep_float) - {l.name for l in model.layers}
    if unknown:
        raise EdgekitError(f"keep_float names no layer of the model: {', '.join(sorted(unknown))}")
    report = QuantizeReport(method, len(samples))
    feeds = feeds_for_ncnn(samples, input_names, drop_batch)
    src_param, src_bin = param, binf
    report.gemm_rewritten, report.ip_as_conv, report.folded = fp32_rewrites(
        model, param, binf, feeds[0], set(keep_float), gemm_to_innerproduct, innerproduct_to_conv, fold)
    rewritten = report.gemm_rewritten or report.ip_as_conv or report.folded
    tmp = tempfile.TemporaryDirectory(prefix="edgekit-int8-") if rewritten else None
    if tmp is not None:  # calibrate on the rewritten fp32 model, once it is shown to compute the same
        param, binf = Path(tmp.name) / "rewritten.param", Path(tmp.name) / "rewritten.bin"
        model.write(param, binf)
        tops = {t for l in model.layers for t in l.tops}
        changed = {model.layer(n + "_ekperm_out" if n in report.ip_as_conv else n).tops[0]
                   for n in report.gemm_rewritten + report.ip_as_conv}
        _check_same(src_param, src_bin, param, binf, feeds[0], sorted(model.outputs() | changed & tops))
    padded = {l.name for l in model.quantizable() if l.get(18, 0.0) != 0 and l.name not in keep_float}
    report.kept_float = sorted(set(keep_float) | padded)
    targets = [l for l in model.quantizable() if l.name not in keep_float and l.name not in padded
               and l.get(8, 0) == 0]
    cache = {} if cache is None else cache  # layer name -> (weight scales, bottom scale, bias shift, pick, cosines)
    todo = [l for l in targets if l.name not in cache]
    net = calibrate.fp32_net(param, binf, threads) if todo else None
    try:
        if todo:
            _calibrate(net, feeds, todo, method, eq_samples, cache)
    finally:
        if net is not None:
            net.clear()
        if tmp is not None:
            tmp.cleanup()
    for l in targets:
        ws, bs, shift, pick, sims = cache[l.name]
        term = rewrite_layer(l, ws, bs, shift)
        report.quantized.append(LayerReport(l.name, l.type, l.bottoms[0], bs, [float(x) for x in ws], term, pick,
                                            sims))
    report.requantized = ncnn_requantize.fuse(model) if requantize else []
    if float_weights == "fp16":
        for layer in model.layers:
            layer.blobs = [fp16_blob(b.role, b.floats()) if b.tagged and b.tag == TAG_FP32 else b
                           for b in layer.blobs]
    elif float_weights != "fp32":
        raise EdgekitError(f"float_weights must be 'fp32' or 'fp16', not '{float_weights}'")
    model.write(out_param, out_bin)
    report.float_weights = float_weights
    report.fp32_bytes = Path(src_bin).stat().st_size + Path(src_param).stat().st_size
    report.int8_bytes = Path(out_bin).stat().st_size + Path(out_param).stat().st_size
    return report


def _calibrate(net, feeds: list[dict], targets: list, method: str, eq_samples: int, cache: dict) -> None:
    """Each target layer's (weight scales, bottom scale, bias shift or None, chosen candidate, candidate cosines)
    into `cache`."""
    blobs = sorted({l.bottoms[0] for l in targets})
    stats = calibrate.blob_stats(net, feeds, blobs, histogram=method != "aciq")
    wmethod = "aciq" if method == "aciq" else "kl"
    scales, shifts = {}, {}  # layer -> (weight scales, bottom scale); layer -> bias shift ("best")
    for l in targets:
        st = stats[l.bottoms[0]]
        bs = calibrate.aciq_scale(st) if method == "aciq" else calibrate.kl_scale(st)
        scales[l.name] = (calibrate.weight_scales(l, wmethod), bs)
    chosen = {}
    if method == "best":
        for f in feeds[:BEST_SAMPLES]:  # one run per sample gives every layer's input and output
            got = calibrate.extract(net, f, sorted({b for l in targets for b in (l.bottoms[0], l.tops[0])}))
            for l in targets:
                chosen.setdefault(l.name, []).append((got[l.bottoms[0]], got[l.tops[0]]))
            del got
        for l in targets:
            st = stats[l.bottoms[0]]
            cands = {"kl": calibrate.kl_scale(st), "aciq": calibrate.aciq_scale(st),
                     "absmax": 127 / st.absmax if st.absmax else 1.0}
            pick, bs, sims = calibrate.choose_bottom_scale(l, chosen[l.name], scales[l.name][0], cands)
            shift, cos = calibrate.bias_correction(l, chosen[l.name], scales[l.name][0], bs)
            if cos > sims[pick]:  # kept only where it brings the layer's own output closer to fp32
                pick = f"{pick}+bias"
                sims[pick] = cos
                shifts[l.name] = shift
            scales[l.name] = (scales[l.name][0], bs)
            chosen[l.name] = (pick, sims)
    if method == "eq":
        for l in targets:
            pairs = []
            for f in feeds[:eq_samples]:
                got = calibrate.extract(net, f, [l.bottoms[0], l.tops[0]])
                pairs.append((got[l.bottoms[0]], got[l.tops[0]]))
            scales[l.name] = calibrate.eq_search(l, pairs, *scales[l.name])
    for l in targets:
        pick, sims = chosen.get(l.name, ("", {}))
        cache[l.name] = (*scales[l.name], shifts.get(l.name), pick, sims)


def fp32_rewrites(model: NcnnModel, param, binf, feed: dict, skip: set, gemm: bool = True, ip_to_conv: bool = True,
                  fold: bool = True) -> tuple[list[str], list[str], list[str]]:
    """The fp32 graph rewrites quantize makes before calibrating (in place), in order; `param`/`binf` is the
    model as read, run on `feed` for the blob shapes the InnerProduct rewrite needs. Returns the Gemm layers made
    InnerProduct, the InnerProducts made Convolution, the folded layers."""
    gemms = gemms_to_innerproducts(model, skip=skip) if gemm else []
    ips = []
    if ip_to_conv:
        bottoms = sorted({l.bottoms[0] for l in model.layers if l.type == "InnerProduct" and l.name not in skip})
        if bottoms:
            net = calibrate.fp32_net(param, binf)
            try:
                shapes = {b: v.shape for b, v in calibrate.extract(net, feed, bottoms).items()}
            finally:
                net.clear()
            ips = innerproducts_to_convolutions(model, shapes, skip=skip)
    return gemms, ips, fold_affines(model) if fold else []


def rewrite_layer(layer, wscales: np.ndarray, bscale: float, bias_shift: np.ndarray | None = None) -> int:
    """Store int8 weights (tagged) + scales after the bias, and set int8_scale_term; returns the term.
    `bias_shift` (calibrate.bias_correction) is added to the fp32 bias (a layer without one gets one)."""
    weight = layer.blob("weight")
    if weight.tag != 0:
        raise EdgekitError(f"{layer.name}: weights are not fp32 (tag {weight.tag:#x}); export with fp16=0")
    wscales = np.asarray(wscales, np.float32)
    term = 1 if layer.type == "ConvolutionDepthWise" else 2
    q = reference.quantize_rows(weight.floats(), wscales)
    blobs = [int8_blob("weight", q)]
    bias = layer.blob("bias")
    if bias_shift is not None:
        base = bias.floats() if bias is not None else np.zeros(len(bias_shift), np.float32)
        bias = fp32_blob("bias", base + np.asarray(bias_shift, np.float32), False)
        layer.set(1 if layer.type == "InnerProduct" else 5, 1)  # bias_term
    if bias is not None:
        blobs.append(bias)
    blobs += [fp32_blob("weight_scales", wscales, False), fp32_blob("bottom_scale", np.float32([bscale]), False)]
    layer.blobs = blobs
    layer.set(8, term)
    return term


def _check_same(param_a, bin_a, param_b, bin_b, feeds: dict, blobs: list[str], rtol: float = 1e-4) -> None:
    """The rewritten fp32 model must give the original's numbers on `blobs` (else the rewrite is wrong here)."""
    net_a, net_b = calibrate.fp32_net(param_a, bin_a), calibrate.fp32_net(param_b, bin_b)
    try:
        a, b = calibrate.extract(net_a, feeds, blobs), calibrate.extract(net_b, feeds, blobs)
    finally:
        net_a.clear()
        net_b.clear()
    for name in blobs:
        scale = float(np.abs(a[name]).max()) or 1.0
        if a[name].shape != b[name].shape or float(np.abs(a[name] - b[name]).max()) > rtol * scale:
            raise EdgekitError(f"the fp32 rewrite (Gemm -> InnerProduct, folded affines) changes blob {name}; "
                               f"quantize with gemm_to_innerproduct=False, fold=False")
