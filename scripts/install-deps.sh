#!/usr/bin/env bash
# Installs what ipvs-lab needs on a fresh Debian machine; a no-op when all is present.
# - user-mode-linux: a kernel with real IPVS modules, for hosts whose kernel has none
# - iproute2, ipvsadm: independent readers used to cross-check the lab
# - nghttp2-client (h2load): the peer load generator for benchmarks
# - keepalived, nftables: real keepalived runs and blackhole faults
# - fonts-dejavu-core: the font the SVG charts are measured with
# - python grpcio/grpcio-tools: interop tests against a gRPC stack not written here
set -euo pipefail

apt_packages=(user-mode-linux iproute2 ipvsadm nghttp2-client keepalived nftables fonts-dejavu-core kmod)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 77
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# keepalived's package may start a service on machines with an init system;
# the lab runs its own keepalived inside namespaces only.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet keepalived 2>/dev/null; then
  systemctl stop keepalived || true
fi

if ! python3 -c 'import grpc, grpc_tools' 2>/dev/null; then
  echo "install-deps: installing python grpcio grpcio-tools" >&2
  python3 -m pip install -q grpcio grpcio-tools
fi
