"""``python -m indexer`` inside the container, writing to the store the service reads.

The store's place is the container's FACEFIND_DATA_DIR (the named volume), so
``docker compose run --rm indexer build /gallery`` needs no ``--index``; an explicit
``--index`` still wins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

INDEX_COMMANDS = ("build", "search", "info", "cluster")
"""Sub-commands of ``python -m indexer`` that take ``--index`` (tests check it against the CLI)."""


def with_default_index(argv: Sequence[str], data_dir: str) -> list[str]:
    """``argv`` plus ``--index DATA_DIR`` when its command needs one and none was given."""
    args = list(argv)
    if not args or args[0] not in INDEX_COMMANDS:
        return args
    if any(arg == "--index" or arg.startswith("--index=") for arg in args):
        return args
    # Options after a bare "--" would be read as positionals: put ours before it.
    at = args.index("--") if "--" in args else len(args)
    return [*args[:at], "--index", data_dir, *args[at:]]


def main() -> int:
    from indexer.cli import main as indexer_main

    data_dir = os.environ.get("FACEFIND_DATA_DIR", "/data")
    return indexer_main(with_default_index(sys.argv[1:], data_dir))


if __name__ == "__main__":
    sys.exit(main())
