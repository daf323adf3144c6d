"""`--target`: a format name, a comma list, `all`, or a device profile from the `targets/` folder edgekit ships."""
from __future__ import annotations

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
    requirements: list[str] = field(default_factory=list)  # what to pip-install on the device


def profile_dir() -> Path:
    return shipped("targets")


def profiles(folder: Path | None = None) -> dict[str, Profile]:
    folder = folder or profile_dir()
    out = {}
    for f in sorted(folder.glob("*.toml")):
        data = tomllib.loads(f.read_text())
        out[f.stem] = Profile(name=f.stem, **data)
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
