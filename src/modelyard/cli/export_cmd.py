"""``modelyard export REF --format onnx|safetensors --out FILE``: a version for other runtimes."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_store_arg

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register the ``export`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "export", help="write a version as ONNX (preprocessing included) or safetensors",
        description="Export a version. --format onnx writes one ONNX graph with the preprocessing inside (scaling, "
        "one-hot and ordinal encodings): one [N, 1] input per raw column (float32 numbers, strings for categories), "
        "outputs label + probabilities (classification) or prediction (regression). --format safetensors writes the "
        "weights, with the family, params and schema in its metadata and in FILE.json.",
    )
    p.add_argument("ref", help="the version: NAME@ALIAS, NAME/NUMBER or an id prefix")
    p.add_argument("--format", choices=("onnx", "safetensors"), default="onnx", help="onnx (default) or safetensors")
    p.add_argument("--out", required=True, metavar="FILE", help="file to write")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    add_store_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``modelyard export``."""
    from modelyard.serve.export import export_model
    from modelyard.serve.holder import load_version
    from modelyard.yard import Yard

    from .render import print_json

    with Yard(args.store) as yard:
        loaded = load_version(yard.registry, args.ref)
    files = export_model(loaded.predictor, args.format, args.out,
                         description=f"modelyard {loaded.ref} (id {loaded.id}), {loaded.version.family}")
    if args.json:
        print_json({"version": {"id": loaded.id, "ref": loaded.ref}, "format": args.format, "files": files})
    else:
        print(f"exported {loaded.ref} (id {loaded.version.short_id}) as {args.format}: {', '.join(files)}")
    return 0
