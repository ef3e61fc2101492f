#!/usr/bin/env bash
# Installs the streamer on a reMarkable over SSH:  deploy/tablet/install.sh root@10.11.99.1
# The tablet needs Python 3.11+ with pip (e.g. from Toltec); the streamer runs from a venv there.
set -euo pipefail
target=${1:?usage: install.sh root@TABLET}
here=$(cd "$(dirname "$0")/../.." && pwd)
ssh "$target" 'mkdir -p /home/root/.local/inkcast /home/root/.config/inkcast'
tar -C "$here" --exclude .venv --exclude build --exclude .git -cf - . | ssh "$target" 'tar -C /home/root/.local/inkcast -xf -'
ssh "$target" 'cd /home/root/.local/inkcast && python3 -m venv .venv && .venv/bin/pip install --quiet . \
  && { [ -f /home/root/.config/inkcast/tablet.env ] || { cp deploy/tablet/tablet.env.example /home/root/.config/inkcast/tablet.env; chmod 600 /home/root/.config/inkcast/tablet.env; }; } \
  && cp deploy/tablet/inkcast-tablet.service /etc/systemd/system/ && systemctl daemon-reload'
echo "Now set INKCAST_DEVICE_TOKEN in /home/root/.config/inkcast/tablet.env on the tablet, then:"
echo "  ssh $target systemctl enable --now inkcast-tablet"
