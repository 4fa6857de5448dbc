"""Pack what a bare GPU machine lacks for ``scripts/gpu-check.sh``: ``python -m benchmarks.gpu_pack``.

The lent GPU machine (Python 3.12 with PyTorch, OpenCV, pytest and httpx; no package registry
reachable) receives a copy of the working tree of at most 64 MiB. This fills ``.gpu-carry/``
(kept out of git through ``.git/info/exclude``) with:

- ``wheels/``: the packages facefind needs that the machine lacks (FAISS for the CPU, the
  service's FastAPI stack), as CPython 3.12 manylinux x86-64 wheels of the versions installed
  here; ``scripts/gpu-check.sh`` installs them into a private folder;
- ``lfw.tar``: the first ``--images`` LFW photos in their person folders, for the ``indexer
  build`` benchmark (all of LFW is 162 MB).

FAISS's GPU build cannot come along: its wheel alone is 135 MB and needs CUDA 12's cuBLAS,
while the machine carries CUDA 13. The shipped model (48 MB) must stay behind too: move it
out of the tree for the trip (the check makes a random-weight stand-in of the same shape).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import DATA, REPO
from indexer.build import find_images

CARRY = REPO / ".gpu-carry"
LIMIT = 64 * 2**20
WHEELS = (
    "faiss-cpu",
    "fastapi",
    "starlette",
    "pydantic",
    "pydantic-core",
    "pydantic-settings",
    "python-dotenv",
    "typing-inspection",
    "annotated-types",
    "uvicorn",
    "python-multipart",
)
"""What facefind imports that the machine's image lacks (its package list: the device
tool's KINDS.md), without dependencies that it has (numpy, anyio, h11, click, typing-extensions)."""
PLATFORMS = ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_27_x86_64",
             "manylinux_2_28_x86_64", "manylinux_2_34_x86_64", "manylinux_2_35_x86_64")  # fmt: skip


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_pack", description=__doc__)
    parser.add_argument("--images", type=int, default=1500, help="LFW photos to pack")
    parser.add_argument("--lfw", type=Path, default=DATA / "lfw")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wheels = CARRY / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    exclude()
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in WHEELS]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    cmd += ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    cmd += [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([*cmd, "--dest", str(wheels), *pins], check=True)
    photos = find_images(args.lfw)[: args.images]
    with tarfile.open(CARRY / "lfw.tar", "w") as tar:
        for path in photos:
            tar.add(path, arcname=str(path.relative_to(args.lfw.resolve())))
    sizes = {
        "wheels": sum(p.stat().st_size for p in wheels.iterdir()),
        "lfw.tar": (CARRY / "lfw.tar").stat().st_size,
        "tree without .gpu-carry and the shipped model": tree_bytes(),
    }
    total = sum(sizes.values())
    summary = {"images": len(photos), "pins": pins, "bytes": sizes, "total_bytes": total}
    (CARRY / "manifest.json").write_text(json.dumps(summary, indent=2) + "\n")
    for what, size in sizes.items():
        print(f"{size / 2**20:6.1f} MiB  {what}")
    print(f"{total / 2**20:6.1f} MiB  in all, of the {LIMIT / 2**20:.0f} MiB the machine receives")
    if total > LIMIT:
        print("error: too much to travel: pack fewer --images", file=sys.stderr)
        return 1
    return 0


def exclude() -> None:
    """Keep .gpu-carry out of git (locally: .gitignore is not this tool's to edit)."""
    path = REPO / ".git" / "info" / "exclude"
    if path.parent.is_dir():
        text = path.read_text() if path.is_file() else ""
        if "/.gpu-carry/" not in text.split():
            path.write_text(
                text + ("" if text.endswith("\n") or not text else "\n") + "/.gpu-carry/\n"
            )


def tree_bytes() -> int:
    """What travels besides .gpu-carry: tracked and untracked-but-not-ignored files, less the
    shipped model, which is moved aside for the trip."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    model = "models/facefind-resnet50.pt"
    files = (REPO / name.decode() for name in listed if name and name.decode() != model)
    return sum(p.stat().st_size for p in files if p.is_file())


if __name__ == "__main__":
    sys.exit(main())
