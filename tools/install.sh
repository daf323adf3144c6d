#!/usr/bin/env bash
# Install edgekit with every backend (and, with "test", the test dependencies) into the current Python: the
# README's commands make and activate a virtual environment (.venv) first; about 3.2 GB.
# pnnx (the ONNX -> ncnn converter) is installed with --no-deps: its wheel declares torch, which
# converting ONNX does not need (and which would pull several GB).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-all,demo}"
python3 -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' || echo "note: installing into $(python3 -c \
  'import sys; print(sys.prefix)'), not a virtual environment (python3 -m venv .venv && . .venv/bin/activate)" >&2
python3 -m pip install --disable-pip-version-check -q -e ".[${extras}]"
python3 -m pip install --disable-pip-version-check -q --no-deps "pnnx==20261020"
# PP-OCRv6 det/rec (the conversion corpus, the OCR app's v6 graph): rapidocr ships them; its own dependencies are
# not needed to read them
case ",${extras}," in *,test,*|*,demo,*) python3 -m pip install --disable-pip-version-check -q --no-deps "rapidocr==3.10.0";; esac
# MediaPipe Tasks (--target mediapipe): without its dependencies, which would add opencv-contrib-python beside
# opencv-python (both are cv2); the `mediapipe` extra holds what it needs at run time
case ",${extras}," in *,test,*|*,mediapipe,*) python3 -m pip install --disable-pip-version-check -q --no-deps "mediapipe==1.2.3";; esac
python3 -c "import edgekit, onnxruntime, ncnn, MNN, openvino, ai_edge_litert" >/dev/null 2>&1 \
  && echo "edgekit installed with all backends" || { echo "install incomplete" >&2; exit 1; }
