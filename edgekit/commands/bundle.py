"""`edgekit bundle ARTIFACT... --target PROFILE -o DIR|NAME.tar.gz`: pack artifacts for a device (docs/bundles.md)."""
from __future__ import annotations

from .common import console, status


def register(sub) -> None:
    p = sub.add_parser(
        "bundle", help="pack artifacts for a device: files, samples, host reference, requirements (folder or .tar.gz)",
        description="Copy artifacts into a bundle for one device profile: the artifacts, the verification samples "
        "and the host's ONNX Runtime fp32 outputs for them, the host's own figures, a pinned runtime-only "
        "requirements.txt for the profile's arch and Python, and run.py; every file's sha256 in bundle.json. On the "
        "device: `edgekit verify BUNDLE`. Exit 0 on success, 2 for bad input.")
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT", help="artifact folders made by `edgekit export`")
    p.add_argument("--target", "-t", required=True, help="a device profile (edgekit targets lists them)")
    p.add_argument("--out", "-o", required=True, help="the bundle folder, or NAME.tar.gz")
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.add_argument("--data", action="append", default=None, metavar="PATH",
                   help="verification inputs: images (through each artifact's preprocessing) or .npy/.npz "
                        "(default: generated, as many as the export verified on)")
    p.add_argument("--samples", type=int, default=None, help="how many samples (default: the export's count)")
    p.add_argument("--model", default=None, help="the source ONNX model, when it is no longer where the "
                   "manifest says")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..bundle import make_bundle

    with status("bundling") as update:
        out = make_bundle(args.artifacts, args.target, args.out, force=args.force, data=args.data,
                          samples=args.samples, model=args.model,
                          progress=(lambda msg: None) if args.quiet else update)
    console().print(f"wrote {out} (on the device: edgekit verify {out.name})")
    return 0
