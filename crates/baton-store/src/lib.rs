//! Storage of the identity data in Keystone's own SQL schema, over SQLite (the embedded default),
//! PostgreSQL and MariaDB/MySQL.
//!
//! The tables are Keystone's (`project` with `is_domain` and the root-domain row, `user` /
//! `local_user` / `password`, `role`, `assignment`, `system_assignment`, `service` / `endpoint` /
//! `region`, `revocation_event`, ...), created at Keystone's alembic heads by [`Store::db_sync`], so
//! that Baton and Keystone can serve the same database. Queries are written once with `?`
//! placeholders and `"quoted"` identifiers and adapted per dialect at run time (sqlx runtime
//! queries: no database is needed at compile time).
//!
//! Beside Keystone's schema Baton keeps its own tables (`baton_*`: the change feed, shared keys,
//! nodes) and a few extra indexes on Keystone's tables so that no request reads a table that
//! grows with the cloud; [`Store::explain`] shows how the database would run a statement.
//!
//! SQLite writes go through a single-connection pool with `BEGIN IMMEDIATE`, so concurrent writers
//! in this process queue instead of failing with "database is locked"; other processes are waited
//! for through `busy_timeout`.

mod app_cred;
mod assignment;
mod bootstrap;
mod catalog;
mod change;
mod credential;
mod domain_config;
pub use domain_config::DomainConfigOption;
mod endpoint_filter;
mod federation;
pub use federation::{FederationProtocol, IdentityProvider, Mapping, ServiceProvider};
mod fleet;
mod group;
pub use endpoint_filter::{EndpointFilterRows, EndpointGroup};
mod identity;
pub use identity::FailedLogins;
mod limit;
pub use limit::{Limit, LimitRefusal, NewLimit, RegisteredLimit};
mod model;
mod oauth1;
pub use oauth1::{AccessToken, Consumer, RequestToken};
mod plan;
pub use plan::PlanStep;
mod policy;
pub use policy::{Policy, PolicyAssociation};
mod resource;
mod revoke;
mod schema;
mod trust;
mod url;

pub use app_cred::{AccessRule, ApplicationCredential};
pub use bootstrap::{BootstrapReport, BootstrapSpec};
pub use catalog::{RegionDelete, RegionUpdate};
pub use change::{ChangeListener, ChangeMark, CHANGE_CHANNEL};
pub use credential::{CredentialFilter, CredentialRow};
pub use fleet::{KeySetRow, NodeRow};
pub use model::*;
pub use resource::ProjectColumn;
pub use schema::{SyncOutcome, ALEMBIC_HEADS};
pub use trust::{Trust, TrustFilter, TrustUse};
pub use url::{parse_connection, DatabaseUrl, Dialect};

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// How long a request waits for a PostgreSQL or MariaDB connection (including connecting)
/// before it fails: a database that is down or out of reach then costs a request 1.5 s and a
/// 503, not a hang.
const SERVER_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Keystone's sentinel `domain_id` of global roles.
pub const NULL_DOMAIN_ID: &str = "<<null>>";
/// Keystone's root of the domain tree: the `project` row every domain points to.
pub const ROOT_DOMAIN_ID: &str = "<<keystone.domain.root>>";

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `[database] connection` is not a URL Baton can use.
    #[error("invalid [database] connection: {0}")]
    InvalidUrl(String),
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema, or a row in it, is not what Baton serves; or schema work could not take its
    /// lock.
    #[error("{0}")]
    Schema(String),
    /// No row has that id.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What was looked for (`user`, `project`, `role`, ...).
        kind: &'static str,
        /// The id that matched no row.
        id: String,
    },
    /// A name already taken in its domain, or a row that exists already.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl StoreError {
    /// The database is down, restarting or out of reach (not a wrong request): the caller
    /// may retry, so the API answers 503, not 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Database(e) if database_unavailable(e))
    }

    /// The database cannot hold or compare a text the request carried: PostgreSQL refuses a
    /// NUL character (SQLSTATE 22021), MariaDB a character outside a column's character set
    /// (error 1366, "Incorrect string value", e.g. 4-byte UTF-8 in a `utf8mb3` table). The request is at fault,
    /// so the API answers 400, not 500.
    pub fn is_unstorable_text(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                db.code().as_deref() == Some("22021")
                    || db.message().starts_with("Incorrect string value")
            }
            _ => false,
        }
    }
}

/// Errors that say the database is down, restarting or out of reach (not that the request is
/// wrong): the client may retry, so they are 503s, not 500s.
fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                return sqlite_unavailable(db.code().as_deref().unwrap_or_default());
            }
            let code = db.code().unwrap_or_default();
            // SQLSTATEs: class 08 (connection; MySQL's 08S01 also for a Galera node not
            // ready), 40001 / 40P01 (serialization failure, deadlock: how MariaDB Galera
            // reports a certification conflict, which succeeds when retried), 57P01-57P03
            // (PostgreSQL shutting down, cannot connect now), 53300 (too many connections),
            // 55000 (a database not accepting connections). The numbers are MySQL error codes
            // some drivers report instead.
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "40001"
                        | "40P01"
                        | "57P01"
                        | "57P02"
                        | "57P03"
                        | "53300"
                        | "55000"
                        | "1040"
                        | "1053"
                        | "1205"
                        | "2002"
                        | "2003"
                        | "2006"
                        | "2013"
                        | "1047"
                        | "1180"
                        | "08S01"
                )
        }
        _ => false,
    }
}

/// SQLite's (extended) result codes that mean the disk, not the request: SQLITE_FULL (13, the
/// disk or the file's size limit is full) and the SQLITE_IOERR family (10 in the low byte).
/// The write is rolled back and the file stays sound, so the client may retry once space
/// returns: 503, not 500.
fn sqlite_unavailable(code: &str) -> bool {
    code.parse::<i32>().is_ok_and(|c| c == 13 || c & 0xff == 10)
}

/// What store operations return.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A connection to the identity database. Cheap to clone (the server's state is cloned
/// several times per request): pools and URL are shared.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    url: std::sync::Arc<DatabaseUrl>,
    /// Old passwords kept when one is replaced (see [`Store::set_password_history`]).
    password_history: usize,
    /// `[security_compliance] disable_user_account_days_inactive` (see
    /// [`Store::set_user_inactivity_limit`]).
    user_inactivity_days: Option<u32>,
}

#[derive(Clone)]
enum Backend {
    /// Readers share a pool; every writer goes through the one connection of `write`.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// Runs `$body` once per backend with `$pool` bound to that backend's pool (the write pool for
/// SQLite when `$mode` is `write`) and `$q` bound to a function adapting query text to the dialect.
macro_rules! dispatch {
    ($store:expr, $mode:ident, |$pool:ident, $q:ident| $body:expr) => {{
        #[allow(unused_imports)]
        use sqlx::Row as _;
        match &$store.backend {
            $crate::Backend::Sqlite { read, write } => {
                let _ = (read, write);
                let $pool = $crate::dispatch!(@pick $mode, read, write);
                let $q = $crate::sql_sqlite;
                $body
            }
            $crate::Backend::Postgres(p) => {
                let $pool = p;
                let $q = $crate::sql_postgres;
                $body
            }
            $crate::Backend::MySql(p) => {
                let $pool = p;
                let $q = $crate::sql_mysql;
                $body
            }
        }
    }};
    (@pick read, $r:ident, $w:ident) => { $r };
    (@pick write, $r:ident, $w:ident) => { $w };
}
pub(crate) use dispatch;

/// An integer column as `i64`: SQLite reads `INTEGER` as 64 bits, PostgreSQL and MariaDB
/// Keystone's `Integer` columns as 32.
macro_rules! int_of {
    ($row:expr, $col:expr) => {
        $row.try_get::<i64, _>($col)
            .or_else(|_| $row.try_get::<i32, _>($col).map(i64::from))?
    };
}
pub(crate) use int_of;

/// Begins a write transaction; on SQLite it takes the write lock at once (`BEGIN IMMEDIATE`) so a
/// transaction never has to upgrade a read lock, which is where "database is locked" comes from.
macro_rules! begin_write {
    ($pool:expr) => {
        $crate::begin_tx($pool).await?
    };
}
pub(crate) use begin_write;

pub(crate) trait BeginTx: Sized {
    type Db: sqlx::Database;
    fn begin_tx(
        &self,
    ) -> impl std::future::Future<Output = sqlx::Result<sqlx::Transaction<'static, Self::Db>>> + Send;
}

impl BeginTx for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_tx(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        match self.begin_with("BEGIN IMMEDIATE").await {
            // SQLite rolls a transaction back by itself when a write fails with SQLITE_FULL
            // or an I/O error; sqlx's ROLLBACK on drop then fails and it keeps counting an
            // open transaction, so the (only) write connection would refuse every later
            // BEGIN. Replace that connection: the next write works once the disk does.
            Err(sqlx::Error::InvalidSavePointStatement) => {
                tracing::warn!(
                    "replacing the SQLite write connection left in a failed transaction"
                );
                self.acquire().await?.close().await?;
                self.begin_with("BEGIN IMMEDIATE").await
            }
            other => other,
        }
    }
}
impl BeginTx for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_tx(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.begin().await
    }
}
impl BeginTx for MySqlPool {
    type Db = sqlx::MySql;
    async fn begin_tx(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::MySql>> {
        self.begin().await
    }
}

/// A database-wide lock for work that must not run twice at once (`db_sync`, bootstrap).
/// PostgreSQL takes an advisory lock inside the transaction and SQLite has one writer, so only
/// MySQL needs this: a named lock on a connection of its own, held until released on it.
pub(crate) trait NamedLock: BeginTx {
    fn named_lock(
        &self,
        name: &str,
    ) -> impl std::future::Future<Output = Result<Option<sqlx::pool::PoolConnection<Self::Db>>>> + Send;
}

impl NamedLock for SqlitePool {
    async fn named_lock(
        &self,
        _: &str,
    ) -> Result<Option<sqlx::pool::PoolConnection<sqlx::Sqlite>>> {
        Ok(None)
    }
}
impl NamedLock for PgPool {
    async fn named_lock(
        &self,
        _: &str,
    ) -> Result<Option<sqlx::pool::PoolConnection<sqlx::Postgres>>> {
        Ok(None)
    }
}
impl NamedLock for MySqlPool {
    async fn named_lock(
        &self,
        name: &str,
    ) -> Result<Option<sqlx::pool::PoolConnection<sqlx::MySql>>> {
        let mut conn = self.acquire().await?;
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 120)")
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
        if got != Some(1) {
            return Err(StoreError::Schema(format!(
                "could not take the database lock {name:?} within 120 s: another db_sync or bootstrap is still running"
            )));
        }
        Ok(Some(conn))
    }
}

pub(crate) async fn begin_tx<P: BeginTx>(
    pool: &P,
) -> sqlx::Result<sqlx::Transaction<'static, P::Db>> {
    pool.begin_tx().await
}

pub(crate) fn sql_sqlite(q: &str) -> Cow<'_, str> {
    Cow::Borrowed(q)
}

/// `?` placeholders become `$1, $2, ...`; string literals are left alone.
pub(crate) fn sql_postgres(q: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(q.len() + 16);
    let mut n = 0;
    let mut in_literal = false;
    for c in q.chars() {
        match c {
            '\'' => {
                in_literal = !in_literal;
                out.push(c);
            }
            '?' if !in_literal => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// MySQL quotes identifiers with backticks (`group` and `limit` are reserved words there).
pub(crate) fn sql_mysql(q: &str) -> Cow<'_, str> {
    if q.contains('"') {
        Cow::Owned(q.replace('"', "`"))
    } else {
        Cow::Borrowed(q)
    }
}

/// How a timestamp is bound: SQLite gets SQLAlchemy's text form (`YYYY-MM-DD HH:MM:SS.ffffff`) so
/// Keystone reads back what Baton wrote; the other dialects take native timestamps.
pub(crate) trait TimestampRepr {
    type Repr;
    fn ts(&self, t: chrono::NaiveDateTime) -> Self::Repr;
}
impl TimestampRepr for SqlitePool {
    type Repr = String;
    fn ts(&self, t: chrono::NaiveDateTime) -> String {
        t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}
impl TimestampRepr for PgPool {
    type Repr = chrono::NaiveDateTime;
    fn ts(&self, t: chrono::NaiveDateTime) -> chrono::NaiveDateTime {
        t
    }
}
impl TimestampRepr for MySqlPool {
    type Repr = chrono::NaiveDateTime;
    fn ts(&self, t: chrono::NaiveDateTime) -> chrono::NaiveDateTime {
        t
    }
}

impl Store {
    /// Connects to the database named by a `[database] connection` URL (Keystone's SQLAlchemy
    /// forms are accepted). A SQLite file is created if missing, readable by its owner only (it
    /// holds password hashes), and so are its `-wal` and `-shm` files.
    pub async fn connect(connection: &str) -> Result<Store> {
        let url = parse_connection(connection)?;
        let backend = match url.dialect {
            Dialect::Sqlite => {
                let opts = url
                    .url
                    .parse::<SqliteConnectOptions>()
                    .map_err(|e| StoreError::InvalidUrl(format!("{}: {e}", url.redacted)))?;
                let created = create_private(opts.get_filename())?;
                let opts = opts
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(30))
                    // Keystone runs SQLite without foreign key enforcement; match it so rows it
                    // wrote (and the order it writes them in) stay valid here.
                    .foreign_keys(false);
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts.clone())
                    .await?;
                let read = SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(opts.clone())
                    .await?;
                if created {
                    // SQLite gives these the database file's mode already; make sure of it.
                    for suffix in ["-wal", "-shm"] {
                        let mut side = opts.get_filename().as_os_str().to_owned();
                        side.push(suffix);
                        restrict(Path::new(&side))?;
                    }
                }
                Backend::Sqlite { read, write }
            }
            Dialect::Postgres => Backend::Postgres(
                PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(SERVER_ACQUIRE_TIMEOUT)
                    .connect(&url.url)
                    .await?,
            ),
            Dialect::MySql => Backend::MySql(
                MySqlPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(SERVER_ACQUIRE_TIMEOUT)
                    .connect(&url.url)
                    .await?,
            ),
        };
        Ok(Store {
            backend,
            url: std::sync::Arc::new(url),
            password_history: 1,
            user_inactivity_days: None,
        })
    }

    /// Which SQL dialect the database speaks.
    pub fn dialect(&self) -> Dialect {
        self.url.dialect
    }

    /// The connection URL with any password replaced, for logs and messages.
    pub fn redacted_url(&self) -> &str {
        &self.url.redacted
    }

    /// Closes every connection (at shutdown).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Backend::Postgres(p) => p.close().await,
            Backend::MySql(p) => p.close().await,
        }
    }
}

/// Creates the SQLite database file, empty, with mode 0600 unless it exists; whether it was
/// created. An existing file keeps the mode its operator gave it. When the file cannot be
/// created (no such directory, no permission) SQLite cannot either, and says so itself.
#[cfg(unix)]
fn create_private(path: &Path) -> Result<bool> {
    use std::os::unix::fs::OpenOptionsExt;
    Ok(std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .is_ok())
}

#[cfg(not(unix))]
fn create_private(_path: &Path) -> Result<bool> {
    Ok(false)
}

/// Mode 0600 for a file of a database this process created, if the file exists.
#[cfg(unix)]
fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StoreError::Database(sqlx::Error::Io(e)))
        }
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> Result<()> {
    Ok(())
}

/// A new Keystone-style id: a UUID4 as 32 lowercase hex characters.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
