//! OAuth1 consumers in Keystone's `consumer` table (with their secrets), and the request and
//! access tokens (`request_token`, `access_token`) deleted with them.

use serde_json::{Map, Value};

use crate::{dispatch, Result, Store};

/// An OAuth1 consumer: an application that may ask users to delegate to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    /// Its id (a generated hex string).
    pub id: String,
    /// Free text (Keystone's column holds at most 64 characters).
    pub description: Option<String>,
    /// The shared secret it signs requests with; shown once, when it is created.
    pub secret: String,
    /// Attributes the client set beyond the description.
    pub extra: Map<String, Value>,
}

const CONSUMER_COLUMNS: &str = "SELECT id, description, secret, extra FROM consumer";

macro_rules! consumer_row {
    ($row:expr) => {{
        let extra: Option<String> = $row.try_get("extra")?;
        Consumer {
            id: $row.try_get("id")?,
            description: $row.try_get("description")?,
            secret: $row.try_get("secret")?,
            extra: match extra.as_deref().map(serde_json::from_str::<Value>) {
                Some(Ok(Value::Object(m))) => m,
                _ => Map::new(),
            },
        }
    }};
}

impl Store {
    /// Every consumer, in the database's order.
    pub async fn list_consumers(&self) -> Result<Vec<Consumer>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(CONSUMER_COLUMNS)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(consumer_row!(row));
            }
            Ok(out)
        })
    }

    /// A consumer by id, if there is one.
    pub async fn get_consumer(&self, id: &str) -> Result<Option<Consumer>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{CONSUMER_COLUMNS} WHERE id = ?");
            match sqlx::query(&q(&sql)).bind(id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(consumer_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Stores a new consumer (`creating`) or rewrites an existing one's description and
    /// extra attributes (its secret never changes); `false` when updating one that is gone.
    pub async fn put_consumer(&self, c: &Consumer, creating: bool) -> Result<bool> {
        let extra = Value::Object(c.extra.clone()).to_string();
        dispatch!(self, write, |pool, q| {
            let done = if creating {
                sqlx::query(&q(
                    "INSERT INTO consumer (description, extra, secret, id) VALUES (?, ?, ?, ?)",
                ))
                .bind(&c.description)
                .bind(&extra)
                .bind(&c.secret)
                .bind(&c.id)
                .execute(pool)
                .await?
            } else {
                sqlx::query(&q(
                    "UPDATE consumer SET description = ?, extra = ? WHERE id = ?",
                ))
                .bind(&c.description)
                .bind(&extra)
                .bind(&c.id)
                .execute(pool)
                .await?
            };
            // MySQL counts changed rows only: an update that changes nothing still found it.
            Ok(
                done.rows_affected() > 0
                    || (!creating && self.get_consumer(&c.id).await?.is_some()),
            )
        })
    }

    /// Deletes a consumer with its request and access tokens; `false` when there was none.
    pub async fn delete_consumer(&self, id: &str) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            for sql in [
                "DELETE FROM request_token WHERE consumer_id = ?",
                "DELETE FROM access_token WHERE consumer_id = ?",
            ] {
                sqlx::query(&q(sql)).bind(id).execute(&mut *tx).await?;
            }
            let done = sqlx::query(&q("DELETE FROM consumer WHERE id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
    }
}

/// A request token (`request_token`): a consumer asked to act for a user on a project; once a
/// user authorizes it, it carries that user, the roles granted and the verifier.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestToken {
    /// Its key (32 lowercase hex characters).
    pub id: String,
    /// The secret the consumer signs the access-token request with.
    pub request_secret: String,
    /// Set when authorized: the code the consumer must present.
    pub verifier: Option<String>,
    /// Set when authorized: the user who delegated.
    pub authorizing_user_id: Option<String>,
    /// The project the consumer asked for.
    pub requested_project_id: String,
    /// Set when authorized: the delegated role ids, as a JSON list (Keystone's column).
    pub role_ids: Option<String>,
    /// The consumer that asked.
    pub consumer_id: String,
    /// Keystone's `isotime` with microseconds, or none for tokens that do not expire.
    pub expires_at: Option<String>,
}

/// An access token (`access_token`): the consumer's standing delegation from a user on a
/// project, with the roles the user granted.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    /// Its key (32 lowercase hex characters).
    pub id: String,
    /// The secret the consumer signs token requests with.
    pub access_secret: String,
    /// The user who delegated.
    pub authorizing_user_id: String,
    /// The project it is for.
    pub project_id: String,
    /// The delegated role ids, as a JSON list.
    pub role_ids: String,
    /// The consumer it was issued to.
    pub consumer_id: String,
    /// Keystone's `isotime` with microseconds, or none for tokens that do not expire.
    pub expires_at: Option<String>,
}

const REQUEST_TOKEN_COLUMNS: &str = "SELECT id, request_secret, verifier, authorizing_user_id, \
     requested_project_id, role_ids, consumer_id, expires_at FROM request_token";
const ACCESS_TOKEN_COLUMNS: &str = "SELECT id, access_secret, authorizing_user_id, project_id, \
     role_ids, consumer_id, expires_at FROM access_token";

macro_rules! access_token_row {
    ($row:expr) => {
        AccessToken {
            id: $row.try_get("id")?,
            access_secret: $row.try_get("access_secret")?,
            authorizing_user_id: $row.try_get("authorizing_user_id")?,
            project_id: $row.try_get("project_id")?,
            role_ids: $row.try_get("role_ids")?,
            consumer_id: $row.try_get("consumer_id")?,
            expires_at: $row.try_get("expires_at")?,
        }
    };
}

impl Store {
    /// Stores a new, unauthorized request token.
    pub async fn create_request_token(&self, t: &RequestToken) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            sqlx::query(&q(
                "INSERT INTO request_token (id, request_secret, verifier, \
                 authorizing_user_id, requested_project_id, role_ids, consumer_id, expires_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(&t.id)
            .bind(&t.request_secret)
            .bind(&t.verifier)
            .bind(&t.authorizing_user_id)
            .bind(&t.requested_project_id)
            .bind(&t.role_ids)
            .bind(&t.consumer_id)
            .bind(&t.expires_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A request token by key, if there is one.
    pub async fn get_request_token(&self, id: &str) -> Result<Option<RequestToken>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{REQUEST_TOKEN_COLUMNS} WHERE id = ?");
            match sqlx::query(&q(&sql)).bind(id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(RequestToken {
                    id: row.try_get("id")?,
                    request_secret: row.try_get("request_secret")?,
                    verifier: row.try_get("verifier")?,
                    authorizing_user_id: row.try_get("authorizing_user_id")?,
                    requested_project_id: row.try_get("requested_project_id")?,
                    role_ids: row.try_get("role_ids")?,
                    consumer_id: row.try_get("consumer_id")?,
                    expires_at: row.try_get("expires_at")?,
                })),
                None => Ok(None),
            }
        })
    }

    /// Records a user's authorization of a request token (the user, the role ids as a JSON
    /// list, the verifier); `false` when the token is gone.
    pub async fn authorize_request_token(
        &self,
        id: &str,
        user_id: &str,
        role_ids: &str,
        verifier: &str,
    ) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q("UPDATE request_token SET authorizing_user_id = ?, \
                 role_ids = ?, verifier = ? WHERE id = ?"))
            .bind(user_id)
            .bind(role_ids)
            .bind(verifier)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Exchanges a request token for an access token in one transaction: the access token is
    /// stored and the request token deleted, so a request token is used at most once. `false`
    /// (nothing stored) when the request token was already used.
    pub async fn exchange_request_token(
        &self,
        request_token_id: &str,
        t: &AccessToken,
    ) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let gone = sqlx::query(&q("DELETE FROM request_token WHERE id = ?"))
                .bind(request_token_id)
                .execute(&mut *tx)
                .await?;
            if gone.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query(&q(
                "INSERT INTO access_token (id, access_secret, authorizing_user_id, \
                 project_id, role_ids, consumer_id, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(&t.id)
            .bind(&t.access_secret)
            .bind(&t.authorizing_user_id)
            .bind(&t.project_id)
            .bind(&t.role_ids)
            .bind(&t.consumer_id)
            .bind(&t.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// An access token by key, if there is one.
    pub async fn get_access_token(&self, id: &str) -> Result<Option<AccessToken>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{ACCESS_TOKEN_COLUMNS} WHERE id = ?");
            match sqlx::query(&q(&sql)).bind(id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(access_token_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// The access tokens a user authorized, in the database's order.
    pub async fn list_access_tokens_of_user(&self, user_id: &str) -> Result<Vec<AccessToken>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{ACCESS_TOKEN_COLUMNS} WHERE authorizing_user_id = ?");
            let rows = sqlx::query(&q(&sql)).bind(user_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(access_token_row!(row));
            }
            Ok(out)
        })
    }

    /// Deletes an access token; `false` when there was none.
    pub async fn delete_access_token(&self, id: &str) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q("DELETE FROM access_token WHERE id = ?"))
                .bind(id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
