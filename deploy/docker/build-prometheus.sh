#!/usr/bin/env bash
# Builds the image of the Compose topology's `prometheus` profile with no
# image registry: a FROM scratch image around a static prometheus binary
# (the binary of a Prometheus release archive is static; a distribution's
# package usually is not, and cannot run in a scratch image).
#
#   deploy/docker/build-prometheus.sh PROMETHEUS_BINARY [TAG]   # default tag: duomq-prometheus:local
set -euo pipefail

bin=${1:?usage: build-prometheus.sh PROMETHEUS_BINARY [TAG]}
tag=${2:-duomq-prometheus:local}
here=$(cd "$(dirname "$0")" && pwd)

if command -v file >/dev/null && ! file -L "$bin" | grep -Eq 'statically linked|static-pie linked'; then
  echo "build-prometheus: $bin is dynamically linked: a FROM scratch image cannot run it" >&2
  exit 1
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/prometheus"
mkdir "$ctx/empty"
cp "$here/Dockerfile.prometheus" "$ctx/Dockerfile"
docker build --quiet --tag "$tag" "$ctx"
