"""Load an ONNX model safely, with one clear error for each way a user's file can be wrong."""
from __future__ import annotations

import os
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from ..errors import EdgekitError


def load_model(path: str | os.PathLike, check: bool = True) -> onnx.ModelProto:
    """Load `path` with its external data; external data may only come from inside the model's folder."""
    path = Path(path)
    if not path.exists():
        raise EdgekitError(f"{path}: no such file")
    if not path.is_file():
        raise EdgekitError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise EdgekitError(f"{path}: empty file, not an ONNX model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, UnicodeDecodeError) as e:
        raise EdgekitError(f"{path}: not a valid ONNX model (truncated or not ONNX: {_short(e)})") from None
    if not model.graph.node and not model.graph.output:
        raise EdgekitError(f"{path}: not an ONNX model (no graph inside)")
    _load_external_data(model, path.parent.resolve(), path)
    if check:
        check_finite(model, path)
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as e:
            raise EdgekitError(f"{path}: invalid ONNX model ({_short(e)})") from None
        except ValueError:
            pass  # > 2 GiB models cannot be checked in memory; the runtimes will complain if needed
    return model


_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
                onnx.TensorProto.BFLOAT16}
_RAW_DTYPES = {onnx.TensorProto.FLOAT: "<f4", onnx.TensorProto.DOUBLE: "<f8", onnx.TensorProto.FLOAT16: "<f2"}


def check_finite(model: onnx.ModelProto, path) -> None:
    """Refuse a model whose float weights (initializers, Constant nodes, in subgraphs too) hold NaN or Inf:
    every converter would then look wrong, while the model itself is. Cheap on large models: the tensor's bytes
    are read once and summed (a NaN or Inf anywhere makes the sum non-finite); only a non-finite sum
    (or one that overflowed) is looked at element by element."""
    import numpy as np
    from onnx import numpy_helper
    from onnx.external_data_helper import _get_all_tensors

    for tensor in _get_all_tensors(model):
        if tensor.data_type not in _FLOAT_TYPES:
            continue
        dtype = _RAW_DTYPES.get(tensor.data_type)
        try:
            raw = tensor.raw_data if dtype is not None else b""  # protobuf copies the bytes on each access
            if raw:
                values = np.frombuffer(raw, dtype=dtype)
            else:
                values = numpy_helper.to_array(tensor)
        except Exception:  # a tensor numpy cannot hold is for the checker and the runtimes to judge
            continue
        if values.dtype.kind != "f" or values.size == 0:
            continue
        if np.isfinite(np.add.reduce(values.reshape(-1), dtype=np.float64 if values.itemsize > 4 else np.float32)):
            continue
        if not np.isfinite(values).all():
            what = "NaN" if np.isnan(values).any() else "Inf"
            raise EdgekitError(f"{path}: the model itself holds {what} in tensor {tensor.name or '(unnamed)'} "
                               f"(shape {list(tensor.dims)}); fix or retrain the model's weights, no converter "
                               "can make it work")


def _load_external_data(model: onnx.ModelProto, base: Path, path: Path) -> None:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    for tensor in _get_all_tensors(model):
        if not uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (base / location).resolve()
        if os.path.isabs(location) or base not in target.parents:
            raise EdgekitError(f"{path}: external data '{location}' of tensor {tensor.name} is outside the model's "
                               "folder")
        if not target.is_file():
            raise EdgekitError(f"{path}: external data file '{location}' of tensor {tensor.name} is missing")
    try:
        onnx.load_external_data_for_model(model, str(base))
    except (OSError, ValueError) as e:
        raise EdgekitError(f"{path}: cannot read external data ({_short(e)})") from None


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__
