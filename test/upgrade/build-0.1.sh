#!/usr/bin/env bash
# The library of actloom 0.1, for the upgrade test (t/090_upgrade.pl):
#
#   test/upgrade/build-0.1.sh DIR    builds DIR/actloom.so; prints its path
#
# It is built from the commit that released 0.1, which the first line of the
# frozen install script test/upgrade/actloom--0.1.sql names, so that the
# upgrade test's 0.1 database holds what the 0.1 code wrote (hashes, sealed
# values, keys), as a DBA's does.  It fails, saying why, when the commit is
# not in this clone's history or when the frozen script is not that commit's
# install script.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=$1
PG_CONFIG=${PG_CONFIG:-pg_config}
frozen=test/upgrade/actloom--0.1.sql

commit=$(sed -n '1s/.* of commit \([0-9a-f]\{7,40\}\) .*/\1/p' "$frozen")
if [ -z "$commit" ] || ! git cat-file -e "$commit^{commit}" 2>/dev/null; then
	echo "the commit of actloom 0.1 (${commit:-not named in $frozen}) is not in this clone's history" >&2
	exit 1
fi
rm -rf "$dir"
mkdir -p "$dir"
git archive "$commit" Makefile actloom.control extension shim | tar -x -C "$dir"
# Its Makefile assembled the install script from these fragments, in name order.
if ! tail -n +2 "$frozen" | cmp -s - <(LC_ALL=C; cat "$dir"/extension/sql/*.sql); then
	echo "$frozen is not the install script of commit $commit" >&2
	exit 1
fi
make -C "$dir" -s -j2 PG_CONFIG="$PG_CONFIG" actloom.so >&2
echo "$dir/actloom.so"
