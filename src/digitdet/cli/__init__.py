"""The command line, argparse and dispatch only: `main(argv=None)` parses and runs one command, and every
command's work lives in the package below it. One module per command group registers its subcommands:
`data` (synth, check, convert-svhn), `train` (train, eval, pretrain), `read` (read, predict), `serve`,
`experiments` (demo, ablate, sweep, errors) and `speed` (export); `budget` holds the budget flags they share.
It may import everything in digitdet; nothing imports it.
"""

from __future__ import annotations

import argparse
import sys

from digitdet.errors import DigitdetError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="digitdet", description="Find every digit in house-number photos and read the whole number."
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from digitdet.cli import data, experiments, read, serve, speed, train
    from digitdet.cli.budget import budget_flags

    # Registered in the order `digitdet --help` has always listed them.
    data.register(sub)  # synth, check, convert-svhn
    train.register(sub, budget_flags)  # train, eval
    read.register_predict(sub)
    train.register_pretrain(sub)
    experiments.register_demo(sub, budget_flags)
    read.register(sub)
    serve.register(sub)
    experiments.register(sub, budget_flags)  # ablate, sweep, errors
    speed.register(sub, budget_flags)  # export
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DigitdetError as exc:
        print(f"digitdet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("digitdet: interrupted", file=sys.stderr)
        return 130
