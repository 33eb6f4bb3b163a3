#!/bin/sh
# Installs the Debian packages named in $DEBIAN_PACKAGES that are missing.
# As root it runs apt-get; otherwise it prints the command to run and fails.
set -eu

missing=""
for pkg in $DEBIAN_PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $pkg" ;;
	esac
done

# A private copy of PostgreSQL (see PGROOT in the Makefile).  Its binaries
# find their share and library directories relative to themselves.
make_pgroot() {
	[ -n "${PGROOT:-}" ] || return 0
	[ -x "$PGROOT/usr/lib/postgresql/15/bin/pg_config" ] && return 0
	for d in usr/lib/postgresql/15 usr/share/postgresql/15 usr/include/postgresql; do
		mkdir -p "$PGROOT/$(dirname $d)"
		cp -a "/$d" "$PGROOT/$(dirname $d)/"
	done
	chmod 755 "$PGROOT"
	echo "made a private PostgreSQL in $PGROOT"
}

if [ -z "$missing" ]; then
	make_pgroot
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "actloom needs these Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install -y$missing" >&2
	exit 1
fi

echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
make_pgroot
