#!/usr/bin/env bash
# The test command: lint, then the CPU test suite. Args go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
"$root/.venv/bin/ruff" check .
exec "$root/.venv/bin/python" -m pytest "$@"
