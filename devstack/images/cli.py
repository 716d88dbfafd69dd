"""`python -m devstack images ...`: build the images here and say what each cost.

python -m devstack images build [NAME ...] [--parallel N] [--json]   build what changed (all by default)
python -m devstack images list                                        the catalog: context, Dockerfile, bases
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from devstack.images.catalog import IMAGES


def cmd_build(args: argparse.Namespace) -> int:
    from devstack.images.build import build_images

    started = time.monotonic()
    results = build_images(args.names, parallel=args.parallel)
    total = time.monotonic() - started
    if args.json:
        print(json.dumps({"seconds": round(total, 1), "images": [r.as_dict() for r in results]}, indent=2))
        return 0
    for result in results:
        state = "cached" if result.cached else f"built in {result.seconds:.0f} s"
        print(f"{result.name:<16} {result.reference:<58} {result.size_bytes / 1e6:>6.0f} MB  {state}")
    print(f"total {total:.0f} s (logs: {results[0].log_path.rsplit('/', 1)[0] if results else '-'})")
    return 0


def cmd_list(_args: argparse.Namespace) -> int:
    for spec in IMAGES.values():
        print(
            f"{spec.name:<16} context {spec.context}  Dockerfile {spec.dockerfile}  bases {', '.join(spec.base_args)}"
        )
    return 0


def add_parser(sub: Any) -> None:
    images = sub.add_parser("images", help="build the images from their Dockerfiles here (buildah)")
    commands = images.add_subparsers(dest="images_command", required=True)
    build = commands.add_parser(
        "build",
        help="build the images whose content changed (all by default), two at a time",
        description="Installs buildah and mmdebstrap with apt-get when missing (as root); the local base image "
        "and every image are cached by content under ~/.cache/seldon-feedback/containers.",
    )
    build.add_argument("names", nargs="*", help=f"images to build: {', '.join(IMAGES)} (default: all)")
    build.add_argument("--parallel", type=int, default=2, help="images built at once (default 2)")
    build.add_argument("--json", action="store_true", help="print the results as JSON")
    build.set_defaults(func=cmd_build)
    commands.add_parser("list", help="the images, their build contexts and base arguments").set_defaults(func=cmd_list)
