"""ONNX-side work: safe loading, inspection, shape fixing and normalisation passes."""
