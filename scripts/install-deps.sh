#!/usr/bin/env bash
# Installs what ipvs-lab needs on a fresh Debian machine, and says what it installs;
# a no-op when all is present (idempotent). It never starts, stops or reconfigures a
# service of this machine, and never touches its network.
#
# - the lab's own User-Mode Linux kernel, built from Debian's kernel source
#   (scripts/build-uml-kernel.sh; 8 to 14 minutes on 2 cores the first time, cached after)
#   and what that build needs: gcc, make, flex, bison, bc, libelf-dev, xz-utils
# - iproute2, ipvsadm: independent readers used to cross-check the lab
# - nghttp2-client (h2load): the peer load generator for benchmarks
# - keepalived, nftables: real keepalived runs and blackhole faults
# - fonts-dejavu-core: the font the SVG charts are measured with
# - python3 with grpcio/grpcio-tools in a virtualenv (.venv): interop tests against a
#   gRPC stack not written here (Debian 12's system pip refuses installs, PEP 668)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "install-deps: $*" >&2; }

apt_packages=(iproute2 ipvsadm nghttp2-client keepalived nftables fonts-dejavu-core kmod
  gcc make flex bison bc libelf-dev libc6-dev xz-utils python3 python3-venv)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
    exit 77
  fi
  say "installing Debian packages: ${missing[*]}"
  # keepalived's package would enable and start its service: a policy-rc.d that
  # refuses (exit 101) keeps every service of this machine as it was. An existing
  # policy is left as it is.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# ipvs-lab install-deps: start no service while installing.\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$(trap -p EXIT)" ]; then
    rm -f "$policy"
    trap - EXIT
  fi
else
  say "Debian packages: all present"
fi

# Python with grpcio in the project's virtualenv (tests use .venv/bin/python3; the
# examples/greeter server and client, {python} in a scenario, compile hello.proto
# with grpcio-tools at start).
venv="$here/.venv"
if ! "$venv/bin/python3" -c 'import grpc, grpc_tools' 2>/dev/null; then
  say "creating $venv with grpcio and grpcio-tools"
  python3 -m venv "$venv"
  "$venv/bin/python3" -m pip install -q --disable-pip-version-check grpcio grpcio-tools
else
  say "python virtualenv $venv: grpcio present"
fi

# The lab's own UML kernel (cached by source version and config hash).
"$here/scripts/build-uml-kernel.sh"
