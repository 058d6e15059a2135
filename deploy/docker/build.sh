#!/usr/bin/env bash
# Builds the duomq image from the working tree, with no image registry:
# a static binary (CGO_ENABLED=0) copied into a FROM scratch image.
#
#   deploy/docker/build.sh [TAG]        # default tag: duomq:latest
#
# GO names the go command (default: go).
set -euo pipefail

tag=${1:-duomq:latest}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

(cd "$root" && CGO_ENABLED=0 "${GO:-go}" build -trimpath -ldflags='-s -w' -o "$ctx/duomq" ./cmd/duomq)
mkdir "$ctx/empty"
cp "$here/Dockerfile" "$ctx/Dockerfile"
docker build --quiet --tag "$tag" "$ctx"
