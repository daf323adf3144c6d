"""Run a converter in a child process: heavy or chatty tools (TensorFlow, MNN's converter) stay out of our
process, their output is captured for error messages, and a crash cannot take edgekit down.

Each tool runs in its own session (process group): when edgekit is interrupted (Ctrl-C, SIGTERM, SIGHUP in the
CLI), or the tool runs past its timeout, the whole group is killed, so no converter (or anything it started) is
left running after edgekit has gone. On Linux the tool also gets SIGKILL when edgekit itself is SIGKILLed
(PR_SET_PDEATHSIG), so even then no converter keeps running as an orphan."""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys

# Every child gets these: quiet TensorFlow on the CPU, and no pip index for tools that try to install things.
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "CUDA_VISIBLE_DEVICES": "-1",
    "PIP_NO_INDEX": "1",  # a tool that tries to pip-install something at run time fails fast instead
    "PYTHONUNBUFFERED": "1",
}


# Linux: the tool is started through this, so that it dies with edgekit even when edgekit is SIGKILLed
# (PR_SET_PDEATHSIG; exec keeps it), then it becomes the tool. argv: edgekit's pid, the tool's argv.
_LAUNCH = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL\n"
    "if os.getppid() != int(sys.argv[1]): os._exit(137)  # edgekit died before prctl\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n")


def _launcher(argv: list[str], path: str | None) -> list[str]:
    if not sys.platform.startswith("linux"):
        return list(argv)
    exe = argv[0]
    found = shutil.which(exe, path=path) if os.sep not in exe else (exe if os.access(exe, os.X_OK) else None)
    if not found:  # what Popen would raise for the tool itself
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), exe)
    return [sys.executable, "-S", "-c", _LAUNCH, str(os.getpid()), *argv]


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's process group (the child leads it: start_new_session) and reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


def run_tool(argv: list[str], cwd, timeout: float = 1800, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `argv` to completion in its own process group, stdout and stderr together as text.

    Raises subprocess.TimeoutExpired (with the output so far) after `timeout` seconds; any exception while
    waiting (KeyboardInterrupt included) kills the group before it propagates."""
    full_env = {**os.environ, **QUIET_ENV, **(env or {})}
    with subprocess.Popen(_launcher(argv, full_env.get("PATH")), cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace",
                          start_new_session=True) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, _ = proc.communicate()
            raise subprocess.TimeoutExpired(argv, timeout, output=out) from None
        except BaseException:
            kill_group(proc)
            raise
        # the tool has exited; anything it started in its group and left running goes with it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(argv, proc.returncode, out, None)


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
