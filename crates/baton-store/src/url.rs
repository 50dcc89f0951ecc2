//! `[database] connection` URLs, in Keystone's SQLAlchemy forms and sqlx's.

use crate::{Result, StoreError};

/// The database server kind, which decides placeholders, quoting and locking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// An embedded SQLite file (the default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MariaDB or MySQL.
    MySql,
}

/// A parsed `[database] connection`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// Which server kind it names.
    pub dialect: Dialect,
    /// The URL in the form sqlx understands.
    pub url: String,
    /// The original URL with the password masked.
    pub redacted: String,
}

/// Accepts `sqlite:////abs/path`, `sqlite:///rel/path`, `sqlite://` URLs with a driver suffix
/// (`mysql+pymysql://`, `postgresql+psycopg2://`), and plain `postgres://`/`mysql://`.
pub fn parse_connection(connection: &str) -> Result<DatabaseUrl> {
    let connection = connection.trim();
    let (scheme, rest) = connection
        .split_once("://")
        .ok_or_else(|| StoreError::InvalidUrl(format!("{:?} has no scheme", redact(connection))))?;
    let base = scheme
        .split('+')
        .next()
        .unwrap_or(scheme)
        .to_ascii_lowercase();
    let redacted = redact(connection);
    match base.as_str() {
        "sqlite" => {
            // SQLAlchemy: three slashes then a relative path, four for an absolute one.
            let path = rest.strip_prefix('/').unwrap_or(rest);
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() || path == ":memory:" {
                return Err(StoreError::InvalidUrl(format!(
                    "{redacted}: an in-memory SQLite database cannot be shared; name a file"
                )));
            }
            Ok(DatabaseUrl {
                dialect: Dialect::Sqlite,
                url: format!("sqlite://{path}"),
                redacted,
            })
        }
        "postgres" | "postgresql" => Ok(DatabaseUrl {
            dialect: Dialect::Postgres,
            url: format!("postgres://{rest}"),
            redacted,
        }),
        "mysql" | "mariadb" => {
            // PyMySQL takes `?charset=utf8`; sqlx names it the same way, other options are dropped.
            let (head, query) = rest.split_once('?').unwrap_or((rest, ""));
            let charset = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("charset="))
                .map(|c| format!("?charset={c}"))
                .unwrap_or_default();
            Ok(DatabaseUrl {
                dialect: Dialect::MySql,
                url: format!("mysql://{head}{charset}"),
                redacted,
            })
        }
        other => Err(StoreError::InvalidUrl(format!(
            "{redacted}: unsupported database {other:?} (use sqlite, postgresql or mysql)"
        ))),
    }
}

fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.split_once('@') {
            if let Some((user, _)) = creds.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlalchemy_forms() {
        let u = parse_connection("sqlite:////var/lib/keystone/keystone.db").unwrap();
        assert_eq!(u.dialect, Dialect::Sqlite);
        assert_eq!(u.url, "sqlite:///var/lib/keystone/keystone.db");
        let u = parse_connection("sqlite:///keystone.db").unwrap();
        assert_eq!(u.url, "sqlite://keystone.db");
        let u =
            parse_connection("mysql+pymysql://keystone:secret@db.example/keystone?charset=utf8")
                .unwrap();
        assert_eq!(u.dialect, Dialect::MySql);
        assert_eq!(
            u.url,
            "mysql://keystone:secret@db.example/keystone?charset=utf8"
        );
        assert_eq!(
            u.redacted,
            "mysql+pymysql://keystone:***@db.example/keystone?charset=utf8"
        );
        let u = parse_connection("postgresql+psycopg2://ks:pw@127.0.0.1/keystone").unwrap();
        assert_eq!(u.dialect, Dialect::Postgres);
        assert_eq!(u.url, "postgres://ks:pw@127.0.0.1/keystone");
    }

    #[test]
    fn bad_urls_are_refused_without_leaking_passwords() {
        let e = parse_connection("oracle://u:topsecret@h/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsupported database"), "{e}");
        assert!(!e.contains("topsecret"), "{e}");
        assert!(parse_connection("sqlite://").is_err());
        assert!(parse_connection("no-scheme").is_err());
    }
}
