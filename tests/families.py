"""Op-family models: small ONNX graphs built with the helper API that reproduce one op pattern real models use
(CRNN text recognisers, silero-VAD-like streaming audio models, dynamically quantized models, YOLOv5's Focus
layer, transformer MLPs with erf-GELU). Deterministic weights; each builder has a matching `*_inputs()` giving
inputs of the kind the model really sees. Used by the pass tests and by benchmarks/op_families.py."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32 = TensorProto.FLOAT


def _f(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def _i(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.int64), name)


def _model(graph, opset=17) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgekit-families")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _lstm_weights(rng, dirs, hidden, inp, scale=0.3):
    """ONNX LSTM weights W [D,4H,I], R [D,4H,H], B [D,8H] (gate order i, o, f, c)."""
    return (rng.normal(0, scale, (dirs, 4 * hidden, inp)), rng.normal(0, scale, (dirs, 4 * hidden, hidden)),
            rng.normal(0, 0.1, (dirs, 8 * hidden)))


# --- CRNN: conv stack -> sequence -> bidirectional LSTM -> linear -> softmax ---------------------------------

def crnn(h=8, w=32, classes=10, hidden=8, form: str = "batch-first") -> onnx.ModelProto:
    """x[1,1,8,32] (a grey text line) -> 2x (Conv3x3 -> Relu -> MaxPool) -> [1,8,2,16] -> columns as a sequence
    [T=16,1,16] -> bidirectional LSTM (hidden 8) -> [1,T,16] -> linear -> softmax over `classes` (CTC-style).
    `form`: how Y [T,2,1,H] becomes [1,T,2H]: "batch-first" Transpose(2,0,1,3) + Reshape([1,T,2H]); "torch"
    as torch.onnx writes nn.LSTM(bidirectional): Transpose(0,2,1,3) + Reshape([0,0,-1]) + Transpose(1,0,2)."""
    rng = np.random.default_rng(10)
    t, feat = w // 2, 8 * (h // 4)
    W, R, B = _lstm_weights(rng, 2, hidden, feat)
    inits = [_f("c1_w", rng.normal(0, 0.5, (4, 1, 3, 3))), _f("c1_b", rng.normal(0, 0.1, 4)),
             _f("c2_w", rng.normal(0, 0.3, (8, 4, 3, 3))), _f("c2_b", rng.normal(0, 0.1, 8)),
             _i("seq_shape", [t, 1, feat]), _f("lstm_W", W), _f("lstm_R", R), _f("lstm_B", B),
             _i("out_shape", [1, t, 2 * hidden]) if form != "torch" else _i("torch_shape", [0, 0, -1]),
             _f("fc_w", rng.normal(0, 0.5, (2 * hidden, classes))), _f("fc_b", rng.normal(0, 0.1, classes))]
    nodes = [helper.make_node("Conv", ["x", "c1_w", "c1_b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "c2_w", "c2_b"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 1], strides=[2, 1]),
             # [1,8,2,16] -> [16,1,8,2] -> [T,1,C*H]: one feature vector per image column
             helper.make_node("Transpose", ["p2"], ["cols"], name="to_seq", perm=[3, 0, 1, 2]),
             helper.make_node("Reshape", ["cols", "seq_shape"], ["seq"], name="seq"),
             helper.make_node("LSTM", ["seq", "lstm_W", "lstm_R", "lstm_B"], ["Y"], name="bilstm",
                              hidden_size=hidden, direction="bidirectional"),
             *([helper.make_node("Transpose", ["Y"], ["Yt"], name="dirs_last", perm=[0, 2, 1, 3]),
                helper.make_node("Reshape", ["Yt", "torch_shape"], ["Ym"], name="merge_dirs"),
                helper.make_node("Transpose", ["Ym"], ["feat"], name="batch_first", perm=[1, 0, 2])]
               if form == "torch" else
               # Y [T,2,1,H] -> [1,T,2,H] -> [1,T,2H]
               [helper.make_node("Transpose", ["Y"], ["Yt"], name="batch_first", perm=[2, 0, 1, 3]),
                helper.make_node("Reshape", ["Yt", "out_shape"], ["feat"], name="merge_dirs")]),
             helper.make_node("MatMul", ["feat", "fc_w"], ["mm"], name="fc"),
             helper.make_node("Add", ["mm", "fc_b"], ["logits"], name="fc_bias"),
             helper.make_node("Softmax", ["logits"], ["prob"], name="softmax", axis=-1)]
    graph = helper.make_graph(nodes, "crnn", [helper.make_tensor_value_info("x", F32, [1, 1, h, w])],
                              [helper.make_tensor_value_info("prob", F32, [1, t, classes])], inits)
    return _model(graph)


def crnn_inputs(seed=0) -> dict:
    """A text-line-like image: dark strokes on a light background, normalised to [-1, 1]."""
    rng = np.random.default_rng(seed)
    img = np.ones((8, 32), np.float32)
    for c in range(2, 30, 4):
        img[1 + rng.integers(0, 2):7 - rng.integers(0, 2), c:c + 2] = 0.0
    return {"x": (img * 2 - 1)[None, None]}


# --- streaming VAD: If on a scalar sample rate, LSTM with state in and out -----------------------------------

def streaming_vad(n=512, hidden=16, feat=8) -> onnx.ModelProto:
    """silero-VAD-like: `audio` [1,1,N], `state` [2,1,H] (h and c), 0-d int64 `sr`. An `If` on sr == 16000
    picks the 16 kHz front end (Conv1d, window 128, stride 128) or the 8 kHz one (Conv1d on a 2x-upsampled
    signal, window 64, stride 64, and a nested If on sr == 8000 that scales by 1 or by 0.5). The frames go
    through an LSTM started from `state`; outputs `prob` [1,1] = sigmoid(linear(h_T)) and `new_state`."""
    rng = np.random.default_rng(11)
    frames = n // 128
    W, R, B = _lstm_weights(rng, 1, hidden, feat)
    # the 16 kHz branch: frame energy-like features from a strided Conv1d, uses outer-scope `audio`
    then_inits = [_f("fe16_w", rng.normal(0, 0.2, (feat, 1, 128)))]
    then_nodes = [helper.make_node("Conv", ["audio", "fe16_w"], ["fe16_c"], name="fe16_conv", strides=[128]),
                  helper.make_node("Abs", ["fe16_c"], ["fe16_out"], name="fe16_abs")]
    then_g = helper.make_graph(then_nodes, "then16k", [], [helper.make_tensor_value_info("fe16_out", F32, None)],
                               then_inits)
    # the 8 kHz branch, with a nested If (a subgraph in a subgraph)
    k_then = helper.make_graph([helper.make_node("Identity", ["fe8_c"], ["k_one"], name="k_one")], "k1", [],
                               [helper.make_tensor_value_info("k_one", F32, None)])
    k_else = helper.make_graph([helper.make_node("Mul", ["fe8_c", "half"], ["k_half"], name="k_half")], "k2", [],
                               [helper.make_tensor_value_info("k_half", F32, None)])
    else_inits = [_f("fe8_w", rng.normal(0, 0.2, (feat, 1, 64))), _i("sr8", 8000), _f("half", 0.5)]
    else_nodes = [helper.make_node("Conv", ["audio", "fe8_w"], ["fe8_c"], name="fe8_conv", strides=[128],
                                   dilations=[2]),
                  helper.make_node("Equal", ["sr", "sr8"], ["is8k"], name="is8k"),
                  helper.make_node("If", ["is8k"], ["fe8_k"], name="fe8_scale", then_branch=k_then,
                                   else_branch=k_else),
                  helper.make_node("Abs", ["fe8_k"], ["fe8_out"], name="fe8_abs")]
    else_g = helper.make_graph(else_nodes, "else8k", [], [helper.make_tensor_value_info("fe8_out", F32, None)],
                               else_inits)
    inits = [_i("sr16", 16000), _f("lstm_W", W), _f("lstm_R", R), _f("lstm_B", B),
             _i("split2", [1, 1]), _i("h_shape", [1, hidden]),
             _f("head_w", rng.normal(0, 0.5, (hidden, 1))), _f("head_b", [0.1])]
    nodes = [helper.make_node("Equal", ["sr", "sr16"], ["is16k"], name="is16k"),
             helper.make_node("If", ["is16k"], ["features"], name="front_end", then_branch=then_g,
                              else_branch=else_g),
             helper.make_node("Transpose", ["features"], ["seq"], name="frames_first", perm=[2, 0, 1]),
             helper.make_node("Split", ["state", "split2"], ["h0", "c0"], name="split_state", axis=0),
             helper.make_node("LSTM", ["seq", "lstm_W", "lstm_R", "lstm_B", "", "h0", "c0"], ["Y", "hT", "cT"],
                              name="lstm", hidden_size=hidden),
             helper.make_node("Concat", ["hT", "cT"], ["new_state"], name="state_out", axis=0),
             helper.make_node("Reshape", ["hT", "h_shape"], ["h2"], name="h_flat"),
             helper.make_node("MatMul", ["h2", "head_w"], ["hm"], name="head"),
             helper.make_node("Add", ["hm", "head_b"], ["logit"], name="head_bias"),
             helper.make_node("Sigmoid", ["logit"], ["prob"], name="prob")]
    graph = helper.make_graph(
        nodes, "streaming_vad",
        [helper.make_tensor_value_info("audio", F32, [1, 1, n]),
         helper.make_tensor_value_info("state", F32, [2, 1, hidden]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("prob", F32, [1, 1]),
         helper.make_tensor_value_info("new_state", F32, [2, 1, hidden])], inits)
    del frames
    return _model(graph)


def streaming_vad_inputs(seed=0, sr=16000, n=512, hidden=16) -> dict:
    """A voiced chunk (a 200 Hz tone with harmonics and noise) and a state from an earlier chunk."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    audio = 0.3 * np.sin(2 * np.pi * 200 * t) + 0.1 * np.sin(2 * np.pi * 600 * t) + 0.02 * rng.normal(size=n)
    state = rng.uniform(-0.5, 0.5, (2, 1, hidden))
    return {"audio": audio.astype(np.float32)[None, None], "state": state.astype(np.float32),
            "sr": np.array(sr, np.int64)}


# --- dynamically quantized Conv1d + MatMul + LSTM (onnxruntime.quantization.quantize_dynamic) -----------------

def float_speech_encoder(t=8, feat=16, hidden=16, classes=4, lstm: bool = True) -> onnx.ModelProto:
    """x[1,16,T] (filterbank frames) -> Conv1d k3 -> Relu -> [T,1,24] -> MatMul 24->32 -> Relu -> LSTM(16)
    -> linear on the last hidden state -> logits [1,4]. The float model quantize_dynamic starts from.
    `lstm=False`: mean over time instead of the LSTM (a keyword-spotting-style pooled encoder)."""
    rng = np.random.default_rng(12)
    W, R, B = _lstm_weights(rng, 1, hidden, 32)
    inits = [_f("conv_w", rng.normal(0, 0.3, (24, feat, 3))), _f("conv_b", rng.normal(0, 0.1, 24)),
             _f("proj_w", rng.normal(0, 0.3, (24, 32))), _f("proj_b", rng.normal(0, 0.1, 32)),
             _f("lstm_W", W), _f("lstm_R", R), _f("lstm_B", B), _i("h_shape", [1, hidden]),
             _f("cls_w", rng.normal(0, 0.5, (hidden if lstm else 32, classes))),
             _f("cls_b", rng.normal(0, 0.1, classes))]
    nodes = [helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["c"], name="conv", pads=[1, 1]),
             helper.make_node("Relu", ["c"], ["cr"], name="conv_relu"),
             helper.make_node("Transpose", ["cr"], ["seq"], name="frames_first", perm=[2, 0, 1]),
             helper.make_node("MatMul", ["seq", "proj_w"], ["pm"], name="proj"),
             helper.make_node("Add", ["pm", "proj_b"], ["pa"], name="proj_bias"),
             helper.make_node("Relu", ["pa"], ["pr"], name="proj_relu")]
    if lstm:
        nodes += [helper.make_node("LSTM", ["pr", "lstm_W", "lstm_R", "lstm_B"], ["Y", "hT"], name="lstm",
                                   hidden_size=hidden),
                  helper.make_node("Reshape", ["hT", "h_shape"], ["h2"], name="h_flat")]
    else:
        inits = [i for i in inits if not i.name.startswith("lstm_") and i.name != "h_shape"]
        nodes.append(helper.make_node("ReduceMean", ["pr"], ["h2"], name="pool", axes=[0], keepdims=0))
    nodes += [helper.make_node("MatMul", ["h2", "cls_w"], ["cm"], name="cls"),
              helper.make_node("Add", ["cm", "cls_b"], ["logits"], name="cls_bias")]
    graph = helper.make_graph(nodes, "speech_encoder", [helper.make_tensor_value_info("x", F32, [1, feat, t])],
                              [helper.make_tensor_value_info("logits", F32, [1, classes])], inits)
    return _model(graph, opset=13)


def quantized_speech_encoder(weight_type: str = "QUInt8", lstm: bool = True) -> onnx.ModelProto:
    """float_speech_encoder through quantize_dynamic: Conv -> DynamicQuantizeLinear + ConvInteger (+ Cast, Mul,
    Add), MatMul -> DynamicQuantizeLinear + MatMulInteger (+ Cast, Mul), LSTM -> com.microsoft
    DynamicQuantizeLSTM (int8 weights, [D, I, 4H]). QUInt8 weights: ONNX Runtime's CPU ConvInteger has no
    int8-weight kernel."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "f.onnx", Path(d) / "q.onnx"
        onnx.save(float_speech_encoder(lstm=lstm), str(src))
        quantize_dynamic(str(src), str(dst), weight_type=getattr(QuantType, weight_type))
        return onnx.load(str(dst))


def speech_encoder_inputs(seed=0, t=8, feat=16) -> dict:
    """Log-filterbank-like frames: smooth over frequency, positive-ish, a few dB of variation."""
    rng = np.random.default_rng(seed)
    base = np.linspace(1.0, -1.0, feat)[:, None] + 0.3 * np.sin(np.arange(t) / 2.0)[None]
    return {"x": (base + 0.1 * rng.normal(size=(feat, t))).astype(np.float32)[None]}


# --- YOLOv5 Focus: space-to-depth by four strided Slices + Concat, then convs ---------------------------------

def focus_detector(size=32, chained: bool = False) -> onnx.ModelProto:
    """x[1,3,32,32] -> Focus: Concat(x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2])
    on channels -> [1,12,16,16] -> Conv3x3 + SiLU -> Conv3x3 stride 2 + SiLU -> 1x1 head [1,21,8,8] -> Sigmoid.
    `chained`: each piece is two Slices (H then W), as torch.onnx writes `x[..., ::2, ::2]`; otherwise one
    Slice with axes [2,3]."""
    rng = np.random.default_rng(13)
    big = np.iinfo(np.int64).max
    inits = [_i("steps", [2, 2]), _i("axes", [2, 3]), _i("ends", [big, big]),
             _i("s00", [0, 0]), _i("s10", [1, 0]), _i("s01", [0, 1]), _i("s11", [1, 1]),
             _i("ax2", [2]), _i("ax3", [3]), _i("st1", [2]), _i("end1", [big]), _i("z", [0]), _i("o", [1]),
             _f("w1", rng.normal(0, 0.2, (16, 12, 3, 3))), _f("b1", rng.normal(0, 0.1, 16)),
             _f("w2", rng.normal(0, 0.15, (32, 16, 3, 3))), _f("b2", rng.normal(0, 0.1, 32)),
             _f("w3", rng.normal(0, 0.2, (21, 32, 1, 1))), _f("b3", rng.normal(0, 0.1, 21))]
    nodes, pieces = [], []
    for tag, (dh, dw) in (("00", (0, 0)), ("10", (1, 0)), ("01", (0, 1)), ("11", (1, 1))):
        if chained:
            nodes += [helper.make_node("Slice", ["x", "z" if dh == 0 else "o", "end1", "ax2", "st1"], [f"h{tag}"],
                                       name=f"focus_h{tag}"),
                      helper.make_node("Slice", [f"h{tag}", "z" if dw == 0 else "o", "end1", "ax3", "st1"],
                                       [f"p{tag}"], name=f"focus_w{tag}")]
        else:
            nodes.append(helper.make_node("Slice", ["x", f"s{tag}", "ends", "axes", "steps"], [f"p{tag}"],
                                          name=f"focus_{tag}"))
        pieces.append(f"p{tag}")
    nodes.append(helper.make_node("Concat", pieces, ["focus"], name="focus_cat", axis=1))
    prev = "focus"
    for k, (w, b, extra) in enumerate((("w1", "b1", dict(pads=[1, 1, 1, 1])),
                                       ("w2", "b2", dict(pads=[1, 1, 1, 1], strides=[2, 2])))):
        nodes += [helper.make_node("Conv", [prev, w, b], [f"c{k}"], name=f"conv{k}", **extra),
                  helper.make_node("Sigmoid", [f"c{k}"], [f"s{k}"], name=f"silu{k}_sig"),
                  helper.make_node("Mul", [f"c{k}", f"s{k}"], [f"a{k}"], name=f"silu{k}")]
        prev = f"a{k}"
    nodes += [helper.make_node("Conv", [prev, "w3", "b3"], ["head"], name="head"),
              helper.make_node("Sigmoid", ["head"], ["pred"], name="pred")]
    s = size // 4
    graph = helper.make_graph(nodes, "focus_detector", [helper.make_tensor_value_info("x", F32, [1, 3, size, size])],
                              [helper.make_tensor_value_info("pred", F32, [1, 21, s, s])], inits)
    return _model(graph, opset=13)


def focus_inputs(seed=0, size=32) -> dict:
    """A synthetic photo through YOLOv5's preprocessing (RGB / 255)."""
    from edgekit.harness.inputs import synthetic_image

    img = synthetic_image(size, size, seed).astype(np.float32) / 255.0
    return {"x": img.transpose(2, 0, 1)[None].copy()}


# --- transformer MLP with erf-GELU -----------------------------------------------------------------------------

def gelu_mlp(tokens=8, dim=16, hidden=32, form: str = "mul") -> onnx.ModelProto:
    """x[8,16] (tokens x features) -> LayerNorm -> Linear 16->32 -> GELU -> Linear 32->16 -> + x: a ViT / BERT
    feed-forward block (a 2-D input: onnx2tf would read a 3-D one as NCW and transpose it).
    GELU as exporters write it: `form="torch"` is torch.onnx's x * (1 + Erf(x / 1.4142135)) * 0.5 (Div, Erf, Add,
    Mul, Mul: the one sequence onnx2tf fuses into TFLite's GELU); `form="mul"` is 0.5 * x * (1 + Erf(x *
    0.70710677)) (a Mul by 1/sqrt 2 and the 0.5 first, as Paddle2ONNX, tf2onnx and hand-written GELUs do)."""
    rng = np.random.default_rng(14)
    inits = [_f("ln_g", rng.uniform(0.8, 1.2, dim)), _f("ln_b", rng.normal(0, 0.1, dim)),
             _f("fc1_w", rng.normal(0, 0.5, (dim, hidden))), _f("fc1_b", rng.normal(0, 0.2, hidden)),
             _f("fc2_w", rng.normal(0, 0.3, (hidden, dim))), _f("fc2_b", rng.normal(0, 0.1, dim)),
             _f("sqrt2", np.sqrt(2.0)), _f("rsqrt2", 1 / np.sqrt(2.0)), _f("one", 1.0), _f("halfc", 0.5)]
    if form == "torch":
        gelu = [helper.make_node("Div", ["h", "sqrt2"], ["hs"], name="gelu_div"),
                helper.make_node("Erf", ["hs"], ["e"], name="gelu_erf"),
                helper.make_node("Add", ["e", "one"], ["e1"], name="gelu_add"),
                helper.make_node("Mul", ["h", "e1"], ["he"], name="gelu_mul"),
                helper.make_node("Mul", ["he", "halfc"], ["g"], name="gelu_half")]
    else:
        gelu = [helper.make_node("Mul", ["h", "rsqrt2"], ["hs"], name="gelu_scale"),
                helper.make_node("Erf", ["hs"], ["e"], name="gelu_erf"),
                helper.make_node("Add", ["one", "e"], ["e1"], name="gelu_add"),
                helper.make_node("Mul", ["halfc", "h"], ["hh"], name="gelu_half"),
                helper.make_node("Mul", ["hh", "e1"], ["g"], name="gelu_mul")]
    nodes = [helper.make_node("LayerNormalization", ["x", "ln_g", "ln_b"], ["ln"], name="ln", axis=-1),
             helper.make_node("MatMul", ["ln", "fc1_w"], ["m1"], name="fc1"),
             helper.make_node("Add", ["m1", "fc1_b"], ["h"], name="fc1_bias"), *gelu,
             helper.make_node("MatMul", ["g", "fc2_w"], ["m2"], name="fc2"),
             helper.make_node("Add", ["m2", "fc2_b"], ["o"], name="fc2_bias"),
             helper.make_node("Add", ["o", "x"], ["y"], name="residual")]
    graph = helper.make_graph(nodes, "gelu_mlp", [helper.make_tensor_value_info("x", F32, [tokens, dim])],
                              [helper.make_tensor_value_info("y", F32, [tokens, dim])],
                              [i for i in inits if any(i.name in n.input for n in nodes)])
    return _model(graph)


def gelu_mlp_inputs(seed=0, tokens=8, dim=16) -> dict:
    """Token embeddings: N(0, 1) per feature, as after an embedding layer."""
    return {"x": np.random.default_rng(seed).normal(0, 1, (tokens, dim)).astype(np.float32)}


# --- a strided subsampling Slice (not a Focus) ------------------------------------------------------------------

def strided_subsample() -> onnx.ModelProto:
    """x[1,4,12,10] -> Conv3x3 -> Relu -> y[:, :3, 1::3, ::2] (a channel crop, every third row from 1, every other
    column) -> Conv1x1 -> [1,5,4,5]: the dilated-sampling / stride-by-slicing pattern."""
    rng = np.random.default_rng(15)
    inits = [_f("w1", rng.normal(0, 0.3, (6, 4, 3, 3))), _f("b1", rng.normal(0, 0.1, 6)),
             _i("starts", [0, 1, 0]), _i("ends", [3, 12, 10]), _i("axes", [1, 2, 3]), _i("steps", [1, 3, 2]),
             _f("w2", rng.normal(0, 0.4, (5, 3, 1, 1)))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Slice", ["r", "starts", "ends", "axes", "steps"], ["s"], name="subsample"),
             helper.make_node("Conv", ["s", "w2"], ["y"], name="proj")]
    graph = helper.make_graph(nodes, "strided_subsample", [helper.make_tensor_value_info("x", F32, [1, 4, 12, 10])],
                              [helper.make_tensor_value_info("y", F32, [1, 5, 4, 5])], inits)
    return _model(graph, opset=13)


def strided_subsample_inputs(seed=0) -> dict:
    return {"x": np.random.default_rng(seed).uniform(-1, 1, (1, 4, 12, 10)).astype(np.float32)}


# --- Erf outside a GELU: a Gaussian-CDF score head ---------------------------------------------------------------

def gaussian_cdf_head(n=8, dim=16) -> onnx.ModelProto:
    """x[8,16] -> Linear 16->2 (mean, log-sigma) -> P(z <= 0.5) = 0.5 (1 + erf((0.5 - mu) / (sigma sqrt 2))):
    an Erf that is not a GELU (probabilistic regression / calibration heads)."""
    rng = np.random.default_rng(16)
    inits = [_f("w", rng.normal(0, 0.4, (dim, 2))), _f("b", [0.0, -0.5]), _i("split", [1, 1]),
             _f("thr", 0.5), _f("sqrt2", np.sqrt(2.0)), _f("one", 1.0), _f("halfc", 0.5)]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="fc"),
             helper.make_node("Add", ["m", "b"], ["p"], name="fc_bias"),
             helper.make_node("Split", ["p", "split"], ["mu", "logsig"], name="split", axis=1),
             helper.make_node("Exp", ["logsig"], ["sig"], name="sigma"),
             helper.make_node("Sub", ["thr", "mu"], ["d"], name="centre"),
             helper.make_node("Mul", ["sig", "sqrt2"], ["den"], name="scale"),
             helper.make_node("Div", ["d", "den"], ["z"], name="z"),
             helper.make_node("Erf", ["z"], ["e"], name="erf"),
             helper.make_node("Add", ["e", "one"], ["e1"], name="add1"),
             helper.make_node("Mul", ["e1", "halfc"], ["cdf"], name="cdf")]
    graph = helper.make_graph(nodes, "gaussian_cdf_head", [helper.make_tensor_value_info("x", F32, [n, dim])],
                              [helper.make_tensor_value_info("cdf", F32, [n, 1])], inits)
    return _model(graph)


def gaussian_cdf_inputs(seed=0, n=8, dim=16) -> dict:
    return {"x": np.random.default_rng(seed).normal(0, 1, (n, dim)).astype(np.float32)}


# --- a 0-d int64 input used as a number ---------------------------------------------------------------------------

def scalar_gain() -> onnx.ModelProto:
    """x[1,4,8,8] * Cast(k), k a 0-d int64 input (a gain, a step count, a sample rate used arithmetically)."""
    nodes = [helper.make_node("Cast", ["k"], ["kf"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Mul", ["x", "kf"], ["y"], name="gain")]
    graph = helper.make_graph(nodes, "scalar_gain", [helper.make_tensor_value_info("x", F32, [1, 4, 8, 8]),
                                                     helper.make_tensor_value_info("k", TensorProto.INT64, [])],
                              [helper.make_tensor_value_info("y", F32, [1, 4, 8, 8])])
    return _model(graph, opset=13)


def scalar_gain_inputs(seed=0) -> dict:
    return {"x": np.random.default_rng(seed).uniform(-1, 1, (1, 4, 8, 8)).astype(np.float32),
            "k": np.array(3, np.int64)}


# --- tensors that are not NCHW images: 1-D, 2-D and 3-D inputs and outputs ------------------------------------

RANK_SHAPES = {  # name -> (input shape, what it stands for)
    "vector": ([16], "a 1-D feature vector (an embedding, a sensor reading)"),
    "frames": ([6, 16], "[N, F]: N feature frames of F values, N > 1 (ncnn must not read N as a batch of 1)"),
    "waveform": ([1, 64], "[1, T]: one audio chunk"),
    "ncw": ([1, 16, 20], "[1, C, W]: a Conv1d input (onnx2tf makes it NWC)"),
    "batched-seq": ([2, 5, 16], "[B, T, F] with B = 2"),
}


def rank_model(kind: str) -> onnx.ModelProto:
    """A small model per input rank, each output the input's rank: "vector" x[16] -> Linear -> Relu [8];
    "frames" x[6,16] -> Linear -> Tanh [6,8] and a softmax over the frames (axis 0, across N) [6,16];
    "waveform" x[1,64] -> Linear -> Sigmoid [1,10]; "ncw" x[1,16,20] -> Conv1d k3 -> Relu [1,8,20] and a mean
    over time [1,16,1]; "batched-seq" x[2,5,16] -> Linear [2,5,8]."""
    rng = np.random.default_rng(17)
    shape = RANK_SHAPES[kind][0]
    feat = shape[-1] if kind != "ncw" else shape[1]
    lin = {"vector": 8, "frames": 8, "waveform": 10, "batched-seq": 8}.get(kind)
    inits, outs = [], []
    if kind == "ncw":
        inits = [_f("w", rng.normal(0, 0.3, (8, feat, 3))), _f("b", rng.normal(0, 0.1, 8))]
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv1d", pads=[1, 1]),
                 helper.make_node("Relu", ["c"], ["y"], name="relu"),
                 helper.make_node("ReduceMean", ["x"], ["m"], name="mean_t", axes=[2], keepdims=1)]
        outs = [("y", [1, 8, shape[2]]), ("m", [1, feat, 1])]
    else:
        act = {"vector": "Relu", "frames": "Tanh", "waveform": "Sigmoid", "batched-seq": "Identity"}[kind]
        inits = [_f("w", rng.normal(0, 0.4, (feat, lin))), _f("b", rng.normal(0, 0.1, lin))]
        nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"], name="linear"),
                 helper.make_node("Add", ["mm", "b"], ["a"], name="bias"),
                 helper.make_node(act, ["a"], ["y"], name="act")]
        outs = [("y", [*shape[:-1], lin])]
        if kind == "frames":
            nodes.append(helper.make_node("Softmax", ["x"], ["p"], name="over_frames", axis=0))
            outs.append(("p", list(shape)))
    graph = helper.make_graph(nodes, f"rank_{kind}", [helper.make_tensor_value_info("x", F32, shape)],
                              [helper.make_tensor_value_info(n, F32, s) for n, s in outs], inits)
    return _model(graph)


def rank_inputs(kind: str, seed=0) -> dict:
    return {"x": np.random.default_rng(seed).normal(0, 1, RANK_SHAPES[kind][0]).astype(np.float32)}


# --- a transformer attention block, LayerNorm written out as ReduceMean / Pow / Sqrt -------------------------------

def attention_block(tokens=8, dim=16, heads=2) -> onnx.ModelProto:
    """x[1,8,16] -> LayerNorm as torch.onnx writes it below opset 17 (ReduceMean, Sub, Pow 2, ReduceMean, Add eps,
    Sqrt, Div, Mul, Add) -> Q, K, V projections -> 2 heads (Reshape [1,T,2,8] + Transpose) -> softmax(Q K^T /
    sqrt 8) V -> merge heads -> output projection -> + x: a ViT / BERT self-attention block."""
    rng = np.random.default_rng(18)
    hd = dim // heads
    inits = [_f("ln_g", rng.uniform(0.8, 1.2, dim)), _f("ln_b", rng.normal(0, 0.1, dim)), _f("eps", 1e-5),
             _f("two", 2.0), _f("scale", 1 / np.sqrt(hd)), _i("split_heads", [1, tokens, heads, hd]),
             _i("merge_heads", [1, tokens, dim])]
    for p in ("q", "k", "v", "o"):
        inits += [_f(f"w{p}", rng.normal(0, 0.4, (dim, dim))), _f(f"b{p}", rng.normal(0, 0.1, dim))]
    nodes = [helper.make_node("ReduceMean", ["x"], ["mu"], name="ln_mean", axes=[-1], keepdims=1),
             helper.make_node("Sub", ["x", "mu"], ["d"], name="ln_centre"),
             helper.make_node("Pow", ["d", "two"], ["d2"], name="ln_square"),
             helper.make_node("ReduceMean", ["d2"], ["var"], name="ln_var", axes=[-1], keepdims=1),
             helper.make_node("Add", ["var", "eps"], ["ve"], name="ln_eps"),
             helper.make_node("Sqrt", ["ve"], ["sd"], name="ln_sqrt"),
             helper.make_node("Div", ["d", "sd"], ["nrm"], name="ln_div"),
             helper.make_node("Mul", ["nrm", "ln_g"], ["ng"], name="ln_gamma"),
             helper.make_node("Add", ["ng", "ln_b"], ["ln"], name="ln_beta")]
    for p, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
        nodes += [helper.make_node("MatMul", ["ln", f"w{p}"], [f"{p}m"], name=f"{p}_proj"),
                  helper.make_node("Add", [f"{p}m", f"b{p}"], [f"{p}a"], name=f"{p}_bias"),
                  helper.make_node("Reshape", [f"{p}a", "split_heads"], [f"{p}r"], name=f"{p}_heads"),
                  helper.make_node("Transpose", [f"{p}r"], [f"{p}h"], name=f"{p}_heads_first", perm=perm)]
    nodes += [helper.make_node("MatMul", ["qh", "kh"], ["qk"], name="scores"),
              helper.make_node("Mul", ["qk", "scale"], ["qks"], name="scores_scale"),
              helper.make_node("Softmax", ["qks"], ["att"], name="softmax", axis=-1),
              helper.make_node("MatMul", ["att", "vh"], ["ctx"], name="context"),
              helper.make_node("Transpose", ["ctx"], ["ctxt"], name="tokens_first", perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["ctxt", "merge_heads"], ["ctxm"], name="merge"),
              helper.make_node("MatMul", ["ctxm", "wo"], ["om"], name="o_proj"),
              helper.make_node("Add", ["om", "bo"], ["oa"], name="o_bias"),
              helper.make_node("Add", ["oa", "x"], ["y"], name="residual")]
    graph = helper.make_graph(nodes, "attention_block",
                              [helper.make_tensor_value_info("x", F32, [1, tokens, dim])],
                              [helper.make_tensor_value_info("y", F32, [1, tokens, dim])], inits)
    return _model(graph, opset=13)


def attention_inputs(seed=0, tokens=8, dim=16) -> dict:
    """Token embeddings plus a position-like ramp, as after an embedding layer."""
    rng = np.random.default_rng(seed)
    pos = np.sin(np.arange(tokens)[:, None] / (1 + np.arange(dim)[None]))
    return {"x": (rng.normal(0, 1, (tokens, dim)) + pos).astype(np.float32)[None]}


# The family models of the conversion matrix's `families` group: name -> (builder, inputs(seed), const)
MATRIX = {
    "crnn-bilstm": (crnn, crnn_inputs, None),
    "crnn-bilstm-torch": (lambda: crnn(form="torch"), crnn_inputs, None),
    "streaming-vad": (streaming_vad, streaming_vad_inputs, {"sr": 16000}),
    "quantized-lstm": (quantized_speech_encoder, speech_encoder_inputs, None),
    "quantized-pooled": (lambda: quantized_speech_encoder(lstm=False), speech_encoder_inputs, None),
    "focus-detector": (focus_detector, focus_inputs, None),
    "gelu-mlp": (gelu_mlp, gelu_mlp_inputs, None),
    "gelu-mlp-torch": (lambda: gelu_mlp(form="torch"), gelu_mlp_inputs, None),
    "attention-block": (attention_block, attention_inputs, None),
}
