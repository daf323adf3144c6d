"""Post-training int8 quantization without the upstream C++ tools: ncnn2table + ncnn2int8 in Python.

- `ncnn_model`: read / write .param + .bin (byte-identical round trip), each layer's weight blobs located.
- `calibrate`: activation scales (KL, ACIQ, EQ as ncnn2table; "best" per layer) and weight scales.
- `reference`: ncnn's int8 layer arithmetic in numpy (EQ / "best" use it; the tests' oracle).
- `ncnn_rewrite`: constant-B Gemm -> InnerProduct, so 2D linears get int8 too.
- `ncnn_int8`: `quantize(...)` writes the int8 model; `int8_net(...)` loads one with use_int8_inference on."""
