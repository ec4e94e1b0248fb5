#!/bin/sh
# Rewrites a recipe so that it runs on this host, as an ordinary user, next
# to the other recipes: see "Try a recipe on one host" in docs/recipes.md.
#
#   docs/recipes/try-local.sh RECIPE.toml ADDRESS > FILE.toml
#
# ADDRESS is the documentation address this relay plays (192.0.2.10 is the
# head the edge recipes send to). Its listeners and metrics, bound to
# 0.0.0.0 in the recipe, bind ADDRESS instead. Every documentation address
# (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) then moves into
# 127.0.0.0/8, which is all loopback on Linux: 192.0.2.X becomes 127.0.2.X,
# 198.51.100.X 127.0.100.X, 203.0.113.X 127.0.113.X. So every relay has an
# address of its own (no two collide on port 9514 or 514) and an edge finds
# its head where the recipe says. Port 514 becomes 5514 (no root needed);
# the queues and files go under ./try-<its loopback address>/ (so
# ./try-127.0.2.10/ for 192.0.2.10), certificates are read from ./try-tls/. TRY_NET=N uses 127.N.* instead of 127.0.*, for a second set
# of tries side by side.
set -eu

usage() {
	echo "usage: $0 RECIPE.toml ADDRESS > FILE.toml   (ADDRESS: a documentation address, e.g. 192.0.2.10)" >&2
	exit 2
}
[ $# -eq 2 ] || usage
recipe=$1
as=$2
net=${TRY_NET:-0}
case $as in
192.0.2.* | 198.51.100.* | 203.0.113.*) ;;
*) usage ;;
esac
case $net in
'' | *[!0-9]*) usage ;;
esac
[ "$net" -le 255 ] || usage
[ -r "$recipe" ] || { echo "$0: cannot read $recipe" >&2; exit 1; }

# Log paths become relative without "./": a path with fields may not hold
# a "." element.
sed \
	-e "s|0\.0\.0\.0:|$as:|g" \
	-e "s|head-1\.example\.net|192.0.2.10|g" \
	-e "s|\"/var/lib/relay\"|\"./try-$as/data\"|" \
	-e "s|/var/log/relay/|try-$as/log/|g" \
	-e "s|/etc/relay/tls/|./try-tls/|g" \
	-e "s|192\.0\.2\.|127.$net.2.|g" \
	-e "s|198\.51\.100\.|127.$net.100.|g" \
	-e "s|203\.0\.113\.|127.$net.113.|g" \
	-e "s|:514\"|:5514\"|g" \
	"$recipe"
