"""``chainrule run -n N script.py [args]``: the script on N MPI processes, as torchrun would start it
(``python -m chainrule.distributed.run --nproc-per-node N script.py`` does the same)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--nprocs", type=int, default=2, help="processes to start (default: 2)")
    parser.add_argument("-m", "--module", action="store_true", help="run the target as a module (python -m)")
    parser.add_argument("script", help="the Python script to run on every process")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, help="its arguments")


def run(args) -> int:
    from ..cli import CommandError
    from ..distributed.run import launch

    if args.nprocs < 1:
        raise CommandError(f"-n must be a positive integer, got {args.nprocs}")
    try:
        return launch(args.nprocs, [args.script, *args.script_args], module=args.module)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None
