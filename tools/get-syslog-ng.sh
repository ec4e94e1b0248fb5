#!/usr/bin/env bash
# Unpacks Debian's syslog-ng and its load generator loggen into DIR without
# installing them: the syslog-ng package conflicts with rsyslog, which the
# tests need installed. relay-bench finds them with -syslog-ng DIR or
# RELAY_BENCH_SYSLOG_NG=DIR (it sets SYSLOGNG_PREFIX and LD_LIBRARY_PATH
# itself). To run them by hand:
#   export SYSLOGNG_PREFIX=DIR/usr
#   export LD_LIBRARY_PATH=DIR/lib/<triplet>:DIR/usr/lib/<triplet>:DIR/usr/lib/syslog-ng
#   DIR/usr/sbin/syslog-ng -F -f CONF -R PERSIST -p PIDFILE -c CTLFILE   (absolute paths)
#   DIR/usr/bin/loggen -i -S (TCP) | -i -D (UDP) | -U (TLS) ...   (one transport at a time)
# usage: tools/get-syslog-ng.sh DIR     (prints DIR when done)
set -euo pipefail
dir=${1:?usage: $0 DIR}
if [ -x "$dir/usr/sbin/syslog-ng" ] && [ -x "$dir/usr/bin/loggen" ]; then
	echo "$dir"
	exit 0
fi
if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download syslog-ng-core libivykis0 libnet1 libpcre3 libwrap0 >/dev/null)
mkdir -p "$dir"
for f in "$tmp"/*.deb; do dpkg -x "$f" "$dir"; done
test -x "$dir/usr/bin/loggen" || { echo "$0: no loggen in the unpacked packages" >&2; exit 1; }
echo "$dir"
