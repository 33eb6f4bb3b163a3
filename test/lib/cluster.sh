# Throwaway PostgreSQL clusters for tests and the demo.
#
# PostgreSQL refuses to run as root, so when we are root the cluster belongs
# to the "postgres" OS user.  Clusters listen on a private socket directory
# only (no TCP unless asked), on a port of their own.
#
#   cluster_init DIR           initdb into DIR/data, unless it exists
#   cluster_start DIR PORT     start it; sockets in DIR/sock
#   cluster_stop DIR           stop it, fast; harmless when not running
#   as_pg CMD...               run CMD as the cluster's OS user
#   keyring_create FILE        a master key ring with one fresh key, unless
#                              FILE exists

PG_CONFIG=${PG_CONFIG:-pg_config}
PG_BINDIR=$("$PG_CONFIG" --bindir)

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

cluster_init() {
	local dir=$1
	mkdir -p "$dir/sock"
	[ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_pg "$PG_BINDIR/initdb" -D "$dir/data" -A trust -U postgres \
			--no-instructions -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; return 1; }
	fi
}

cluster_start() {
	local dir=$1 port=$2
	shift 2
	as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-p $port -k $dir/sock -c listen_addresses='' -c shared_preload_libraries=actloom $*" \
		start >/dev/null || { tail -n 20 "$dir/server.log" >&2; return 1; }
}

cluster_stop() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] || return 0
	as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# A port nobody listens on, in a range away from the usual ones.
free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((40000 + RANDOM % 20000))
		if ! ss -Hltn "sport = :$port" 2>/dev/null | grep -q . &&
			[ ! -e "/tmp/.s.PGSQL.$port" ]; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

# A master key ring (see extension/keyring.c for the format) with one fresh
# 256-bit key, id 1, active: mode 0600, owned by the cluster's OS user, so
# that the server accepts it.  An existing file is left alone, keys and all.
keyring_create() {
	local file=$1
	[ -e "$file" ] && return 0
	(
		umask 077
		{
			echo "# actloom master key ring: \"key <id> <64 hex digits>\" lines and one \"active <id>\"."
			echo "# Keep it outside the data directory, mode 0600; losing it loses every sealed value."
			echo "key 1 $(openssl rand -hex 32)"
			echo "active 1"
		} >"$file.tmp" && mv "$file.tmp" "$file"
	) || return 1
	[ "$(id -u)" -eq 0 ] && chown postgres: "$file"
	return 0
}
