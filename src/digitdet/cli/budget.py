"""The training-budget flags several commands share (train, demo, ablate, export) and the config overrides
they become."""

from __future__ import annotations

import argparse


def overrides(a: argparse.Namespace) -> list[str]:
    extra = list(a.overrides)
    if getattr(a, "max_epochs", None) is not None:
        extra.append(f"train.epochs={a.max_epochs}")
    if getattr(a, "limit", None) is not None:
        extra += [f"train.limit={a.limit}", f"train.val_limit={a.limit}"]
    # One budget at a time: a flag replaces whatever budget the config file sets.
    if getattr(a, "images", None) is not None:
        extra += [f"train.max_images={a.images}", "train.max_minutes=null"]
    if getattr(a, "minutes", None) is not None:
        extra += [f"train.max_minutes={a.minutes}", "train.max_images=null"]
    return extra


def budget_flags(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--max-epochs", type=int, help="shorthand for train.epochs=N")
    sp.add_argument("--limit", type=int, help="use only the first N train/valid images (smoke test)")
    budget_flags = sp.add_mutually_exclusive_group()
    budget_flags.add_argument("--images", type=int, metavar="N",
                              help="training budget in images seen (train.max_images): the same steps on any host")
    budget_flags.add_argument("--minutes", type=float,
                              help="training budget in minutes, turned into steps after timing the first "
                                   "steps (train.max_minutes)")
    sp.add_argument("overrides", nargs="*", metavar="section.key=value")
