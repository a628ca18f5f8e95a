#!/usr/bin/env bash
# yamllint on every YAML file of deploy/ (ours and the monitoring files) and
# of tests/deploy/, with tests/deploy/yamllint.yaml (errors fail the test;
# warnings, such as long lines, are printed).
# usage: run_yamllint.sh ROOT
set -euo pipefail
root=$1
command -v yamllint >/dev/null || { echo "SKIP: yamllint is not installed (apt-get install yamllint)"; exit 77; }
mapfile -t files < <(find "$root/deploy" "$root/tests/deploy" -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
((${#files[@]} > 0)) || { echo "FAIL: no YAML files found"; exit 1; }
yamllint -c "$root/tests/deploy/yamllint.yaml" "${files[@]}"
echo "deploy yamllint: ${#files[@]} files clean"
