#!/usr/bin/env bash
# Builds inkcast's libtailscale (a c-shared library over tsnet, tailnet/libtailscale)
# and the loopback test control server (tailnet/testcontrol), reusing earlier builds.
#
#   tailnet/build.sh [--force] [TARGET...]
#
# TARGET (default: host):
#   host     the library for this machine, and the test control server
#   amd64    build/tailnet/linux-amd64/libtailscale.so
#   armv7    build/tailnet/linux-armv7/libtailscale.so   (reMarkable 1 and 2; GOARM=7)
#   arm64    build/tailnet/linux-arm64/libtailscale.so   (reMarkable Paper Pro)
#   control  build/tailnet/linux-<host arch>/testcontrol
#   tablets  armv7 and arm64
#   all      everything
#
# A target is skipped when its output is newer than every input (tailnet/**, this
# script) and was made by the same Go and flags; --force rebuilds. Cross targets need
# Debian's cross compilers (arm-linux-gnueabihf-gcc, aarch64-linux-gnu-gcc); they are
# installed with apt-get when missing (sudo when not root). Each library's size is
# recorded in build/tailnet/sizes.tsv.
#
# Environment: GO (the go command; default: go on PATH, else /usr/local/go/bin/go),
# INKCAST_TAILNET_BUILD (output folder; default: <repo>/build/tailnet).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out_root="${INKCAST_TAILNET_BUILD:-$repo/build/tailnet}"

force=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    host|amd64|armv7|arm64|control) targets+=("$arg") ;;
    tablets) targets+=(armv7 arm64) ;;
    all) targets+=(host armv7 arm64) ;;
    *) echo "tailnet/build.sh: unknown target '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=(host)

GO="${GO:-}"
if [ -z "$GO" ]; then
  if command -v go >/dev/null 2>&1; then GO="$(command -v go)"
  elif [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go
  else echo "tailnet/build.sh: no Go toolchain (set GO=/path/to/go)" >&2; exit 3
  fi
fi
export GOTOOLCHAIN=local        # never fetch another toolchain
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
go_version="$("$GO" env GOVERSION)"
host_arch="$("$GO" env GOHOSTARCH)"
case "$host_arch" in amd64) host_dir=linux-amd64 ;; arm64) host_dir=linux-arm64 ;; arm) host_dir=linux-armv7 ;; *) host_dir="linux-$host_arch" ;; esac

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_cc() {  # ensure_cc COMPILER DEBIAN_PACKAGES...: a cross compiler that can build against libc
  local cc="$1"; shift
  cc_works() { printf '#include <stdint.h>\n#include <pthread.h>\nint main(void){return 0;}\n' \
    | "$cc" -x c -o /dev/null - >/dev/null 2>&1; }
  command -v "$cc" >/dev/null 2>&1 && cc_works && return 0
  echo "tailnet/build.sh: $cc missing or without its libc; installing Debian packages $*" >&2
  if ! as_root apt-get install -y --no-install-recommends "$@" >&2; then
    as_root apt-get update >&2
    as_root apt-get install -y --no-install-recommends "$@" >&2
  fi
  cc_works || { echo "tailnet/build.sh: $cc still cannot compile" >&2; return 1; }
}

# up_to_date OUTPUT STAMP_TEXT: the output exists, is newer than all inputs, same stamp.
up_to_date() {
  local output="$1" stamp="$2"
  [ "$force" -eq 0 ] || return 1
  [ -f "$output" ] && [ -f "$output.stamp" ] || return 1
  [ "$(cat "$output.stamp")" = "$stamp" ] || return 1
  [ -z "$(find "$here" -type f -newer "$output" -print -quit)" ]
}

record_size() {  # record_size TARGET FILE
  local sizes="$out_root/sizes.tsv" bytes
  bytes="$(stat -c %s "$2")"
  mkdir -p "$out_root"
  touch "$sizes"
  { grep -v "^$1	" "$sizes" || true; printf '%s\t%s\t%s\t%s\n' "$1" "$bytes" "$go_version" "$(date -u +%FT%TZ)"; } \
    > "$sizes.tmp" && mv "$sizes.tmp" "$sizes"
  awk -v t="$1" -v f="${2#"$repo"/}" -v b="$bytes" 'BEGIN { printf "tailnet/build.sh: %s: %s (%d bytes, %.1f MiB)\n", t, f, b, b / 1048576 }' >&2
}

build_lib() {  # build_lib TARGET_DIR GOARCH GOARM CC
  local dir="$out_root/$1" goarch="$2" goarm="$3" cc="$4"
  local output="$dir/libtailscale.so"
  local ldflags="-s -w" tags="netgo,osusergo"  # pure-Go resolver and user lookup: less of glibc
  local stamp="$go_version $goarch $goarm $cc c-shared $ldflags $tags"
  if up_to_date "$output" "$stamp"; then
    echo "tailnet/build.sh: $1: up to date (${output#"$repo"/})" >&2
    return 0
  fi
  if [ "$goarch" != "$host_arch" ]; then
    case "$goarch" in
      arm) ensure_cc "$cc" gcc-arm-linux-gnueabihf libc6-dev-armhf-cross ;;
      arm64) ensure_cc "$cc" gcc-aarch64-linux-gnu libc6-dev-arm64-cross ;;
    esac
  fi
  mkdir -p "$dir"
  local start=$SECONDS
  (cd "$here" && env CGO_ENABLED=1 GOOS=linux GOARCH="$goarch" ${goarm:+GOARM=$goarm} CC="$cc" \
    "$GO" build -buildmode=c-shared -trimpath -tags="$tags" -ldflags="$ldflags" -o "$output.tmp" ./libtailscale)
  mv "$output.tmp" "$output"
  rm -f "$output.tmp.h" "$output.h"  # cgo's generated header; tailscale.h is the API
  cp "$here/libtailscale/tailscale.h" "$dir/tailscale.h"
  echo "$stamp" > "$output.stamp"
  echo "tailnet/build.sh: $1: built in $((SECONDS - start)) s" >&2
  record_size "$1" "$output"
}

build_control() {
  local dir="$out_root/$host_dir" output="$out_root/$host_dir/testcontrol"
  local stamp="$go_version $host_arch testcontrol"
  if up_to_date "$output" "$stamp"; then
    echo "tailnet/build.sh: control: up to date (${output#"$repo"/})" >&2
    return 0
  fi
  mkdir -p "$dir"
  local start=$SECONDS
  (cd "$here" && CGO_ENABLED=0 "$GO" build -trimpath -o "$output.tmp" ./testcontrol)
  mv "$output.tmp" "$output"
  echo "$stamp" > "$output.stamp"
  echo "tailnet/build.sh: control: built in $((SECONDS - start)) s" >&2
}

for target in "${targets[@]}"; do
  case "$target" in
    host)
      case "$host_arch" in
        amd64) build_lib linux-amd64 amd64 "" "${CC:-gcc}" ;;
        arm64) build_lib linux-arm64 arm64 "" "${CC:-gcc}" ;;
        *) build_lib "$host_dir" "$host_arch" "" "${CC:-gcc}" ;;
      esac
      build_control ;;
    amd64) build_lib linux-amd64 amd64 "" "$([ "$host_arch" = amd64 ] && echo "${CC:-gcc}" || echo x86_64-linux-gnu-gcc)" ;;
    armv7) build_lib linux-armv7 arm 7 arm-linux-gnueabihf-gcc ;;
    arm64) build_lib linux-arm64 arm64 "" "$([ "$host_arch" = arm64 ] && echo "${CC:-gcc}" || echo aarch64-linux-gnu-gcc)" ;;
    control) build_control ;;
  esac
done
