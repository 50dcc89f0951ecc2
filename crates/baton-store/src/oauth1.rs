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
