#!/usr/bin/env bash
# Sets up a public Debian node as inkcast's cloud side: signaling behind Caddy (TLS), and coturn.
#   sudo deploy/cloud/setup.sh ink.example.org PUBLIC_IP PRIVATE_IP
# Run from a checkout. Open TCP 80/443, UDP+TCP 3478, TCP 5349 and UDP 49152-65535.
set -euo pipefail
domain=${1:?domain}; public_ip=${2:?public IP}; private_ip=${3:-}
here=$(cd "$(dirname "$0")/../.." && pwd)

apt-get install -y --no-install-recommends coturn caddy python3-venv
id inkcast >/dev/null 2>&1 || useradd --system --home /var/lib/inkcast --shell /usr/sbin/nologin inkcast
install -d -m 0750 -g inkcast /etc/inkcast

rsync -a --delete --exclude .venv --exclude build "$here/" /opt/inkcast/
python3 -m venv /opt/inkcast/.venv
/opt/inkcast/.venv/bin/pip install --quiet /opt/inkcast

secret=/etc/inkcast/turn-secret
if [ ! -s "$secret" ]; then
  (umask 037; openssl rand -hex 32 > "$secret")
fi
chgrp inkcast "$secret"; chmod 0640 "$secret"
usermod -a -G inkcast turnserver

cert_dir=/var/lib/caddy/.local/share/caddy/certificates/acme-v02.api.letsencrypt.org-directory/$domain
/opt/inkcast/.venv/bin/inkcast turn-config --public-ip "$public_ip" ${private_ip:+--private-ip "$private_ip"} \
  --realm "$domain" --secret-file "$secret" --cert "$cert_dir/$domain.crt" --pkey "$cert_dir/$domain.key" \
  --group turnserver -o /etc/turnserver.conf
sed -i 's/^#\?TURNSERVER_ENABLED=.*/TURNSERVER_ENABLED=1/' /etc/default/coturn 2>/dev/null || true

[ -f /etc/inkcast/signal.env ] || sed "s/ink.example.org/$domain/g" "$here/deploy/cloud/signal.env.example" > /etc/inkcast/signal.env
chgrp inkcast /etc/inkcast/signal.env; chmod 0640 /etc/inkcast/signal.env
install -m 0644 "$here/deploy/cloud/inkcast-signal.service" /etc/systemd/system/
INKCAST_DOMAIN=$domain envsubst < "$here/deploy/cloud/Caddyfile" > /etc/caddy/Caddyfile 2>/dev/null \
  || sed "s/{\$INKCAST_DOMAIN}/$domain/" "$here/deploy/cloud/Caddyfile" > /etc/caddy/Caddyfile

systemctl daemon-reload
systemctl enable --now caddy inkcast-signal
# coturn needs Caddy's certificate: the first start may come before it exists; restart once it does.
systemctl restart coturn || true
echo "signaling: https://$domain  (journalctl -u inkcast-signal shows the device token on first start)"
