"""Post-training int8 quantization without the upstream C++ tools (ncnn first: ncnn2table + ncnn2int8 in Python)."""
