"""Peak memory an artifact adds to a fresh process, measured in a child so that memory other artifacts freed
cannot hide it. The child is this module run as `python -m edgekit.harness.memory JSON`: it imports the
runtime, then loads the artifact through the one door and runs it 5 times under `latency.PeakRss`."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

MARK = "EDGEKIT-MEMORY "


def memory_in_child(path: Path, threads: int, input_shapes, data, preprocessing) -> tuple[float | None, str]:
    """(peak resident MiB added over load + 5 inferences, how it was measured)."""
    arg = json.dumps({"path": str(path), "threads": threads, "data": [str(d) for d in data or []],
                      "preprocessing": asdict(preprocessing) if preprocessing else None,
                      "input_shapes": list(input_shapes) if input_shapes and not isinstance(input_shapes, dict)
                      else input_shapes})
    proc = subprocess.run([sys.executable, "-m", __name__, arg], capture_output=True, text=True, timeout=600)
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            d = json.loads(line[len(MARK):])
            return round(d["added"] / 2**20, 2), "fresh child process: " + d["method"]
    return None, f"not measured (child exited {proc.returncode})"


def main(argv: list[str]) -> None:
    from .. import backends
    from ..manifest import Preprocessing
    from ..runner import load, read_artifact
    from . import inputs, latency

    args = json.loads(argv[0])
    path = Path(args["path"])
    manifest = read_artifact(path)
    backends.get(manifest.format if manifest else "onnx").import_runtime()
    pre = Preprocessing(**args["preprocessing"]) if args["preprocessing"] else None
    with latency.PeakRss() as mem:
        runner = load(path, args["threads"], input_shapes=args["input_shapes"])
        samples, _ = inputs.timing_inputs(runner, args["data"], pre)
        for i in range(5):
            runner(samples[i % len(samples)])
    print(MARK + json.dumps({"added": mem.added, "method": mem.method}))


if __name__ == "__main__":
    main(sys.argv[1:])
