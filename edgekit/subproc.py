"""Run a converter in a child process: heavy or chatty tools (TensorFlow, MNN's converter) stay out of our
process, their output is captured for error messages, and a crash cannot take edgekit down."""
from __future__ import annotations

import os
import subprocess

# Every child gets these: quiet TensorFlow on the CPU, and no pip index for tools that try to install things.
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "CUDA_VISIBLE_DEVICES": "-1",
    "PIP_NO_INDEX": "1",  # a tool that tries to pip-install something at run time fails fast instead
    "PYTHONUNBUFFERED": "1",
}


def run_tool(argv: list[str], cwd, timeout: float = 1800, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **QUIET_ENV, **(env or {})}
    return subprocess.run(argv, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace", timeout=timeout)


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
