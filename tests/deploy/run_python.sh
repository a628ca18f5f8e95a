#!/usr/bin/env bash
# Runs a deploy check written in Python with an interpreter that has PyYAML
# (Debian's python3-yaml, which yamllint pulls in); exit 77 (skipped) if none.
# With --plain, any python3 will do (the script needs no yaml).
# usage: run_python.sh [--plain] SCRIPT.py ARGS...
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
need='import yaml'
if [[ "${1:-}" == --plain ]]; then need='pass'; shift; fi
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c "$need" 2>/dev/null; then
    exec "$p" "$@"
  fi
done
echo "SKIP: no python3 with the yaml module (apt-get install python3-yaml)"
exit 77
