#!/usr/bin/env bash
# Runs every native fuzz target of the module for FUZZTIME each (default 30s).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-30s}
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
  pkg=./$(dirname "${f#./}")
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
    echo "== $pkg $fn ($t)"
    go test "$pkg" -run "^$" -fuzz "^$fn\$" -fuzztime "$t" -fuzzminimizetime 5s
  done
done
