//! Federation resources in Keystone's tables: service providers (`service_provider`, the
//! remote clouds a token may be taken to, listed in every token while enabled), identity
//! providers (`identity_provider`, `idp_remote_ids`), their protocols (`federation_protocol`)
//! and mappings (`mapping`).

use crate::{dispatch, Result, Store, StoreError};

/// A service provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProvider {
    /// Its id, chosen by the operator.
    pub id: String,
    /// Whether tokens list it.
    pub enabled: bool,
    /// Free text.
    pub description: Option<String>,
    /// Where to authenticate at the remote cloud.
    pub auth_url: String,
    /// Where the remote cloud takes SAML assertions.
    pub sp_url: String,
    /// The prefix of the SAML RelayState attribute.
    pub relay_state_prefix: String,
}

const SP_COLUMNS: &str =
    "SELECT id, enabled, description, auth_url, sp_url, relay_state_prefix FROM service_provider";

macro_rules! sp_row {
    ($row:expr) => {
        ServiceProvider {
            id: $row.try_get("id")?,
            enabled: $row.try_get("enabled")?,
            description: $row.try_get("description")?,
            auth_url: $row.try_get("auth_url")?,
            sp_url: $row.try_get("sp_url")?,
            relay_state_prefix: $row.try_get("relay_state_prefix")?,
        }
    };
}

fn sp_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "Service Provider",
        id: id.to_string(),
    }
}

impl Store {
    /// Every service provider, in the database's order.
    pub async fn list_service_providers(&self) -> Result<Vec<ServiceProvider>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(SP_COLUMNS)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(sp_row!(row));
            }
            Ok(out)
        })
    }

    /// A service provider by id; `NotFound` (kind `Service Provider`, as Keystone words it)
    /// when there is none.
    pub async fn get_service_provider(&self, id: &str) -> Result<ServiceProvider> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{SP_COLUMNS} WHERE id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or_else(|| sp_not_found(id))?;
            Ok(sp_row!(row))
        })
    }

    /// Creates a service provider (`Conflict` when the id is taken), or writes all of an
    /// existing one's attributes.
    pub async fn put_service_provider(&self, sp: &ServiceProvider, creating: bool) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            if creating {
                let taken = sqlx::query(&q("SELECT id FROM service_provider WHERE id = ?"))
                    .bind(&sp.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if taken.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "service_provider - Duplicate entry found with ID {}.",
                        sp.id
                    )));
                }
            }
            let sql = if creating {
                "INSERT INTO service_provider (enabled, description, auth_url, sp_url, relay_state_prefix, id) VALUES (?, ?, ?, ?, ?, ?)"
            } else {
                "UPDATE service_provider SET enabled = ?, description = ?, auth_url = ?, sp_url = ?, relay_state_prefix = ? WHERE id = ?"
            };
            let done = sqlx::query(&q(sql))
                .bind(sp.enabled)
                .bind(&sp.description)
                .bind(&sp.auth_url)
                .bind(&sp.sp_url)
                .bind(&sp.relay_state_prefix)
                .bind(&sp.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            // MySQL counts changed rows only: an update that changes nothing is still a hit.
            if done.rows_affected() == 0 {
                self.get_service_provider(&sp.id).await?;
            }
            Ok(())
        })
    }

    /// Deletes a service provider.
    pub async fn delete_service_provider(&self, id: &str) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q("DELETE FROM service_provider WHERE id = ?"))
                .bind(id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(sp_not_found(id));
            }
            Ok(())
        })
    }
}

/// An identity provider: a remote source of federated users, who are created in its domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityProvider {
    /// Its id, chosen by the operator.
    pub id: String,
    /// Whether its users may log in.
    pub enabled: bool,
    /// Free text.
    pub description: Option<String>,
    /// The domain its federated users are created in.
    pub domain_id: String,
    /// Minutes a group membership carried over by a mapping lasts (`None`: Keystone's default).
    pub authorization_ttl: Option<i64>,
    /// The identifiers the remote side presents (unique across identity providers), sorted.
    pub remote_ids: Vec<String>,
}

/// A federation protocol of an identity provider: which mapping turns its assertions into
/// local users and groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationProtocol {
    /// Its id (`saml2`, `openid`, ...), unique within the identity provider.
    pub id: String,
    /// The identity provider.
    pub idp_id: String,
    /// The mapping applied to assertions.
    pub mapping_id: String,
    /// The assertion attribute naming the remote side (`None`: the `[federation]` default).
    pub remote_id_attribute: Option<String>,
}

/// A mapping: rules from assertion attributes to local users, groups and projects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Its id, chosen by the operator.
    pub id: String,
    /// The rules, as JSON text. (Keystone's column holds that text JSON-encoded once more: it
    /// dumps the rules and its `JsonBlob` type dumps the result; the store undoes and redoes
    /// that.)
    pub rules: String,
    /// The mapping schema version (`1.0`, `2.0`, `3.0`).
    pub schema_version: String,
}

const IDP_COLUMNS: &str =
    "SELECT id, enabled, description, domain_id, authorization_ttl FROM identity_provider";
const PROTOCOL_COLUMNS: &str =
    "SELECT id, idp_id, mapping_id, remote_id_attribute FROM federation_protocol";
const MAPPING_COLUMNS: &str = "SELECT id, rules, schema_version FROM mapping";

macro_rules! idp_row {
    ($row:expr) => {
        IdentityProvider {
            id: $row.try_get("id")?,
            enabled: $row.try_get("enabled")?,
            description: $row.try_get("description")?,
            domain_id: $row.try_get("domain_id")?,
            authorization_ttl: $row
                .try_get::<Option<i64>, _>("authorization_ttl")
                .or_else(|_| {
                    $row.try_get::<Option<i32>, _>("authorization_ttl")
                        .map(|t| t.map(i64::from))
                })?,
            remote_ids: Vec::new(),
        }
    };
}

macro_rules! protocol_row {
    ($row:expr) => {
        FederationProtocol {
            id: $row.try_get("id")?,
            idp_id: $row.try_get("idp_id")?,
            mapping_id: $row.try_get("mapping_id")?,
            remote_id_attribute: $row.try_get("remote_id_attribute")?,
        }
    };
}

fn idp_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "Identity Provider",
        id: id.to_string(),
    }
}

fn mapping_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "mapping",
        id: id.to_string(),
    }
}

/// The users linked to an identity provider (or one of its protocols), collected before the
/// links go so the orphans among them can be found.
const FEDERATED_USERS_OF_IDP: &str = "SELECT DISTINCT user_id FROM federated_user WHERE idp_id = ?";
const FEDERATED_USERS_OF_PROTOCOL: &str =
    "SELECT DISTINCT user_id FROM federated_user WHERE idp_id = ? AND protocol_id = ?";

impl Store {
    /// Every identity provider with its remote ids, in the database's order.
    pub async fn list_identity_providers(&self) -> Result<Vec<IdentityProvider>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(IDP_COLUMNS)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(idp_row!(row));
            }
            let remote = sqlx::query(&q(
                "SELECT idp_id, remote_id FROM idp_remote_ids ORDER BY remote_id",
            ))
            .fetch_all(pool)
            .await?;
            for row in remote {
                let idp: Option<String> = row.try_get("idp_id")?;
                let rid: String = row.try_get("remote_id")?;
                if let Some(i) = out.iter_mut().find(|i| Some(&i.id) == idp.as_ref()) {
                    i.remote_ids.push(rid);
                }
            }
            Ok(out)
        })
    }

    /// An identity provider by id with its remote ids; `NotFound` (`Identity Provider`).
    pub async fn get_identity_provider(&self, id: &str) -> Result<IdentityProvider> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{IDP_COLUMNS} WHERE id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or_else(|| idp_not_found(id))?;
            let mut idp = idp_row!(row);
            let remote = sqlx::query(&q(
                "SELECT remote_id FROM idp_remote_ids WHERE idp_id = ? ORDER BY remote_id",
            ))
            .bind(id)
            .fetch_all(pool)
            .await?;
            for row in remote {
                idp.remote_ids.push(row.try_get("remote_id")?);
            }
            Ok(idp)
        })
    }

    /// Creates an identity provider (`creating`; `Conflict` when the id is taken) or rewrites
    /// an existing one's mutable attributes and remote ids. A remote id held by another
    /// identity provider is a `Conflict` naming it.
    pub async fn put_identity_provider(
        &self,
        idp: &IdentityProvider,
        creating: bool,
    ) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let existing = sqlx::query(&q("SELECT id FROM identity_provider WHERE id = ?"))
                .bind(&idp.id)
                .fetch_optional(&mut *tx)
                .await?;
            match (creating, existing.is_some()) {
                (true, true) => {
                    return Err(StoreError::Conflict(format!(
                        "identity_provider - Duplicate entry: {}.",
                        idp.id
                    )))
                }
                (false, false) => return Err(idp_not_found(&idp.id)),
                _ => {}
            }
            for rid in &idp.remote_ids {
                let holder: Option<Option<String>> =
                    sqlx::query_scalar(&q("SELECT idp_id FROM idp_remote_ids WHERE remote_id = ?"))
                        .bind(rid)
                        .fetch_optional(&mut *tx)
                        .await?;
                if matches!(holder, Some(h) if h.as_deref() != Some(idp.id.as_str())) {
                    return Err(StoreError::Conflict(format!(
                        "identity_provider - Duplicate remote ID: {rid}."
                    )));
                }
            }
            let sql = if creating {
                "INSERT INTO identity_provider (enabled, description, authorization_ttl, domain_id, id) VALUES (?, ?, ?, ?, ?)"
            } else {
                "UPDATE identity_provider SET enabled = ?, description = ?, authorization_ttl = ? WHERE domain_id = ? AND id = ?"
            };
            sqlx::query(&q(sql))
                .bind(idp.enabled)
                .bind(&idp.description)
                .bind(idp.authorization_ttl.map(|t| t as i32))
                .bind(&idp.domain_id)
                .bind(&idp.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&q("DELETE FROM idp_remote_ids WHERE idp_id = ?"))
                .bind(&idp.id)
                .execute(&mut *tx)
                .await?;
            for rid in &idp.remote_ids {
                sqlx::query(&q(
                    "INSERT INTO idp_remote_ids (idp_id, remote_id) VALUES (?, ?)",
                ))
                .bind(&idp.id)
                .bind(rid)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes an identity provider with its remote ids, protocols, federated users' links
    /// and expiring group memberships, as Keystone does. Returns the users left with no
    /// local, non-local or federated identity, for the caller to delete (Keystone deletes
    /// such orphans with the identity provider).
    pub async fn delete_identity_provider(&self, id: &str) -> Result<Vec<String>> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let exists = sqlx::query(&q("SELECT id FROM identity_provider WHERE id = ?"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(idp_not_found(id));
            }
            let users: Vec<String> = sqlx::query_scalar(&q(FEDERATED_USERS_OF_IDP))
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
            for sql in [
                "DELETE FROM federated_user WHERE idp_id = ?",
                "DELETE FROM expiring_user_group_membership WHERE idp_id = ?",
                "DELETE FROM federation_protocol WHERE idp_id = ?",
                "DELETE FROM idp_remote_ids WHERE idp_id = ?",
                "DELETE FROM identity_provider WHERE id = ?",
            ] {
                sqlx::query(&q(sql)).bind(id).execute(&mut *tx).await?;
            }
            let orphans = crate::federation::orphans!(tx, q, users);
            tx.commit().await?;
            Ok(orphans)
        })
    }

    /// The ids of the identity providers of a domain (deleted with it).
    pub async fn identity_providers_of_domain(&self, domain_id: &str) -> Result<Vec<String>> {
        dispatch!(self, read, |pool, q| {
            Ok(
                sqlx::query_scalar(&q("SELECT id FROM identity_provider WHERE domain_id = ?"))
                    .bind(domain_id)
                    .fetch_all(pool)
                    .await?,
            )
        })
    }

    /// The protocols of an identity provider, in the database's order.
    pub async fn list_federation_protocols(&self, idp_id: &str) -> Result<Vec<FederationProtocol>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{PROTOCOL_COLUMNS} WHERE idp_id = ?");
            let rows = sqlx::query(&q(&sql)).bind(idp_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(protocol_row!(row));
            }
            Ok(out)
        })
    }

    /// One protocol of an identity provider, if there is one.
    pub async fn get_federation_protocol(
        &self,
        idp_id: &str,
        id: &str,
    ) -> Result<Option<FederationProtocol>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{PROTOCOL_COLUMNS} WHERE idp_id = ? AND id = ?");
            match sqlx::query(&q(&sql))
                .bind(idp_id)
                .bind(id)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Ok(Some(protocol_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Creates a protocol (`Conflict` when the identity provider has one by that id) or
    /// rewrites one's mapping and remote id attribute.
    pub async fn put_federation_protocol(
        &self,
        p: &FederationProtocol,
        creating: bool,
    ) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            if creating {
                let taken = sqlx::query(&q(
                    "SELECT id FROM federation_protocol WHERE idp_id = ? AND id = ?",
                ))
                .bind(&p.idp_id)
                .bind(&p.id)
                .fetch_optional(&mut *tx)
                .await?;
                if taken.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "federation_protocol - Duplicate entry found with ID {}.",
                        p.id
                    )));
                }
            }
            let sql = if creating {
                "INSERT INTO federation_protocol (mapping_id, remote_id_attribute, idp_id, id) VALUES (?, ?, ?, ?)"
            } else {
                "UPDATE federation_protocol SET mapping_id = ?, remote_id_attribute = ? WHERE idp_id = ? AND id = ?"
            };
            sqlx::query(&q(sql))
                .bind(&p.mapping_id)
                .bind(&p.remote_id_attribute)
                .bind(&p.idp_id)
                .bind(&p.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a protocol and its federated users' links; `None` when there was no such
    /// protocol, else the users left with no identity (see [`Store::delete_identity_provider`]).
    pub async fn delete_federation_protocol(
        &self,
        idp_id: &str,
        id: &str,
    ) -> Result<Option<Vec<String>>> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let users: Vec<String> = sqlx::query_scalar(&q(FEDERATED_USERS_OF_PROTOCOL))
                .bind(idp_id)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
            sqlx::query(&q(
                "DELETE FROM federated_user WHERE idp_id = ? AND protocol_id = ?",
            ))
            .bind(idp_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query(&q(
                "DELETE FROM federation_protocol WHERE idp_id = ? AND id = ?",
            ))
            .bind(idp_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(None);
            }
            let orphans = crate::federation::orphans!(tx, q, users);
            tx.commit().await?;
            Ok(Some(orphans))
        })
    }

    /// Every mapping, in the database's order.
    pub async fn list_mappings(&self) -> Result<Vec<Mapping>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(MAPPING_COLUMNS)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(Mapping {
                    id: row.try_get("id")?,
                    rules: rules_from_column(row.try_get("rules")?),
                    schema_version: row.try_get("schema_version")?,
                });
            }
            Ok(out)
        })
    }

    /// A mapping by id; `NotFound` (`mapping`).
    pub async fn get_mapping(&self, id: &str) -> Result<Mapping> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{MAPPING_COLUMNS} WHERE id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or_else(|| mapping_not_found(id))?;
            Ok(Mapping {
                id: row.try_get("id")?,
                rules: rules_from_column(row.try_get("rules")?),
                schema_version: row.try_get("schema_version")?,
            })
        })
    }

    /// Creates a mapping (`Conflict` when the id is taken) or rewrites an existing one
    /// (`NotFound` when it is gone).
    pub async fn put_mapping(&self, m: &Mapping, creating: bool) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let existing = sqlx::query(&q("SELECT id FROM mapping WHERE id = ?"))
                .bind(&m.id)
                .fetch_optional(&mut *tx)
                .await?;
            match (creating, existing.is_some()) {
                (true, true) => {
                    // Keystone names no id here: the mapping's body carries none.
                    return Err(StoreError::Conflict("mapping - Duplicate entry.".into()));
                }
                (false, false) => return Err(mapping_not_found(&m.id)),
                _ => {}
            }
            let sql = if creating {
                "INSERT INTO mapping (rules, schema_version, id) VALUES (?, ?, ?)"
            } else {
                "UPDATE mapping SET rules = ?, schema_version = ? WHERE id = ?"
            };
            // Encoded twice, as Keystone stores it.
            let column = serde_json::Value::String(m.rules.clone()).to_string();
            sqlx::query(&q(sql))
                .bind(column)
                .bind(&m.schema_version)
                .bind(&m.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a mapping (protocols naming it are left, as in Keystone).
    pub async fn delete_mapping(&self, id: &str) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q("DELETE FROM mapping WHERE id = ?"))
                .bind(id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(mapping_not_found(id));
            }
            Ok(())
        })
    }
}

/// The rules' JSON text from the column, whether encoded twice (as Keystone writes it) or once.
fn rules_from_column(column: String) -> String {
    match serde_json::from_str::<serde_json::Value>(&column) {
        Ok(serde_json::Value::String(inner)) => inner,
        _ => column,
    }
}

/// Of `users` (whose federated links were just deleted in `tx`), those with no local,
/// non-local or federated identity left.
macro_rules! orphans {
    ($tx:expr, $q:expr, $users:expr) => {{
        let mut out = Vec::new();
        for user in $users {
            let mut held = false;
            for sql in [
                "SELECT user_id FROM local_user WHERE user_id = ?",
                "SELECT user_id FROM nonlocal_user WHERE user_id = ?",
                "SELECT user_id FROM federated_user WHERE user_id = ?",
            ] {
                held |= sqlx::query(&$q(sql))
                    .bind(&user)
                    .fetch_optional(&mut *$tx)
                    .await?
                    .is_some();
            }
            if !held {
                out.push(user);
            }
        }
        out
    }};
}
pub(crate) use orphans;
