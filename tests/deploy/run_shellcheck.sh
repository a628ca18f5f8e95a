#!/usr/bin/env bash
# Runs shellcheck on the scripts of deploy/scripts/ and tests/deploy/.
# usage: run_shellcheck.sh ROOT
set -euo pipefail
root=$1
command -v shellcheck >/dev/null || { echo "SKIP: shellcheck is not installed (apt-get install shellcheck)"; exit 77; }
mapfile -t files < <(find "$root/deploy/scripts" "$root/tests/deploy" -type f \( -name '*.sh' -o ! -name '*.*' \) | sort)
((${#files[@]} > 0)) || { echo "FAIL: no scripts found"; exit 1; }
shellcheck -x "${files[@]}"
echo "deploy shellcheck: ${#files[@]} scripts clean"
