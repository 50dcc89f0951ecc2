# Sourced by scripts/test-all.sh: makes sure PostgreSQL, MariaDB, Redis and memcached answer on
# loopback for the tests, and exports where (BATON_TEST_POSTGRES_URL, BATON_TEST_MYSQL_URL,
# BATON_TEST_REDIS_URL, BATON_TEST_MEMCACHED_URL as host:port).
#
# A server already answering on its standard port (5432, 3306, 6379, 11211) is used as it is. Otherwise
# a throwaway instance is started from Debian's packages (installed when missing) on a free
# loopback port, in a temporary directory removed on exit. BATON_SERVICES=throwaway starts
# throwaway instances even when the standard ones answer (to try this path on any machine).
# Every choice is printed.

baton_services_dir=""
baton_services_cleanup() {
  [ -n "$baton_services_dir" ] || return 0
  if [ -f "$baton_services_dir/pg/postmaster.pid" ]; then
    runuser -u postgres -- "$(baton_pg_bin)/pg_ctl" -D "$baton_services_dir/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  for pidfile in "$baton_services_dir"/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 0.5
  rm -rf "$baton_services_dir"
}

baton_port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

baton_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

baton_wait_port() {
  local port=$1 what=$2 i
  for i in $(seq 1 100); do
    baton_port_answers "$port" && return 0
    sleep 0.2
  done
  echo "$what did not start on 127.0.0.1:$port" >&2
  return 1
}

baton_apt_install() {
  if [ -z "${baton_apt_updated:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    baton_apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

baton_pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

baton_services_tmp() {
  if [ -z "$baton_services_dir" ]; then
    baton_services_dir=$(mktemp -d /tmp/baton-services.XXXXXX)
    chmod 755 "$baton_services_dir"
    trap baton_services_cleanup EXIT
  fi
}

baton_start_postgres() {
  [ -n "$(baton_pg_bin)" ] || baton_apt_install postgresql
  baton_services_tmp
  local port bin dir=$baton_services_dir/pg
  port=$(baton_free_port)
  bin=$(baton_pg_bin)
  mkdir -p "$dir" && chown postgres "$dir"
  runuser -u postgres -- "$bin/initdb" -D "$dir" -U postgres --auth=trust >/dev/null
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  baton_wait_port "$port" PostgreSQL
  export BATON_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port"
  echo "PostgreSQL: started a throwaway server on 127.0.0.1:$port"
}

baton_start_mariadb() {
  command -v mariadbd >/dev/null || baton_apt_install mariadb-server
  baton_services_tmp
  local port dir=$baton_services_dir/mariadb
  port=$(baton_free_port)
  mkdir -p "$dir"
  # --no-defaults: the machine's my.cnf names another user and log file.
  mariadb-install-db --no-defaults --user=root --datadir="$dir/data" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
    || { cat "$dir/install.log" >&2; return 1; }
  mariadbd --no-defaults --user=root --datadir="$dir/data" --port="$port" --bind-address=127.0.0.1 \
    --socket="$dir/sock" --pid-file="$dir/pid" --skip-name-resolve --innodb-flush-log-at-trx-commit=0 \
    >"$dir/log" 2>&1 &
  echo $! >"$baton_services_dir/mariadb.pid"
  baton_wait_port "$port" MariaDB
  mariadb --no-defaults --socket="$dir/sock" -uroot -e "CREATE DATABASE IF NOT EXISTS test"
  export BATON_TEST_MYSQL_URL="mysql+pymysql://root@127.0.0.1:$port"
  echo "MariaDB: started a throwaway server on 127.0.0.1:$port"
}

baton_start_redis() {
  command -v redis-server >/dev/null || baton_apt_install redis-server
  baton_services_tmp
  local port
  port=$(baton_free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "$baton_services_dir/redis.pid" --logfile "$baton_services_dir/redis.log" >/dev/null
  baton_wait_port "$port" Redis
  export BATON_TEST_REDIS_URL="redis://127.0.0.1:$port/"
  echo "Redis: started a throwaway server on 127.0.0.1:$port"
}

baton_start_memcached() {
  command -v memcached >/dev/null || baton_apt_install memcached
  baton_services_tmp
  local port
  port=$(baton_free_port)
  memcached -l 127.0.0.1 -p "$port" -U 0 -m 64 -u root -d -P "$baton_services_dir/memcached.pid"
  baton_wait_port "$port" memcached
  export BATON_TEST_MEMCACHED_URL="127.0.0.1:$port"
  echo "memcached: started a throwaway server on 127.0.0.1:$port"
}

# One server: the URL already given in $var, else the one answering on its standard port, else a
# throwaway one.
baton_service() {
  local name=$1 var=$2 port=$3 start=$4
  if [ -n "${!var:-}" ]; then
    echo "$name: ${!var} ($var)"
  elif [ "${BATON_SERVICES:-}" != throwaway ] && baton_port_answers "$port"; then
    echo "$name: using the server running on 127.0.0.1:$port"
  else
    "$start"
  fi
}

baton_services() {
  baton_service PostgreSQL BATON_TEST_POSTGRES_URL 5432 baton_start_postgres
  baton_service MariaDB BATON_TEST_MYSQL_URL 3306 baton_start_mariadb
  baton_service Redis BATON_TEST_REDIS_URL 6379 baton_start_redis
  baton_service memcached BATON_TEST_MEMCACHED_URL 11211 baton_start_memcached
  # The tests start their own memcached when this is unset; point them at the running one.
  export BATON_TEST_MEMCACHED_URL=${BATON_TEST_MEMCACHED_URL:-127.0.0.1:11211}
}
