#!/usr/bin/env bash
# Give every Redis user of deploy/redis/users.acl its own random password.
#
#   deploy/redis/set-passwords.sh [--exporter-addr URL] [--force] DIR
#
# deploy/redis/users.acl holds the users and their rights with the SHA-256
# hashes of the *test* passwords (tests/integration/test_deploy_redis.py):
# never run Redis with it as it is. This script writes into DIR (created
# mode 0700):
#
#   users.acl           the same rules with the hashes of new random passwords
#                       (for redis-server --aclfile)
#   NAME.pass           each user's password, one line (admin, sensor, exporter,
#                       alerts, top): sensor.pass goes to /etc/relaywatch/redis.pass,
#                       alerts.pass and top.pass to whoever runs relaywatch-alerts
#                       and relaywatch-top (--redis-password-file)
#   exporter-pwd.json   the exporter's password in redis_exporter 1.45's
#                       --redis.password-file format, {"URL": "password"}, for
#                       URL = its --redis.addr [redis://redis:6379, the compose stack]
#   grafana-admin.pass  Grafana's admin password (GF_SECURITY_ADMIN_PASSWORD__FILE)
#
# Passwords that already exist in DIR are kept (a rerun changes nothing, so
# the running stack keeps working); --force makes new ones. The files are
# mode 0644 inside the 0700 directory: other host users cannot reach them,
# while the containers (which run as their own users) can read what compose
# bind-mounts. Uses coreutils and sed only.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
template="$here/users.acl"
addr="redis://redis:6379"
force=0
dir=""
while (($#)); do
  case "$1" in
    --exporter-addr) addr="${2:?--exporter-addr needs a URL}"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "set-passwords: unknown option $1" >&2; exit 2 ;;
    *) [[ -z "$dir" ]] || { echo "set-passwords: one DIR only" >&2; exit 2; }
       dir="$1"; shift ;;
  esac
done
[[ -n "$dir" ]] || { echo "usage: set-passwords.sh [--exporter-addr URL] [--force] DIR" >&2; exit 2; }
# the address is a JSON key in exporter-pwd.json: only what a host and port
# are made of, so that it needs no escaping
re='^redis://[][A-Za-z0-9._:-]+$'
[[ "$addr" =~ $re ]] ||
  { echo "set-passwords: --exporter-addr must be redis://HOST:PORT" >&2; exit 2; }

umask 077
mkdir -p "$dir"
chmod 0700 "$dir"

# a password: 32 random bytes as 64 hex digits (safe in URLs, JSON and shells)
newpw() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

password() {               # password NAME: the kept or a new password of NAME
  local f="$dir/$1.pass"
  if ((force)) || [[ ! -s "$f" ]]; then
    newpw > "$f.tmp"
    echo >> "$f.tmp"
    chmod 0644 "$f.tmp"
    mv "$f.tmp" "$f"
  fi
  head -n1 "$f"
}

acl="$dir/users.acl.tmp"
cp "$template" "$acl"
users=$(sed -n -E 's/^user ([A-Za-z0-9_-]+) .*#[0-9a-f]{64}.*/\1/p' "$template")
[[ -n "$users" ]] || { echo "set-passwords: no user with a #hash in $template" >&2; exit 1; }
for u in $users; do
  hash=$(printf '%s' "$(password "$u")" | sha256sum | cut -d' ' -f1)
  sed -i -E "/^user $u /s/#[0-9a-f]{64}/#$hash/" "$acl"
done
chmod 0644 "$acl"
mv "$acl" "$dir/users.acl"

exporter=$(head -n1 "$dir/exporter.pass")
printf '{"%s": "%s"}\n' "$addr" "$exporter" > "$dir/exporter-pwd.json.tmp"
chmod 0644 "$dir/exporter-pwd.json.tmp"
mv "$dir/exporter-pwd.json.tmp" "$dir/exporter-pwd.json"

password grafana-admin > /dev/null

echo "set-passwords: users.acl, exporter-pwd.json and the passwords of: $(echo $users) grafana-admin in $dir"
