#!/usr/bin/env bash
# Builds the lab's own User-Mode Linux kernel from Debian's kernel source package
# and caches it, so that the lab boots on every x86-64 host (Debian's packaged
# UML 6.1 and 6.12 panic on hosts whose XSAVE area is larger than 4 KiB, as with
# Intel AMX: "ptrace set fp regs failed, errno = 14").
#
#   source   linux-source-<series> at the version pinned in kernel/SOURCE_VERSION,
#            fetched by name with apt-get download through a private apt state
#            (the host's own sources and lists are never changed)
#   config   make ARCH=um defconfig + kernel/uml.config, every line verified
#   cache    ${IPVSLAB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ipvs-lab}/uml/<version>-<config hash>/
#            holding `linux` and `build.json`; `current` points at the newest build.
#            A second run with the same version and config builds nothing.
#
# When the archive no longer serves the pinned version, the newest version of the
# same series is taken and the build says so loudly: the cache key, build.json
# and every report carry the version that was really built, and `lab compare`
# warns when a baseline ran on another kernel.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pinned=$(tr -d ' \n' <"$here/kernel/SOURCE_VERSION")
series=$(echo "$pinned" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')
fragment="$here/kernel/uml.config"
cache="${IPVSLAB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ipvs-lab}"
uml="$cache/uml"
mkdir -p "$uml"
say() { echo "uml-kernel: $*" >&2; }

# One builder at a time; a second `make deps` waits for the first and then finds its build.
exec 9>"$uml/.lock"
flock 9

config_hash=$(sha256sum "$fragment" | cut -c1-12)

installed_for() { # version -> prints the cache dir if a verified build exists
  local dir="$uml/$1-$config_hash"
  [ -x "$dir/linux" ] && [ -f "$dir/build.json" ] && echo "$dir"
}
point_current() {
  ln -sfn "$(basename "$1")" "$uml/current.tmp" && mv -T "$uml/current.tmp" "$uml/current"
}

if dir=$(installed_for "$pinned"); then
  point_current "$dir"
  say "cached: $dir/linux (linux-source-$series $pinned, config $config_hash); nothing to build"
  exit 0
fi

# A private apt state: Debian's newer suites by name, lists kept in the cache.
apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial"
cat >"$apt_dir/sources.list" <<SOURCES
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
SOURCES
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$apt_dir/lists" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
say "reading the package lists of Debian sid and trixie-backports (private apt state in $apt_dir)"
apt-get -qq "${apt_opts[@]}" update

package="linux-source-$series"
version="$pinned"
if ! apt-cache "${apt_opts[@]}" madison "$package" | awk '{print $3}' | grep -qxF "$pinned"; then
  version=$(apt-cache "${apt_opts[@]}" madison "$package" | awk '{print $3}' | sort -V | tail -n1)
  if [ -z "$version" ]; then
    say "error: the archive serves no $package at all (pinned: $pinned)." \
      "Set kernel/SOURCE_VERSION to a served series, or point IPVSLAB_UML_KERNEL at a UML kernel with IPVS."
    exit 69
  fi
  say "WARNING: the archive no longer serves $package $pinned; building the newest of the series, $version." \
    "Reports will name this kernel; update kernel/SOURCE_VERSION and the baselines when it is good."
  if dir=$(installed_for "$version"); then
    point_current "$dir"
    say "cached: $dir/linux; nothing to build"
    exit 0
  fi
fi

work=$(mktemp -d "$uml/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
say "downloading $package $version"
(cd "$work" && apt-get -qq "${apt_opts[@]}" download "$package=$version")
dpkg-deb -x "$work"/"$package"_*.deb "$work/deb"
say "unpacking the source"
tar -xJf "$work/deb/usr/src/$package.tar.xz" -C "$work"
src="$work/$package"
log="$uml/build-$version-$config_hash.log"
say "configuring: make ARCH=um defconfig + kernel/uml.config"
make -s -C "$src" ARCH=um defconfig >"$log" 2>&1
"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$fragment" >>"$log" 2>&1
make -s -C "$src" ARCH=um olddefconfig >>"$log" 2>&1
dropped=()
while IFS= read -r line; do
  case "$line" in CONFIG_*=*) grep -qxF "$line" "$src/.config" || dropped+=("$line") ;; esac
done <"$fragment"
if [ ${#dropped[@]} -gt 0 ]; then
  say "error: kconfig dropped these lines of kernel/uml.config for $version: ${dropped[*]}." \
    "A dependency is missing from the fragment; see $log."
  exit 1
fi

jobs=$(nproc)
say "building linux $version for ARCH=um with $jobs jobs (8 to 14 minutes on 2 cores); log: $log"
# Progress: one line about every 30 s with the number of units compiled so far
# (CC and AS lines of the build log).
make -C "$src" ARCH=um -j"$jobs" linux >>"$log" 2>&1 &
make_pid=$!
while kill -0 "$make_pid" 2>/dev/null; do
  for _ in $(seq 30); do kill -0 "$make_pid" 2>/dev/null && sleep 1; done
  kill -0 "$make_pid" 2>/dev/null &&
    say "building: $(grep -cE '^  (CC|AS)  ' "$log") units compiled, $(($(date +%s) - start)) s"
done
set +e
wait "$make_pid"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  say "error: the kernel build failed (exit $status); the last lines of $log:"
  tail -n 20 "$log" >&2
  exit 1
fi

release=$(cat "$src/include/config/kernel.release")
dest="$uml/$version-$config_hash"
stage="$uml/.stage-$version-$config_hash"
rm -rf "$stage"
mkdir -p "$stage"
cp "$src/linux" "$stage/linux"
strip "$stage/linux" 2>/dev/null || true
cp "$src/.config" "$stage/config"
seconds=$(($(date +%s) - start))
cat >"$stage/build.json" <<JSON
{
  "source_package": "$package",
  "source_version": "$version",
  "pinned_version": "$pinned",
  "release": "$release",
  "config_sha256_12": "$config_hash",
  "built_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "build_seconds": $seconds
}
JSON
rm -rf "$dest"
mv "$stage" "$dest"
point_current "$dest"
say "built $dest/linux (release $release) in ${seconds} s"
