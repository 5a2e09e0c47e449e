"""The ``chainrule`` command: ``train | eval | explain | gradcheck | bench | run``.

Each subcommand lives in ``chainrule/commands/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``; this module only dispatches. Bad input exits with status 2 and one line
on stderr, any other failure with status 1 and one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "train": "train a model on a bundled dataset",
    "eval": "evaluate a checkpoint: test accuracy and confusion matrix",
    "explain": "show the forward values and the step-by-step backward pass of an expression",
    "gradcheck": "check an expression's gradients against finite differences",
    "bench": "benchmark chainrule against PyTorch CPU",
    "run": "start a script on N processes through MPI, as torchrun does",
}


class CommandError(Exception):
    """Bad user input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chainrule", description="chainrule: autograd on NumPy, PyTorch's API.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}", parser_class=_Parser)
    sub.required = True
    for name, help_text in COMMANDS.items():
        module = _load(name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        if module is not None:
            module.add_arguments(p)
    return parser


def _load(name: str):
    try:
        return importlib.import_module(f"chainrule.commands.{name.replace('-', '_')}")
    except ModuleNotFoundError as exc:
        if exc.name == f"chainrule.commands.{name}":
            return None
        raise


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = _load(args.command)
    if module is None:
        print(f"chainrule {args.command}: not available in this build", file=sys.stderr)
        return 2
    try:
        return int(module.run(args) or 0)
    except CommandError as exc:
        print(f"chainrule {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("interrupted" + (f": {_one_line(exc)}" if str(exc) else ""), file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the command line promises one line, not a traceback
        if args.debug:
            raise
        print(f"chainrule {args.command}: error: {type(exc).__name__}: {_one_line(exc)} (--debug shows the "
              "traceback)", file=sys.stderr)
        return 1


def _one_line(exc, limit: int = 500) -> str:
    """An error as one line of bounded length, however much input it quotes."""
    message = " ".join(str(exc).split())
    return message if len(message) <= limit else message[:limit] + "..."


if __name__ == "__main__":
    # run as `python -m chainrule.cli`: this file is then __main__, a second copy of the module;
    # dispatch through the real chainrule.cli so CommandError is the class commands raise
    from chainrule.cli import main as _main

    sys.exit(_main())
