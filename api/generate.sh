#!/usr/bin/env bash
# Regenerates the Go code of every .proto under api/ with the generator
# versions pinned in go.mod (tool directives) and the protoc of Debian's
# protobuf-compiler package. Usage: api/generate.sh [OUTDIR] (default: api/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/api}
command -v protoc >/dev/null || { echo "generate.sh: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
bin=$(mktemp -d); trap 'rm -rf "$bin"' EXIT
(cd "$root" && go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc)
cd "$root/api"
for proto in $(find . -name '*.proto' | sort); do
  PATH="$bin:$PATH" protoc -I . \
    --go_out="$out" --go_opt=paths=source_relative \
    --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
    "$proto"
done
