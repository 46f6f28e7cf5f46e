"""`python -m digitdet.cli ...`: the same as the `digitdet` console script."""

from digitdet.cli import run

if __name__ == "__main__":  # importing this module (pkgutil, tests) runs nothing
    run()
