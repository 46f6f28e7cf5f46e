"""The command line, argparse and dispatch only: `main(argv=None)` parses and runs one command, and every
command's work lives in the package below it. One module per command group registers its subcommands:
`data` (synth, check, convert-svhn), `train` (train, eval, pretrain, line), `read` (read, predict), `serve`,
`experiments` (demo, ablate, sweep, errors) and `speed` (export); `budget` holds the budget flags they share.
It may import everything in digitdet; nothing imports it.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading

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
    train.register_line(sub)
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
    except BrokenPipeError:  # `digitdet read ... | head -1`: the reader has what it wanted; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the last flush is quiet
        return 141  # what a shell reports for a tool stopped by SIGPIPE


def run() -> None:
    """The console script and `python -m digitdet.cli`: main(), then a quick exit. Tearing the interpreter
    down after torch is imported (freeing every module and object one by one) takes about 0.5 s, a sixth
    of `digitdet read`'s first answer (measured 2026-12-03, AMD EPYC, 2 cores: `python -c "import torch"`
    2.4 s, 1.9 s leaving by os._exit). Everything a command writes is closed by then (atomic writes); the
    atexit handlers still run and the standard streams are flushed. Another thread still running (none
    should be), an exception or a caller of main() (tests, scripts) gets the ordinary exit."""
    code = main()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a reader that went away (`| head`), or a closed stream
        pass
    os._exit(code)
