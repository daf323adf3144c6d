"""Bundles: exported artifacts packed for one device, with the inputs and the host's answers, so that the device
can prove them again without the ONNX model or a converter (docs/bundles.md).

`make_bundle` copies each artifact, writes the verification samples and the host's ONNX Runtime fp32 outputs for
them, the device profile's runtime requirements and an entry point, and hashes every file into `bundle.json`;
`verify_bundle` checks those hashes first, then reruns each artifact on the device's runtimes against the stored
reference. A bundle holds relative paths only: the host's absolute paths are stripped from what it copies."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import sys
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import backends
from .errors import EdgekitError
from .fsutil import atomic_dir, atomic_write_text, check_destination, check_writable_dir, owner_tag, sha256
from .manifest import MANIFEST_NAME, Manifest, TensorSpec
from .options import spell
from .targets import Profile, profiles
from .version import __version__

BUNDLE_SCHEMA = 1
BUNDLE_NAME = "bundle.json"
TAR_SUFFIXES = (".tar.gz", ".tgz")
# An absolute path inside a string (a word that starts with '/' after a space, a quote, a bracket or the start):
# the host's paths in manifests (source.path, "2 sample(s) from /home/me/data") become their last component.
_ABS_PATH = re.compile(r"(?<![\w.~/-])/(?:[^\s,;:()\[\]'\"]+/)*([^\s,;:()\[\]'\"/]*)")


@dataclass
class ArtifactCheck:
    """One artifact's row of `edgekit verify`: host figures beside the device's, and the verdict."""

    artifact: str
    format: str
    precision: str
    host: dict  # cosine / max_abs on the bundle's samples (or the export's), where they come from
    device: dict = field(default_factory=dict)  # cosine / max_abs / per-output reports here
    status: str = "ok"  # ok | failed | missing runtime | error
    error: str = ""
    install: str = ""  # missing runtime: what to pip-install
    notes: list = field(default_factory=list)  # what the bundle noted about the artifact (bundle.json)

    @property
    def passed(self) -> bool:
        return self.status == "ok"


@dataclass
class VerifyReport:
    bundle: str
    target: str
    device: dict
    artifacts: list[ArtifactCheck] = field(default_factory=list)
    edgekit: str = __version__

    @property
    def passed(self) -> bool:
        return bool(self.artifacts) and all(a.passed for a in self.artifacts)

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


# ---------------------------------------------------------------------------------------------- making one


def is_bundle(path) -> bool:
    path = Path(path)
    return (path.is_dir() and (path / BUNDLE_NAME).is_file()) or (
        path.is_file() and path.name.endswith(TAR_SUFFIXES))


def make_bundle(artifacts: list, target: str, out, force: bool = False, data: list | None = None,
                samples: int | None = None, model=None, progress=None) -> Path:
    """Pack artifacts for a device profile into a folder (or a `.tar.gz`) that `edgekit verify` checks there.

    Args:
        artifacts: artifact folders made by `edgekit.export` (any formats, any source models).
        target: a device profile name (`edgekit targets` lists them): its arch, Python and runtime pins.
        out: the bundle folder, or a file name ending in .tar.gz / .tgz.
        force: replace an existing `out`.
        data: verification inputs (images through each artifact's preprocessing, or .npy/.npz); default: as many
            generated samples as each artifact's export verified on.
        samples: how many samples (default: the export's count).
        model: the source ONNX model (default: the one each manifest names, checked by sha256).
        progress: called with a line of text as the bundle is made.

    Returns:
        the bundle's path.

    Raises:
        EdgekitError: an unknown profile, a path that is not an artifact, a format the profile has no runtime for,
        two artifacts with one folder name, an existing `out` without `force`.
    """
    progress = progress or (lambda msg: None)
    profile = _profile(target)
    out = Path(out)
    as_tar = out.name.endswith(TAR_SUFFIXES)
    check_destination(out, force)
    check_writable_dir(out.parent, "the bundle's folder")
    if samples is not None and samples <= 0:
        raise EdgekitError(f"{spell('samples')} must be at least 1")
    items = _collect(artifacts, profile)
    if as_tar:
        name = out.name[:-len(next(s for s in TAR_SUFFIXES if out.name.endswith(s)))] or "bundle"
        with tempfile.TemporaryDirectory(prefix=f"edgekit-bundle-{owner_tag()}-") as tmp:
            folder = Path(tmp) / name
            folder.mkdir()
            _fill(folder, items, profile, data, samples, model, progress)
            _write_tar(folder, out, force)
        return out
    with atomic_dir(out, force=force) as tmp:
        _fill(Path(tmp), items, profile, data, samples, model, progress)
    return out


def _profile(target: str) -> Profile:
    profs = profiles()
    if target not in profs:
        raise EdgekitError(f"unknown device profile '{target}'; use one of {', '.join(profs)} (edgekit targets)")
    return profs[target]


def _collect(artifacts: list, profile: Profile) -> list[tuple[Path, Manifest]]:
    if not artifacts:
        raise EdgekitError("give at least one artifact folder")
    items, names = [], {}
    for a in artifacts:
        path = Path(a)
        if not (path.is_dir() and (path / MANIFEST_NAME).is_file()):
            why = "no such file or folder" if not path.exists() else f"not an artifact folder (no {MANIFEST_NAME})"
            raise EdgekitError(f"{path}: {why}; bundle the folders `edgekit export` writes")
        manifest = Manifest.load(path)
        manifest.check_files(path)
        if not profile.runtime_for(manifest.format):
            raise EdgekitError(f"{path}: the {profile.name} profile has no {manifest.format} runtime for "
                               f"{profile.arch} Python {profile.python} (no wheel on the package registry); "
                               f"bundle one of {', '.join(profile.runtimes)}")
        name = path.resolve().name
        if name in names:
            raise EdgekitError(f"{path} and {names[name]} have the same folder name '{name}'; a bundle keeps "
                               "artifacts by folder name: rename one")
        names[name] = path
        items.append((path, manifest))
    return items


def _fill(folder: Path, items, profile: Profile, data, samples, model, progress) -> None:
    entries = []
    references: dict = {}  # (source sha256, frozen inputs) -> (feeds, refs, what): one reference per source
    for path, manifest in items:
        name = path.resolve().name
        progress(f"bundling {name}")
        dest = folder / "artifacts" / name
        dest.mkdir(parents=True)
        for role, file in manifest.files.items():
            shutil.copy2(manifest.file(path, role), dest / file)
        _portable_manifest(manifest).save(dest)
        feeds, refs, what = _reference(path, manifest, data, samples, model, references, progress)
        for kind, arrays in (("samples", feeds), ("reference", refs)):
            (folder / kind / name).mkdir(parents=True)
            for i, arrs in enumerate(arrays):
                np.savez(folder / kind / name / f"{i}.npz", **arrs)
        tol = dict(manifest.verification.tolerances) if manifest.verification and \
            manifest.verification.tolerances else None
        entries.append({
            "name": name, "format": manifest.format, "precision": manifest.precision.requested,
            "compute": manifest.precision.compute, "source": manifest.source.get("file"),
            "samples": len(feeds), "inputs": _strip_paths(what), "tolerances": tol,
            "runtime": profile.runtime_for(manifest.format),
            "host": _host_figures(dest, manifest, feeds, refs, tol, progress),
            "export": _export_figures(manifest)})
    (folder / "requirements.txt").write_text(requirements_text(profile, sorted({e["format"] for e in entries})))
    (folder / "run.py").write_text(_RUN_PY)
    (folder / "README.md").write_text(_readme(profile, entries))
    _check_no_host_paths(folder, _host_roots(items), entries)
    files = {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    doc = {"schema": BUNDLE_SCHEMA, "edgekit": __version__,
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "target": {"name": profile.name, **profile.facts()},
           "host": {"machine": platform.machine(), "python": platform.python_version(), "system": platform.system()},
           "artifacts": entries, "files": files}
    atomic_write_text(folder / BUNDLE_NAME, json.dumps(doc, indent=2) + "\n")


def _reference(path: Path, manifest: Manifest, data, samples, model, cache, progress):
    """The samples (ONNX input names) and ONNX Runtime fp32 outputs on the artifact's source model, as `check`
    makes them; artifacts of one source share one reference."""
    from .harness.inputs import make_samples
    from .harness.reference import reference_model, source_model
    from .runner import reference

    n = samples or (manifest.verification.samples if manifest.verification else 2) or 2
    const = manifest.export_options.get("const") or {}
    key = (manifest.source.get("sha256"), json.dumps(const, sort_keys=True), n)
    if key not in cache:
        src = source_model(manifest, model)
        progress(f"running the ONNX Runtime reference on {src.name}")
        ref = reference(reference_model(manifest, src), name=src.name)
        specs = _static_specs(manifest)
        feeds, what = make_samples(specs, data, manifest.preprocessing, n)
        feeds = [{k: v for k, v in f.items() if k not in const} for f in feeds]
        refs = [ref(f) for f in feeds]
        ref.close()
        cache[key] = (feeds, refs, what)
    return cache[key]


def _static_specs(manifest: Manifest) -> list[TensorSpec]:
    """The artifact's inputs at static shapes: a dynamic artifact's first verified shapes (its manifest's
    verification.shapes), so that generated samples are what the export checked, not 1 on every free axis."""
    specs = [TensorSpec(s.name, s.dtype, list(s.shape)) for s in manifest.inputs]
    shapes = manifest.verification.shapes if manifest.verification else []
    if any(not isinstance(d, int) for s in specs for d in s.shape) and shapes and len(shapes[0]) == len(specs):
        for spec, shape in zip(specs, shapes[0]):
            if len(shape) == len(spec.shape) and all(isinstance(d, int) for d in shape):
                spec.shape = list(shape)
    return specs


def _host_figures(folder: Path, manifest: Manifest, feeds, refs, tol, progress) -> dict:
    """The artifact on this host's runtime on the bundle's own samples: what the device should reproduce."""
    backend = backends.get(manifest.format)
    if not backend.available():
        return {"measured": False, "why": f"{backend.runtime} is not installed on the host"}
    progress(f"running {folder.name} on the host")
    return {"measured": True, **_figures(folder, feeds, refs, tol, manifest.precision.requested),
            "machine": platform.machine()}


def _figures(folder: Path, feeds, refs, tol, precision: str, threads: int | None = None) -> dict:
    """The artifact in `folder` on this machine's runtime against the stored reference: the host's figures at
    bundle time and the device's at verify time come from this one function. `tol`: the artifact's own, else
    the precision's defaults."""
    from .harness.compare import DEFAULT_TOLERANCES, compare_outputs
    from .runner import open_artifact

    runner = open_artifact(folder, Manifest.load(folder), threads)
    try:
        outs = [runner(f) for f in feeds]
        compute = runner.effective_precision
    finally:
        runner.close()
    reports = compare_outputs(refs, outs, tol or DEFAULT_TOLERANCES.get(precision, DEFAULT_TOLERANCES["fp32"]))
    return {"cosine": min(r.cosine for r in reports), "max_abs": max(r.max_abs for r in reports),
            "passed": all(r.passed for r in reports), "compute": compute,
            "outputs": [{"name": r.name, "cosine": r.cosine, "max_abs": r.max_abs, "p999_abs": r.p999_abs,
                         "top1": r.top1, "passed": r.passed} for r in reports]}


def _export_figures(manifest: Manifest) -> dict | None:
    v = manifest.verification
    if not v or not v.outputs:
        return None
    return {"cosine": min(o.cosine for o in v.outputs), "max_abs": max(o.max_abs for o in v.outputs),
            "passed": v.passed, "samples": v.samples, "inputs": _strip_paths(v.inputs)}


def _strip_paths(value):
    """The value with every absolute path in its strings cut to its last component (recursively)."""
    if isinstance(value, str):
        return _ABS_PATH.sub(lambda m: m.group(1) or ".", value)
    if isinstance(value, list):
        return [_strip_paths(v) for v in value]
    if isinstance(value, dict):
        return {k: _strip_paths(v) for k, v in value.items()}
    return value


def _portable_manifest(manifest: Manifest) -> Manifest:
    """The artifact's manifest without the host's paths: the source model's location is dropped, and the strings
    that can name host files (where the inputs came from, export options, calibration, the ladder's messages) keep
    only a path's last component. Tensor names are left alone: ONNX names such as '/conv/Conv_output_0' are
    names, not paths."""
    data = json.loads(manifest.to_json())
    data["source"].pop("path", None)
    for key in ("export_options", "attempts"):
        data[key] = _strip_paths(data.get(key))
    if data.get("verification"):
        data["verification"]["inputs"] = _strip_paths(data["verification"].get("inputs"))
    if (data.get("precision") or {}).get("quantization"):
        data["precision"]["quantization"] = _strip_paths(data["precision"]["quantization"])
    return Manifest.from_dict(data)


def _host_roots(items) -> list[str]:
    """Host folders whose names must not appear in a bundle (a leak would tie it to this machine)."""
    roots = {sys.prefix, sys.base_prefix, str(Path.home()), os.getcwd()}
    for path, manifest in items:
        roots.add(str(path.resolve().parent))
        if manifest.source.get("path"):
            roots.add(str(Path(manifest.source["path"]).parent))
    return sorted(r for r in roots if len(Path(r).parts) > 2)  # never "/" or "/tmp" alone


def _check_no_host_paths(folder: Path, roots: list[str], entries: list[dict]) -> None:
    """What the bundle writes must name no host folder (refused: that would be our bug). An artifact's own files
    are copied as exported and verified, so they are kept; one that holds a host path (a converter copied a
    model's metadata) is noted in its entry, without the path, so that a re-export can drop it."""
    by_name = {e["name"]: e for e in entries}
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(folder)
        blob = p.read_bytes()
        root = next((r for r in roots if r.encode() in blob), None)
        if root is None:
            continue
        if rel.parts[0] == "artifacts" and rel.name != MANIFEST_NAME:
            by_name[rel.parts[1]].setdefault("notes", []).append(
                f"{rel.name} holds a host path (written into it at export); re-export to drop it")
            continue
        raise EdgekitError(f"{rel} would name the host path {root}; a bundle must not name host files")


def _write_tar(folder: Path, out: Path, force: bool) -> None:
    """folder as out (.tar.gz), written beside it and renamed into place; members are plain files and folders
    with relative names, no owners."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.{owner_tag()}.", suffix=".tmp", dir=out.parent)
    os.close(fd)

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    try:
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(folder, arcname=folder.name, filter=clean)
        from .fsutil import umask

        os.chmod(tmp, 0o666 & ~umask())
        check_destination(out, force)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def requirements_text(profile: Profile, formats: list[str] | None = None) -> str:
    """The device's pip requirements: the profile's core packages and the runtimes of `formats` (default all),
    pinned; never a converter or TensorFlow."""
    formats = formats if formats is not None else list(profile.runtimes)
    lines = [f"# edgekit {__version__} runtime requirements for {profile.name} ({profile.arch}, Python "
             f"{profile.python}): pip install -r requirements.txt",
             "# then edgekit itself without its export dependencies: pip install --no-deps edgekit-*.whl"]
    lines += list(profile.packages)
    for fmt in formats:
        lines.append(profile.runtime_for(fmt))
    return "\n".join(dict.fromkeys(lines)) + "\n"


# ---------------------------------------------------------------------------------------------- checking one


@contextlib.contextmanager
def opened(path):
    """A bundle folder, or a .tar.gz unpacked (plain files and folders only) into a temporary folder."""
    path = Path(path)
    if path.is_dir():
        if not (path / BUNDLE_NAME).is_file():
            raise EdgekitError(f"{path}: not a bundle (no {BUNDLE_NAME}); make one with `edgekit bundle`")
        yield path
        return
    if not path.exists():
        raise EdgekitError(f"{path}: no such file or folder")
    if not path.name.endswith(TAR_SUFFIXES):
        raise EdgekitError(f"{path}: not a bundle (a bundle is a folder with {BUNDLE_NAME} or a .tar.gz of one)")
    with tempfile.TemporaryDirectory(prefix=f"edgekit-bundle-{owner_tag()}-") as tmp:
        try:
            with tarfile.open(path, "r:gz") as tar:
                members = tar.getmembers()
                bad = [m.name for m in members if not (m.isfile() or m.isdir()) or Path(m.name).is_absolute()
                       or ".." in Path(m.name).parts]
                if bad:
                    raise EdgekitError(f"{path}: the archive holds {bad[0]!r}, which is not a plain file inside "
                                       "the bundle; refusing it")
                tar.extractall(tmp, members=members, **({"filter": "data"} if hasattr(tarfile, "data_filter")
                                                        else {}))
        except (tarfile.TarError, EOFError, OSError) as e:
            raise EdgekitError(f"{path}: not a readable .tar.gz ({e})") from None
        tops = [p for p in Path(tmp).iterdir()]
        if len(tops) != 1 or not (tops[0] / BUNDLE_NAME).is_file():
            raise EdgekitError(f"{path}: the archive does not hold one bundle folder with {BUNDLE_NAME}")
        yield tops[0]


def read_bundle(folder: Path) -> dict:
    """bundle.json, after every file in the folder was checked against its sha256: nothing missing, changed or
    added (a runtime handed changed weights can crash the process, so nothing unverified reaches one)."""
    folder = Path(folder)
    path = folder / BUNDLE_NAME
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise EdgekitError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict) or \
            not isinstance(doc.get("artifacts"), list):
        raise EdgekitError(f"{path}: malformed (needs 'files' and 'artifacts')")
    if not isinstance(doc.get("schema"), int) or doc["schema"] > BUNDLE_SCHEMA:
        raise EdgekitError(f"{path}: bundle schema {doc.get('schema')!r} is not one this edgekit understands "
                           f"({BUNDLE_SCHEMA})")
    files = doc["files"]
    problems = []
    on_disk = set()
    for root, dirs, names in os.walk(folder):
        for n in dirs + names:
            p = Path(root, n)
            rel = p.relative_to(folder).as_posix()
            if p.is_symlink():
                problems.append(f"{rel} is a link (not in the bundle)")
            elif p.is_file():
                if rel != BUNDLE_NAME:
                    on_disk.add(rel)
            elif not p.is_dir():
                problems.append(f"{rel} is not a plain file")
    for rel in sorted(on_disk - set(files)):
        problems.append(f"{rel} is not in {BUNDLE_NAME} (an extra file)")
    for rel, want in sorted(files.items()):
        if not isinstance(rel, str) or Path(rel).is_absolute() or ".." in Path(rel).parts or rel == BUNDLE_NAME:
            problems.append(f"{BUNDLE_NAME} names {rel!r}, outside the bundle")
        elif rel not in on_disk:
            problems.append(f"{rel} is missing")
        elif sha256(folder / rel) != want:
            problems.append(f"{rel} does not match its sha256 (changed or corrupted)")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise EdgekitError(f"{folder}: the bundle does not match {BUNDLE_NAME}: {'; '.join(problems[:3])}{more}; "
                           "copy it again or rebuild it with `edgekit bundle`")
    for entry in doc["artifacts"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or \
                f"artifacts/{entry['name']}/{MANIFEST_NAME}" not in files:
            raise EdgekitError(f"{path}: malformed artifact entry {entry!r}")
    return doc


def artifact_folders(bundle) -> list[Path]:
    """The artifact folders of a bundle folder (checked against bundle.json): what `bench` and `pipeline` run."""
    folder = Path(bundle)
    doc = read_bundle(folder)
    return [folder / "artifacts" / e["name"] for e in doc["artifacts"]]


def expand_bundles(paths: list) -> list:
    """Each bundle folder among `paths` replaced by its artifact folders (after its hashes are checked); a
    .tar.gz bundle must be unpacked first (its artifacts have to outlive this call)."""
    out = []
    for p in paths:
        path = Path(p)
        if path.is_dir() and (path / BUNDLE_NAME).is_file():
            out += artifact_folders(path)
        elif path.is_file() and path.name.endswith(TAR_SUFFIXES):
            raise EdgekitError(f"{path}: unpack the bundle first (tar xzf {path.name}) and give its folder")
        else:
            out.append(p)
    return out


def verify_bundle(bundle, threads: int | None = None, progress=None) -> VerifyReport:
    """Check a bundle on this machine: its files against bundle.json, then every artifact on the runtimes here
    against the host's stored ONNX Runtime reference (no ONNX model or converter needed).

    Args:
        bundle: a bundle folder or .tar.gz made by `make_bundle`.
        threads: runtime threads (default: the profile's).
        progress: called with a line of text as it runs.

    Returns:
        a VerifyReport: per artifact, the host's cosine / max-abs beside this device's, and a status (`ok`,
        `failed`, `missing runtime` with the package to install, `error`).

    Raises:
        EdgekitError: not a bundle, or a file that does not match bundle.json (missing, changed, extra).
    """
    from .harness.inputs import _load_npz

    progress = progress or (lambda msg: None)
    with opened(bundle) as folder:
        doc = read_bundle(folder)
        target = doc.get("target") or {}
        threads = threads or target.get("threads")
        report = VerifyReport(bundle=Path(bundle).name, target=str(target.get("name", "?")), device=device_facts())
        for e in doc["artifacts"]:
            fmt, precision = str(e.get("format")), str(e.get("precision", "fp32"))
            row = ArtifactCheck(e["name"], fmt, precision, e.get("host") or {}, notes=list(e.get("notes") or []))
            report.artifacts.append(row)
            try:
                backend = backends.get(fmt)
            except EdgekitError as err:
                row.status, row.error = "error", str(err)
                continue
            if not backend.available():
                row.status, row.install = "missing runtime", str(e.get("runtime") or backend.install_hint())
                row.error = f"{backend.runtime} is not installed here: pip install {row.install}"
                continue
            progress(f"verifying {e['name']}")
            try:
                feeds = _arrays(folder / "samples" / e["name"], e.get("samples"), _load_npz)
                refs = _arrays(folder / "reference" / e["name"], e.get("samples"), _load_npz)
                row.device = {**_figures(folder / "artifacts" / e["name"], feeds, refs, e.get("tolerances"),
                                         precision, threads), "samples": len(feeds)}
                row.status = "ok" if row.device["passed"] else "failed"
            except EdgekitError as err:
                row.status, row.error = "error", str(err)
    return report


def _arrays(folder: Path, count, load) -> list[dict]:
    n = count if isinstance(count, int) and count > 0 else None
    paths = [folder / f"{i}.npz" for i in range(n)] if n else sorted(folder.glob("*.npz"))
    if not paths or not all(p.is_file() for p in paths):
        raise EdgekitError(f"{folder}: the bundle's samples are missing")
    return [load(p) for p in paths]


def device_facts() -> dict:
    """What names this machine in a report: architecture, CPU count, Python, OS."""
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu part")):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "cpu": cpu, "node": platform.node()}


# ---------------------------------------------------------------------------------------------- entry point

_RUN_PY = '''"""Verify this bundle on this device: python3 run.py [--json FILE] [--threads N]

Needs the packages in requirements.txt and edgekit (pip install --no-deps edgekit-*.whl); same as
`edgekit verify .` run in this folder."""
import sys
from pathlib import Path

try:
    from edgekit.cli import main
except ImportError:
    sys.exit("edgekit is not installed here: pip install -r requirements.txt, then the edgekit wheel "
             "(pip install --no-deps edgekit-*.whl)")

sys.exit(main(["verify", str(Path(__file__).resolve().parent), *sys.argv[1:]]))
'''


def _readme(profile: Profile, entries: list[dict]) -> str:
    rows = "\n".join(f"| {e['name']} | {e['format']} | {e['precision']} | {e['runtime']} |" for e in entries)
    return f"""# edgekit bundle for {profile.name}

{profile.description}. Made by edgekit {__version__}; every file's sha256 is in bundle.json.

On the device (Python {profile.python}, {profile.arch}):

    python3 -m venv venv && . venv/bin/activate
    pip install -r requirements.txt
    pip install --no-deps edgekit-*.whl      # or: pip install 'edgekit[runtime]'
    edgekit verify .                         # or: python3 run.py
    edgekit bench .

| artifact | format | precision | runtime |
|---|---|---|---|
{rows}
"""
