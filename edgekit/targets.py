"""`--target`: a format name, a comma list, `all`, or a device profile from the `targets/` folder edgekit ships.

A profile is what edgekit knows about a device: arch, cores, threads, preferred formats, precision, the Python
and glibc it runs, the runtime wheels pinned for them (a bundle's requirements.txt) and the qemu CPU that stands
in for it. `check_registry` asks the package registry whether those wheels exist for the device (pip download
of each, cached), since a wheel that exists on the host may not exist for the device's arch or Python."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from . import backends
from .errors import EdgekitError
from .resources import shipped


@dataclass
class Profile:
    name: str
    description: str
    arch: str
    cores: int
    formats: list[str]  # preferred formats, best first
    precision: str = "fp32"
    threads: int | None = None
    python: str = "3.11"  # the device's Python (the wheels' cpXY tag)
    glibc: str = "2.36"  # the device's glibc: wheels up to manylinux_<glibc> install there
    qemu_cpu: str | None = None  # QEMU_CPU that emulates the device's cores (qemu-user-static)
    packages: list[str] = field(default_factory=list)  # what edgekit itself needs on the device, pinned
    runtimes: dict = field(default_factory=dict)  # format -> the pinned runtime package for it
    gpu: str = ""  # what the GPU path covers, and what it does not
    registry: dict = field(default_factory=dict)  # measured wheel availability: cpXY -> {package: wheel or "none"}

    @property
    def requirements(self) -> list[str]:
        """Everything a device with this profile pip-installs: edgekit's device packages and every runtime."""
        return list(dict.fromkeys([*self.packages, *self.runtimes.values()]))

    def runtime_for(self, fmt: str) -> str:
        return self.runtimes.get(fmt, "")

    def platforms(self) -> list[str]:
        """pip's --platform tags a wheel for this device may carry (pip matches them exactly)."""
        major, minor = (int(v) for v in self.glibc.split(".")[:2])
        tags = [f"manylinux_{major}_{m}_{self.arch}" for m in range(minor, 16, -1)]
        return [*tags, f"manylinux2014_{self.arch}"]

    def facts(self) -> dict:
        return {"description": self.description, "arch": self.arch, "cores": self.cores, "threads": self.threads,
                "formats": list(self.formats), "precision": self.precision, "python": self.python,
                "glibc": self.glibc, "qemu_cpu": self.qemu_cpu, "runtimes": dict(self.runtimes)}


_FIELDS = set(Profile.__dataclass_fields__) - {"name"}


def profile_dir() -> Path:
    return shipped("targets")


def profiles(folder: Path | None = None) -> dict[str, Profile]:
    folder = folder or profile_dir()
    out = {}
    for f in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(f.read_text())
        except tomllib.TOMLDecodeError as e:
            raise EdgekitError(f"{f}: not valid TOML ({e})") from None
        unknown = sorted(set(data) - _FIELDS)
        if unknown:
            raise EdgekitError(f"{f}: unknown profile keys {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}")
        try:
            out[f.stem] = Profile(name=f.stem, **data)
        except TypeError as e:
            raise EdgekitError(f"{f}: {e}") from None
    return out


@dataclass
class Plan:
    formats: list[str]
    precision: str | None = None
    threads: int | None = None
    profile: Profile | None = None


def resolve(target: str) -> Plan:
    """'ncnn' | 'ncnn,mnn' | 'all' | 'raspberry-pi-5' -> the formats to export and the profile's settings."""
    target = (target or "").strip()
    if target == "all":
        return Plan(list(backends.CONVERTED_FORMATS))
    profs = profiles()
    if target in profs:
        p = profs[target]
        return Plan(list(p.formats), p.precision, p.threads, p)
    formats = [t.strip() for t in target.split(",") if t.strip()]
    unknown = [f for f in formats if f not in backends.formats()]
    if not formats or unknown:
        raise EdgekitError(f"unknown target '{', '.join(unknown) or target}'; use a format "
                           f"({', '.join(backends.formats())}), a comma list, 'all', or a device profile "
                           f"({', '.join(profs)})")
    return Plan(list(dict.fromkeys(formats)))


# ------------------------------------------------------------------------------------- registry reachability

CACHE_DAYS = 7


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgekit" / "registry.json"


def _key(profile: Profile, package: str) -> str:
    return f"{package}|{profile.arch}|cp{profile.python.replace('.', '')}|glibc{profile.glibc}"


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def cached_registry(profile: Profile, path: Path | None = None) -> dict:
    """package -> the cached answer ({ok, wheel or why, checked}) for this profile; missing: never checked."""
    cache = _read_cache(path or cache_path())
    return {pkg: cache[_key(profile, pkg)] for pkg in profile.requirements if _key(profile, pkg) in cache}


def check_registry(profile: Profile, path: Path | None = None, refresh: bool = False, pip=None,
                   index: list[str] | None = None) -> dict:
    """Ask the package registry (pip download --no-deps --only-binary :all: for the device's platform and Python)
    whether each of the profile's pinned packages has a wheel for the device; answers are cached for a week.
    Touches the network: only `edgekit targets --check-registry` calls it. `pip`: the pip command (default this
    Python's); `index`: pip's index options (default its configured index)."""
    from .fsutil import atomic_write_text

    path = path or cache_path()
    cache = _read_cache(path)
    out = {}
    for pkg in profile.requirements:
        key = _key(profile, pkg)
        hit = cache.get(key)
        if hit and not refresh and time.time() - hit.get("checked", 0) < CACHE_DAYS * 86400:
            out[pkg] = hit
            continue
        out[pkg] = cache[key] = {**_pip_download(profile, pkg, pip, index), "checked": int(time.time())}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(cache, indent=1, sort_keys=True) + "\n")
    return out


def _pip_download(profile: Profile, package: str, pip=None, index=None) -> dict:
    cmd = [*(pip or [sys.executable, "-m", "pip"]), "download", "--no-deps", "--only-binary", ":all:",
           "--python-version", profile.python.replace(".", ""), "--disable-pip-version-check", "-q", *(index or [])]
    for tag in profile.platforms():
        cmd += ["--platform", tag]
    with tempfile.TemporaryDirectory(prefix="edgekit-registry-") as tmp:
        try:
            done = subprocess.run([*cmd, "-d", tmp, package], capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            return {"ok": False, "why": f"pip did not run: {e}"}
        wheels = sorted(p.name for p in Path(tmp).glob("*.whl"))
    if done.returncode == 0 and wheels:
        return {"ok": True, "wheel": wheels[0]}
    text = (done.stderr or done.stdout).strip().splitlines()
    why = next((line for line in text if "from versions" in line or "No matching" in line), text[-1] if text else "")
    return {"ok": False, "why": why.replace("ERROR: ", "")[:300]}
