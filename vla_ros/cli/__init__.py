"""The ``vla-ros`` command: the CLI layer on top of the cores.

One module per command group (``data``, ``eval``, ``model``, ``sim``, ``train``) turns options into the
cores' configs and calls them; the disambiguation commands come from
:mod:`vla_ros.disambiguation.cli`. Cores never import from here. ``python -m vla_ros.cli`` is the same
command (what ``torchrun`` starts for multi-GPU training).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from vla_ros.errors import UserInputError

# Each module exposes ``register(subparsers)``; imported lazily so ``--help`` stays fast and a
# missing optional dependency of one area does not break the others.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "vla_ros.cli.data",
    "vla_ros.cli.demo",
    "vla_ros.disambiguation.cli",
    "vla_ros.cli.eval",
    "vla_ros.cli.model",
    "vla_ros.cli.serve",
    "vla_ros.cli.sim",
    "vla_ros.cli.train",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vla-ros",
        description="OpenVLA vision-language-action policies on ROS 2 arms: run, simulate, evaluate, train.",
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an input error too (for bug reports)"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _version() -> str:
    from vla_ros import __version__

    return f"vla-ros {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. An input error (a file, field, image or option that cannot be used) is one line
    on stderr and exit status 2, like argparse's own usage errors; a bug keeps its traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return int(func(args) or 0)
    except (UserInputError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        if args.debug:
            raise
        print(f"vla-ros {args.command}: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    text = str(exc) if not isinstance(exc, KeyError) or not exc.args else str(exc.args[0])
    return " ".join(text.split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
