#!/usr/bin/env bash
# Fails when the committed generated code differs from what generate.sh
# produces now (a .proto edited without regenerating, or a generator bump).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$root/api/generate.sh" "$tmp"
status=0
for f in $(cd "$tmp" && find . -name '*.go' | sort); do
  if ! diff -u "$root/api/$f" "$tmp/$f"; then
    echo "check-generated: api/$f is out of date; run: go generate ./api/..." >&2; status=1
  fi
done
for f in $(cd "$root/api" && find . -name '*.pb.go' | sort); do
  [ -f "$tmp/$f" ] || { echo "check-generated: api/$f has no .proto" >&2; status=1; }
done
[ $status = 0 ] && echo "check-generated: generated code is up to date"
exit $status
