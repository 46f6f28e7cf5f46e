"""`python -m digitdet.cli ...`: the same as the `digitdet` console script."""

import sys

from digitdet.cli import main

if __name__ == "__main__":  # importing this module (pkgutil, tests) runs nothing
    sys.exit(main())
