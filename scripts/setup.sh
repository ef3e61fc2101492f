#!/usr/bin/env bash
# Sets this checkout up on a fresh machine; safe to run again (it skips what is done).
#   scripts/setup.sh          Python environment for the demo (.venv)
#   scripts/setup.sh --test   also what the tests drive: Chromium, coturn, the tailnet build
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y --no-install-recommends "${missing[@]}" \
    || { as_root apt-get update && as_root apt-get install -y --no-install-recommends "${missing[@]}"; }
}

python=""
for candidate in python3 python3.11 python3.12 python3.13; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=$candidate; break
  fi
done
[ -n "$python" ] || { echo "inkcast needs Python 3.11 or newer" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $python"
  "$python" -m venv .venv || { apt_install python3-venv && "$python" -m venv .venv; }
fi

extras=""
[ $want_test -eq 1 ] && extras="[test]"
stamp=".venv/.installed$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing inkcast$extras into .venv"
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e ".$extras"
  touch "$stamp"
fi

if [ $want_test -eq 1 ]; then
  apt_install chromium coturn openssl
  if [ -x tailnet/build.sh ]; then
    say "building libtailscale and the local tailnet control server (reused when up to date)"
    bash tailnet/build.sh host || echo "warning: the tailnet build failed; tailnet tests will skip and say why" >&2
  fi
fi
