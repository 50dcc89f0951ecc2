#!/usr/bin/env bash
# Runs the real `keystone-manage db_sync` (from the interop venv) against SQLite, PostgreSQL and
# MariaDB and dumps the resulting schemas, alembic_version rows and the rows `bootstrap` inserts.
# Reference material only. Usage: scripts/keystone-schema-dump.sh [OUTDIR]   (default /tmp/keystone-schema)
# Needs: PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and MariaDB on 127.0.0.1:3306 (root, no password).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${BATON_VENV:-$root/.venv}
out=${1:-/tmp/keystone-schema}
work=$(mktemp -d /tmp/ks-schema-work.XXXXXX)
db=ks_schema_dump_$$
mkdir -p "$out" "$work/keys" "$work/cred"
cleanup() {
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  mysql -h 127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

conf() {  # conf NAME CONNECTION
  cat > "$work/$1.conf" <<CONF
[DEFAULT]
log_file = $work/$1.log
[database]
connection = $2
[fernet_tokens]
key_repository = $work/keys
[fernet_receipts]
key_repository = $work/keys
[credential]
key_repository = $work/cred
CONF
}
km() { timeout 300 "$venv/bin/keystone-manage" --config-file "$work/$1.conf" "${@:2}"; }

# (a) SQLite
conf sqlite "sqlite:///$work/ks.db"
km sqlite db_sync
sqlite3 "$work/ks.db" .schema > "$out/sqlite.sql"

# (b) PostgreSQL
psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
conf pg "postgresql+psycopg2://postgres@127.0.0.1:5432/$db"
km pg db_sync
pg_dump -h 127.0.0.1 -U postgres --schema-only --no-owner "$db" > "$out/postgres.sql"

# (c) MariaDB
mysql -h 127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db CHARACTER SET utf8mb4"
conf my "mysql+pymysql://root@127.0.0.1:3306/$db?charset=utf8mb4"
km my db_sync
mysqldump -h 127.0.0.1 -uroot --no-data --skip-comments "$db" > "$out/mysql.sql"

{
  echo "# alembic_version / migrate_version rows after db_sync"
  echo "## sqlite"
  sqlite3 "$work/ks.db" "SELECT * FROM alembic_version;"
  sqlite3 "$work/ks.db" "SELECT name FROM sqlite_master WHERE name='migrate_version';" | sed 's/^/migrate_version table present: /'
  echo "## postgres"
  psql -At -h 127.0.0.1 -U postgres -d "$db" -c "SELECT * FROM alembic_version"
  psql -At -h 127.0.0.1 -U postgres -d "$db" -c "SELECT to_regclass('migrate_version')" | sed 's/^/migrate_version regclass: /'
  echo "## mysql"
  mysql -N -h 127.0.0.1 -uroot "$db" -e "SELECT * FROM alembic_version"
  mysql -N -h 127.0.0.1 -uroot "$db" -e "SHOW TABLES LIKE 'migrate_version'" | sed 's/^/migrate_version table present: /'
  echo "## table counts (excluding alembic_version)"
  echo "sqlite:   $(sqlite3 "$work/ks.db" "SELECT count(*) FROM sqlite_master WHERE type='table' AND name<>'alembic_version' AND name NOT LIKE 'sqlite_%'")"
  echo "postgres: $(psql -At -h 127.0.0.1 -U postgres -d "$db" -c "SELECT count(*) FROM pg_tables WHERE schemaname='public' AND tablename<>'alembic_version'")"
  echo "mysql:    $(mysql -N -h 127.0.0.1 -uroot -e "SELECT count(*) FROM information_schema.tables WHERE table_schema='$db' AND table_name<>'alembic_version'")"
  echo "## alembic heads shipped by keystone (versions/EXPAND_HEAD, versions/CONTRACT_HEAD)"
  v=$("$venv/bin/python" -c 'import os,keystone.common.sql.migrations as m; print(os.path.join(os.path.dirname(m.__file__),"versions"))' 2>/dev/null)
  echo "expand:   $(cat "$v/EXPAND_HEAD")"
  echo "contract: $(cat "$v/CONTRACT_HEAD")"
  echo "## revision chain (revision <- down_revision [branch_labels]  file)"
  for f in $(cd "$v" && find . -name '*.py' -not -path '*__pycache__*' | sort); do
    r=$(sed -n "s/^revision = '\(.*\)'/\1/p" "$v/$f"); d=$(sed -n "s/^down_revision = \(.*\)/\1/p" "$v/$f")
    b=$(sed -n "s/^branch_labels = \(.*\)/\1/p" "$v/$f"); echo "$r <- $d ${b:-}  $f"
  done
  echo "## keystone-manage db_version (sqlite)"
  km sqlite db_version 2>/dev/null || true
} > "$out/alembic_version.txt"

# bootstrap rows (sqlite)
km sqlite fernet_setup --keystone-user root --keystone-group root
km sqlite bootstrap --bootstrap-password x --bootstrap-username admin \
  --bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-service-name keystone \
  --bootstrap-region-id RegionOne --bootstrap-public-url http://127.0.0.1:5000/v3
{
  echo "# rows inserted by: keystone-manage db_sync && keystone-manage bootstrap --bootstrap-password x"
  echo "#   --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin"
  echo "#   --bootstrap-service-name keystone --bootstrap-region-id RegionOne --bootstrap-public-url http://127.0.0.1:5000/v3"
  echo "# (sqlite; non-empty tables only; alembic_version included)"
  for t in $(sqlite3 "$work/ks.db" "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"); do
    n=$(sqlite3 "$work/ks.db" "SELECT count(*) FROM \"$t\"")
    [ "$n" = 0 ] && continue
    echo
    echo "## $t ($n rows)"
    sqlite3 -header -separator ' | ' -nullvalue NULL "$work/ks.db" "SELECT * FROM \"$t\""
  done
} > "$out/bootstrap_rows.txt"
echo "wrote $out"
