#!/usr/bin/env bash
# Installs, from Debian's packages, the tools the tests use that Go modules
# cannot provide. Idempotent and quick when everything is present. Needs
# root (or sudo) and apt-get; without them it says what is missing.
set -u
need=()
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v promtool >/dev/null || need+=(prometheus)
# Partition tests run sites in network namespaces (ip) and cut links with
# nftables rules (nft).
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
# The controller's status page is tested end to end in headless Chromium.
command -v chromium >/dev/null || need+=(chromium)
[ ${#need[@]} = 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "setup: missing ${need[*]} and no apt-get here; install them by hand" >&2; exit 0
fi
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
echo "setup: installing ${need[*]}" >&2
$sudo apt-get update -qq >/dev/null 2>&1 || true
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || echo "setup: could not install ${need[*]}" >&2
exit 0
