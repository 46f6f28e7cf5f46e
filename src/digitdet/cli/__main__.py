"""`python -m digitdet.cli ...`: the same as the `digitdet` console script."""

import sys

from digitdet.cli import main

sys.exit(main())
