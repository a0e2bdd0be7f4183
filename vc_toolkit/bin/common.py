"""Shared argparse pieces and the error handling every entry point uses."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from vc_toolkit import log
from vc_toolkit.errors import UserError, disk_full
from vc_toolkit.paths import Layout


def parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the options every command shares (``--root``, ``--verbose``)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--root",
        default=None,
        help="recipe root holding conf/, data/, dump/, exp/ (default: $VC_ROOT or the current dir)",
    )
    p.add_argument("--verbose", type=int, default=1, help="0: warnings only, 1: info, 2: debug")
    return p


def run(main: Callable[[argparse.Namespace, Layout], int | None], args: argparse.Namespace) -> int:
    """Run ``main(args, layout)``; a :class:`UserError` becomes ``error: <one line>`` and exit 1.

    Paths under the recipe root are shown relative to it (:meth:`Layout.shown_in`). Running
    out of disk space is one line too, wherever the write was.
    """
    log.setup(args.verbose)
    layout = Layout.from_env(args.root)
    try:
        return main(args, layout) or 0
    except UserError as err:
        print(f"error: {layout.shown_in(str(err))}", file=sys.stderr)
        return 1
    except Exception as err:
        full = disk_full(err)  # a write that no helper of ours wrapped (TensorBoard, logs)
        if full is None:
            raise
        print(f"error: {layout.shown_in(str(full))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted; finished work is kept and re-running continues from it", file=sys.stderr
        )
        return 130
