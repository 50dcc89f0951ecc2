//! Keystone's msgpack token payloads, versions 0 to 10, and Baton's continuation payload
//! (version [`CONTINUATION_VERSION`]), which Keystone refuses as an unknown version.
//!
//! A payload is a msgpack array whose first element is the version number and whose other
//! elements depend on the version (see [`Scope`]). Encoding reproduces what Python
//! `msgpack.packb` 1.x emits for Keystone's tuples byte for byte: the smallest integer
//! encodings, float64 for the expiry, `bin` for raw bytes, `str` for text, arrays for tuples.
//!
//! Identifier fields that may or may not be UUIDs are stored as a pair `[is_uuid, value]`:
//! `[true, <16 raw bytes>]` when the text parses as a UUID the way Python's `uuid.UUID` parses
//! it, `[false, "<text>"]` otherwise. Decoding turns the raw form into 32 lowercase hex digits.
//!
//! Decoding is tolerant of payloads written by msgpack < 1.0, which had a single "raw" type
//! for both text and bytes: wherever text or bytes are expected, either msgpack type is taken.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use rmp::Marker;

use crate::error::TokenError;
use crate::fernet::hex_lower;

/// The scope part of a token, one variant per Keystone payload version.
///
/// The comment on each variant gives the msgpack layout after `[version, user, methods, ...`;
/// `id` marks an `[is_uuid, value]` pair.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Version 0: `expires, audit_ids`.
    Unscoped,
    /// Version 1: `domain, expires, audit_ids`, where the domain is 16 raw UUID bytes, or the
    /// plain string when it equals `[identity] default_domain_id` (no pair).
    Domain {
        /// Domain id.
        domain_id: String,
    },
    /// Version 2: `project id, expires, audit_ids`.
    Project {
        /// Project id.
        project_id: String,
    },
    /// Version 3: `project id, expires, audit_ids, trust` (trust as 16 raw UUID bytes).
    Trust {
        /// The trust's project.
        project_id: String,
        /// Trust id; must be a UUID.
        trust_id: String,
    },
    /// Version 4: `[group ids], idp id, protocol str, expires, audit_ids`.
    FederatedUnscoped {
        /// Groups from the federated mapping.
        group_ids: Vec<String>,
        /// Identity provider id.
        idp_id: String,
        /// Federation protocol id.
        protocol_id: String,
    },
    /// Version 5: `project id, [group ids], idp id, protocol str, expires, audit_ids`.
    FederatedProject {
        /// Project id.
        project_id: String,
        /// Groups from the federated mapping.
        group_ids: Vec<String>,
        /// Identity provider id.
        idp_id: String,
        /// Federation protocol id.
        protocol_id: String,
    },
    /// Version 6: `domain id, [group ids], idp id, protocol str, expires, audit_ids`.
    FederatedDomain {
        /// Domain id.
        domain_id: String,
        /// Groups from the federated mapping.
        group_ids: Vec<String>,
        /// Identity provider id.
        idp_id: String,
        /// Federation protocol id.
        protocol_id: String,
    },
    /// Version 7: `project id, access token id, expires, audit_ids`.
    OAuth1 {
        /// Project id.
        project_id: String,
        /// OAuth1 access token id.
        access_token_id: String,
    },
    /// Version 8: `system str, expires, audit_ids`; Keystone only uses `"all"`.
    System {
        /// System scope name.
        system: String,
    },
    /// Version 9: `project id, expires, audit_ids, app cred id`.
    ApplicationCredential {
        /// Project id.
        project_id: String,
        /// Application credential id.
        app_cred_id: String,
    },
    /// Version 10: `project id, domain id, expires, audit_ids, [false, thumbprint]`.
    /// Keystone writes `[false, nil]` for an absent project or domain.
    OAuth2Credential {
        /// Project id, if the token is project scoped.
        project_id: Option<String>,
        /// Domain id, if the token is domain scoped.
        domain_id: Option<String>,
        /// Thumbprint of the OAuth2 mTLS client certificate.
        thumbprint: String,
    },
    /// Version 200, Baton's own (docs/continuation.md): `project id, expires, audit_ids,
    /// actor id, [audience], operation expires, subject audit id[, delegation]`. A token a
    /// service (the actor) obtained for a user's long operation; `audit_ids` are its own and the
    /// chain root of the user's token, `subject_audit_id` is the user token's own (written as
    /// nil when it is that chain root, the usual case, to keep the token short).
    Continuation {
        /// The user token's project.
        project_id: String,
        /// The service user acting for the user.
        actor_id: String,
        /// The service types that may validate it.
        audience: Vec<String>,
        /// Unix seconds after which no renewal is granted.
        operation_expires_at: f64,
        /// The audit id of the user token the operation started from.
        subject_audit_id: String,
        /// The delegation the user token came from, which the continuation keeps.
        delegation: Option<ContinuationDelegation>,
    },
}

/// What a continuation token keeps of an application-credential or trust token it continues:
/// every validation re-checks the credential or trust and its roles, as for the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContinuationDelegation {
    /// Written `[9, app_cred_id]` (9: Keystone's application-credential payload version).
    ApplicationCredential(String),
    /// Written `[3, 16 raw UUID bytes]` (3: Keystone's trust payload version).
    Trust(String),
}

/// The payload version of a continuation token: far above Keystone's, so that a Keystone
/// node sharing the keys refuses it as unknown.
pub const CONTINUATION_VERSION: u8 = 200;

impl Scope {
    /// Keystone's payload version number for this scope.
    pub fn payload_version(&self) -> u8 {
        match self {
            Scope::Unscoped => 0,
            Scope::Domain { .. } => 1,
            Scope::Project { .. } => 2,
            Scope::Trust { .. } => 3,
            Scope::FederatedUnscoped { .. } => 4,
            Scope::FederatedProject { .. } => 5,
            Scope::FederatedDomain { .. } => 6,
            Scope::OAuth1 { .. } => 7,
            Scope::System { .. } => 8,
            Scope::ApplicationCredential { .. } => 9,
            Scope::OAuth2Credential { .. } => 10,
            Scope::Continuation { .. } => CONTINUATION_VERSION,
        }
    }
}

/// Everything a Keystone Fernet token carries. `issued_at` is not here: it is the Fernet
/// timestamp (see [`crate::fernet::Decrypted`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenPayload {
    /// User id.
    pub user_id: String,
    /// Authentication methods, as decoded: highest configured bit first.
    pub methods: Vec<String>,
    /// Expiry in Unix seconds; the sub-second part is kept.
    pub expires_at: f64,
    /// `[audit_id]` or `[audit_id, parent_audit_id]`, each 22 urlsafe base64 characters.
    pub audit_ids: Vec<String>,
    /// Scope and version-specific fields.
    pub scope: Scope,
}

impl TokenPayload {
    /// Keystone's payload version number (0..=10).
    pub fn payload_version(&self) -> u8 {
        self.scope.payload_version()
    }

    /// The project the token is scoped to, for every project-scoped variant.
    pub fn project_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Project { project_id }
            | Scope::Trust { project_id, .. }
            | Scope::FederatedProject { project_id, .. }
            | Scope::OAuth1 { project_id, .. }
            | Scope::ApplicationCredential { project_id, .. }
            | Scope::Continuation { project_id, .. } => Some(project_id),
            Scope::OAuth2Credential { project_id, .. } => project_id.as_deref(),
            _ => None,
        }
    }

    /// The domain the token is scoped to, for every domain-scoped variant.
    pub fn domain_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Domain { domain_id } | Scope::FederatedDomain { domain_id, .. } => {
                Some(domain_id)
            }
            Scope::OAuth2Credential { domain_id, .. } => domain_id.as_deref(),
            _ => None,
        }
    }

    /// The system scope (`"all"`), if system scoped.
    pub fn system(&self) -> Option<&str> {
        match &self.scope {
            Scope::System { system } => Some(system),
            _ => None,
        }
    }

    /// The trust id, if trust scoped (or continuing a trust-scoped token).
    pub fn trust_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Trust { trust_id, .. }
            | Scope::Continuation {
                delegation: Some(ContinuationDelegation::Trust(trust_id)),
                ..
            } => Some(trust_id),
            _ => None,
        }
    }

    /// The application credential id, if the token came from one (or continues such a token).
    pub fn app_cred_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::ApplicationCredential { app_cred_id, .. }
            | Scope::Continuation {
                delegation: Some(ContinuationDelegation::ApplicationCredential(app_cred_id)),
                ..
            } => Some(app_cred_id),
            _ => None,
        }
    }

    /// The acting service user, for a continuation token.
    pub fn actor_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Continuation { actor_id, .. } => Some(actor_id),
            _ => None,
        }
    }

    /// True for the three federated payload versions (4, 5, 6).
    pub fn is_federated(&self) -> bool {
        matches!(
            self.scope,
            Scope::FederatedUnscoped { .. }
                | Scope::FederatedProject { .. }
                | Scope::FederatedDomain { .. }
        )
    }

    /// This token's own audit id (the first entry).
    pub fn audit_id(&self) -> Option<&str> {
        self.audit_ids.first().map(String::as_str)
    }

    /// The audit id of the token this one was rescoped from, if any (the second entry).
    pub fn parent_audit_id(&self) -> Option<&str> {
        self.audit_ids.get(1).map(String::as_str)
    }

    /// `expires_at` as whole microseconds, rounded the way Python's
    /// `datetime.fromtimestamp` rounds (half to even), which is what Keystone displays.
    pub fn expires_at_micros(&self) -> i64 {
        let whole = self.expires_at.trunc();
        let micros = ((self.expires_at - whole) * 1e6).round_ties_even();
        // Float-to-int casts saturate; an expiry that far out is meaningless anyway.
        (whole as i64).saturating_mul(1_000_000) + micros as i64
    }

    /// The `expires_at` value Keystone computes for an expiry of `micros` microseconds after
    /// the epoch (`timedelta.total_seconds()`), so that a payload built from a timestamp
    /// encodes to the same bytes as Keystone's.
    pub fn expires_at_from_micros(micros: i64) -> f64 {
        micros as f64 / 1e6
    }
}

/// Converts payloads to and from msgpack for one deployment's configuration.
///
/// The `[auth] methods` list fixes the bit of each method in the methods bitmask, and
/// `[identity] default_domain_id` decides which non-UUID domain id a domain-scoped (v1)
/// payload may carry. Both must match every other node sharing the keys.
#[derive(Debug, Clone)]
pub struct PayloadCodec {
    auth_methods: Vec<String>,
    default_domain_id: String,
}

/// Keystone's default `[auth] methods` (keystone 30.0.0), in bit order: external=1,
/// password=2, token=4, oauth1=8, mapped=16, application_credential=32, ec2credential=64.
pub const DEFAULT_AUTH_METHODS: [&str; 7] = [
    "external",
    "password",
    "token",
    "oauth1",
    "mapped",
    "application_credential",
    "ec2credential",
];

/// Methods past this position would not fit the 64-bit bitmask.
const MAX_METHODS: usize = 63;

impl PayloadCodec {
    /// `auth_methods` is `[auth] methods` in configured order; `default_domain_id` is
    /// `[identity] default_domain_id`.
    pub fn new(auth_methods: Vec<String>, default_domain_id: String) -> Self {
        PayloadCodec {
            auth_methods,
            default_domain_id,
        }
    }

    /// A codec with Keystone's defaults: [`DEFAULT_AUTH_METHODS`] and domain `"default"`.
    pub fn keystone_defaults() -> Self {
        Self::new(
            DEFAULT_AUTH_METHODS.iter().map(|m| m.to_string()).collect(),
            "default".to_string(),
        )
    }

    /// The configured `[auth] methods`, in bit order.
    pub fn auth_methods(&self) -> &[String] {
        &self.auth_methods
    }

    /// The configured `[identity] default_domain_id`.
    pub fn default_domain_id(&self) -> &str {
        &self.default_domain_id
    }

    /// The bitmask for a list of method names. Unknown names are an error (Keystone silently
    /// drops them, which would mint a token that decodes without the method).
    pub fn methods_to_bits(&self, methods: &[String]) -> Result<u64, TokenError> {
        let mut bits = 0u64;
        for method in methods {
            let pos = self
                .auth_methods
                .iter()
                .position(|m| m == method)
                .ok_or_else(|| {
                    TokenError::InvalidInput(format!(
                        "auth method {method:?} is not in the configured [auth] methods"
                    ))
                })?;
            if pos >= MAX_METHODS {
                return Err(TokenError::InvalidInput(format!(
                    "auth method {method:?} is at position {pos}; at most {MAX_METHODS} methods fit the bitmask"
                )));
            }
            bits |= 1 << pos;
        }
        Ok(bits)
    }

    /// Method names for a bitmask, following Keystone's walk: from the highest configured
    /// bit down, a method is taken when the remaining value divided by its bit (truncated)
    /// is exactly 1, and its bit is then subtracted. For values within the configured bits
    /// this is a plain bit test; bits above the configured ones make Keystone skip methods,
    /// and this reproduces that too.
    pub fn bits_to_methods(&self, bits: i64) -> Vec<String> {
        let mut remaining = bits;
        let mut out = Vec::new();
        if remaining == 0 {
            return out;
        }
        let count = self.auth_methods.len().min(MAX_METHODS);
        for pos in (0..count).rev() {
            let bit = 1i64 << pos;
            if remaining / bit == 1 {
                out.push(self.auth_methods[pos].clone());
                remaining -= bit;
            }
        }
        out
    }

    /// Encodes a payload exactly as Keystone's `msgpack.packb((version,) + fields)` would.
    pub fn encode(&self, payload: &TokenPayload) -> Result<Vec<u8>, TokenError> {
        if !payload.expires_at.is_finite() {
            return Err(TokenError::InvalidInput(
                "expires_at is not a finite number".to_string(),
            ));
        }
        let methods = self.methods_to_bits(&payload.methods)?;
        let mut w = Writer(Vec::with_capacity(128));
        let version = payload.payload_version();
        let field_count: u32 = match &payload.scope {
            Scope::Unscoped => 4,
            Scope::Domain { .. } | Scope::Project { .. } | Scope::System { .. } => 5,
            Scope::Trust { .. } | Scope::OAuth1 { .. } | Scope::ApplicationCredential { .. } => 6,
            Scope::FederatedUnscoped { .. } | Scope::OAuth2Credential { .. } => 7,
            Scope::FederatedProject { .. } | Scope::FederatedDomain { .. } => 8,
            Scope::Continuation { delegation, .. } => 9 + u32::from(delegation.is_some()),
        };
        w.array(field_count + 1);
        w.uint(u64::from(version));
        w.id(&payload.user_id);
        w.uint(methods);
        // Every version has the expiry and audit ids in the middle: scope fields before them,
        // and for some versions one more after.
        let tail = self.write_scope_head(&mut w, &payload.scope)?;
        w.f64(payload.expires_at);
        w.audit_ids(&payload.audit_ids)?;
        // A continuation's subject may be written as nil only where the decoder reads nil back
        // as the chain root: with exactly two audit ids (found by the token_payload fuzzer).
        let chain_root = match payload.audit_ids.as_slice() {
            [_, root] => Some(root.as_str()),
            _ => None,
        };
        tail.write(&mut w, chain_root);
        Ok(w.0)
    }

    /// Writes the scope fields that come before the expiry, checking the whole scope first;
    /// returns the field that comes after the audit ids.
    fn write_scope_head<'s>(
        &self,
        w: &mut Writer,
        scope: &'s Scope,
    ) -> Result<ScopeTail<'s>, TokenError> {
        match scope {
            Scope::Unscoped => {}
            Scope::Domain { domain_id } => {
                if let Some(raw) = python_uuid_bytes(domain_id) {
                    w.bin(&raw);
                } else if *domain_id == self.default_domain_id {
                    w.str(domain_id);
                } else {
                    return Err(TokenError::InvalidInput(format!(
                        "domain id {domain_id:?} is neither a UUID nor the default domain id"
                    )));
                }
            }
            Scope::Project { project_id } => w.id(project_id),
            Scope::Trust {
                project_id,
                trust_id,
            } => {
                let trust = python_uuid_bytes(trust_id).ok_or_else(|| {
                    TokenError::InvalidInput(format!("trust id {trust_id:?} is not a UUID"))
                })?;
                w.id(project_id);
                return Ok(ScopeTail::Bin(trust));
            }
            Scope::FederatedUnscoped {
                group_ids,
                idp_id,
                protocol_id,
            } => {
                w.groups(group_ids);
                w.id(idp_id);
                w.str(protocol_id);
            }
            Scope::FederatedProject {
                project_id: scope_id,
                group_ids,
                idp_id,
                protocol_id,
            }
            | Scope::FederatedDomain {
                domain_id: scope_id,
                group_ids,
                idp_id,
                protocol_id,
            } => {
                w.id(scope_id);
                w.groups(group_ids);
                w.id(idp_id);
                w.str(protocol_id);
            }
            Scope::OAuth1 {
                project_id,
                access_token_id,
            } => {
                w.id(project_id);
                w.id(access_token_id);
            }
            Scope::System { system } => w.str(system),
            Scope::ApplicationCredential {
                project_id,
                app_cred_id,
            } => {
                w.id(project_id);
                return Ok(ScopeTail::Id(app_cred_id));
            }
            Scope::OAuth2Credential {
                project_id,
                domain_id,
                thumbprint,
            } => {
                w.optional_id(project_id.as_deref());
                w.optional_id(domain_id.as_deref());
                return Ok(ScopeTail::Thumbprint(thumbprint));
            }
            Scope::Continuation { .. } => return continuation_head(w, scope),
        }
        Ok(ScopeTail::None)
    }

    /// Decodes a payload of any version Keystone defines.
    pub fn decode(&self, plaintext: &[u8]) -> Result<TokenPayload, TokenError> {
        let mut reader = Reader { buf: plaintext };
        let value = reader.value(0)?;
        if !reader.buf.is_empty() {
            return Err(invalid("trailing bytes after the payload"));
        }
        let items = match value {
            Value::Array(items) if !items.is_empty() => items,
            _ => return Err(invalid("payload is not a non-empty array")),
        };
        let version = match items[0] {
            Value::Int(v) => {
                i64::try_from(v).map_err(|_| invalid("payload version is out of range"))?
            }
            _ => return Err(invalid("payload version is not an integer")),
        };
        let fields = &items[1..];
        let expected = match version {
            0 => 4,
            1 | 2 | 8 => 5,
            3 | 7 | 9 => 6,
            4 | 10 => 7,
            5 | 6 => 8,
            // A continuation of a delegated token has one more field.
            v if v == i64::from(CONTINUATION_VERSION) && fields.len() == 10 => 10,
            v if v == i64::from(CONTINUATION_VERSION) => 9,
            other => return Err(TokenError::UnsupportedPayloadVersion(other)),
        };
        if fields.len() != expected {
            return Err(TokenError::InvalidPayload(format!(
                "version {version} payload has {} fields, expected {expected}",
                fields.len()
            )));
        }

        let user_id = decode_id(&fields[0], "user id")?;
        let methods = match fields[1] {
            Value::Int(v) => self.bits_to_methods(
                i64::try_from(v).map_err(|_| invalid("methods bitmask is out of range"))?,
            ),
            _ => return Err(invalid("methods bitmask is not an integer")),
        };
        let (scope, expires, audit) = self.decode_scope(version, fields)?;
        Ok(TokenPayload {
            user_id,
            methods,
            expires_at: decode_expires(expires)?,
            audit_ids: decode_audit_ids(audit)?,
            scope,
        })
    }

    /// The scope of a payload whose version and field count are checked, with its expiry and
    /// audit id fields (where they stand depends on the version).
    fn decode_scope<'f, 'a>(
        &self,
        version: i64,
        fields: &'f [Value<'a>],
    ) -> Result<(Scope, &'f Value<'a>, &'f Value<'a>), TokenError> {
        Ok(match version {
            0 => (Scope::Unscoped, &fields[2], &fields[3]),
            1 => (
                Scope::Domain {
                    domain_id: self.decode_v1_domain(&fields[2])?,
                },
                &fields[3],
                &fields[4],
            ),
            2 => (
                Scope::Project {
                    project_id: decode_id(&fields[2], "project id")?,
                },
                &fields[3],
                &fields[4],
            ),
            3 => (
                Scope::Trust {
                    project_id: decode_id(&fields[2], "project id")?,
                    trust_id: uuid_hex(bytes_of(&fields[5], "trust id")?, "trust id")?,
                },
                &fields[3],
                &fields[4],
            ),
            4 => (
                Scope::FederatedUnscoped {
                    group_ids: decode_groups(&fields[2])?,
                    idp_id: decode_id(&fields[3], "identity provider id")?,
                    protocol_id: text_of(&fields[4], "protocol id")?,
                },
                &fields[5],
                &fields[6],
            ),
            5 | 6 => (
                decode_federated_scoped(version, fields)?,
                &fields[6],
                &fields[7],
            ),
            7 => (
                Scope::OAuth1 {
                    project_id: decode_id(&fields[2], "project id")?,
                    access_token_id: decode_id(&fields[3], "access token id")?,
                },
                &fields[4],
                &fields[5],
            ),
            8 => (
                Scope::System {
                    system: text_of(&fields[2], "system scope")?,
                },
                &fields[3],
                &fields[4],
            ),
            9 => (
                Scope::ApplicationCredential {
                    project_id: decode_id(&fields[2], "project id")?,
                    app_cred_id: decode_id(&fields[5], "application credential id")?,
                },
                &fields[3],
                &fields[4],
            ),
            10 => (
                Scope::OAuth2Credential {
                    project_id: decode_optional_id(&fields[2], "project id")?,
                    domain_id: decode_optional_id(&fields[3], "domain id")?,
                    thumbprint: decode_id(&fields[6], "thumbprint")?,
                },
                &fields[4],
                &fields[5],
            ),
            v if v == i64::from(CONTINUATION_VERSION) => {
                (decode_continuation(fields)?, &fields[3], &fields[4])
            }
            _ => unreachable!("version range checked above"),
        })
    }

    /// The v1 domain field: 16 raw bytes for a UUID, or the default domain id as text.
    fn decode_v1_domain(&self, value: &Value<'_>) -> Result<String, TokenError> {
        let bytes = bytes_of(value, "domain id")?;
        let is_default = bytes == self.default_domain_id.as_bytes();
        // A 16-byte `bin` is always a UUID. Old msgpack stored the UUID bytes as `raw`, so a
        // 16-byte `str` is a UUID too unless it is the default domain id itself.
        if bytes.len() == 16 && (matches!(value, Value::Bin(_)) || !is_default) {
            return uuid_hex(bytes, "domain id");
        }
        if is_default {
            return Ok(self.default_domain_id.clone());
        }
        Err(invalid(
            "domain id is neither a UUID nor the configured default domain id",
        ))
    }
}

/// Writes a continuation's project and checks the fields written after the audit ids.
fn continuation_head<'s>(w: &mut Writer, scope: &'s Scope) -> Result<ScopeTail<'s>, TokenError> {
    let Scope::Continuation {
        project_id,
        actor_id,
        audience,
        operation_expires_at,
        subject_audit_id,
        delegation,
    } = scope
    else {
        return Err(TokenError::InvalidInput("not a continuation".to_string()));
    };
    let delegation = match delegation {
        None => DelegationTail::None,
        Some(ContinuationDelegation::ApplicationCredential(id)) => DelegationTail::AppCred(id),
        Some(ContinuationDelegation::Trust(id)) => {
            DelegationTail::Trust(python_uuid_bytes(id).ok_or_else(|| {
                TokenError::InvalidInput(format!("trust id {id:?} is not a UUID"))
            })?)
        }
    };
    if !operation_expires_at.is_finite() {
        return Err(TokenError::InvalidInput(
            "operation_expires_at is not a finite number".to_string(),
        ));
    }
    AUDIT_B64.decode(subject_audit_id).map_err(|_| {
        TokenError::InvalidInput(format!(
            "audit id {subject_audit_id:?} is not urlsafe base64"
        ))
    })?;
    w.id(project_id);
    Ok(ScopeTail::Continuation {
        actor_id,
        audience,
        operation_expires_at: *operation_expires_at,
        subject_audit_id,
        delegation,
    })
}

/// The delegation field of a continuation payload, if there is one.
fn decode_delegation(
    value: Option<&Value<'_>>,
) -> Result<Option<ContinuationDelegation>, TokenError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Value::Array(pair) = value else {
        return Err(invalid("continuation delegation is not a list"));
    };
    match pair.as_slice() {
        [Value::Int(9), id] => Ok(Some(ContinuationDelegation::ApplicationCredential(
            decode_id(id, "application credential id")?,
        ))),
        [Value::Int(3), trust] => Ok(Some(ContinuationDelegation::Trust(uuid_hex(
            bytes_of(trust, "trust id")?,
            "trust id",
        )?))),
        _ => Err(invalid(
            "continuation delegation is neither [9, id] nor [3, trust]",
        )),
    }
}

/// Baton's continuation payload (its field count checked): a nil subject audit id is the
/// chain root, the second audit id.
fn decode_continuation(fields: &[Value<'_>]) -> Result<Scope, TokenError> {
    Ok(Scope::Continuation {
        project_id: decode_id(&fields[2], "project id")?,
        actor_id: decode_id(&fields[5], "actor id")?,
        audience: match &fields[6] {
            Value::Array(items) => items
                .iter()
                .map(|a| text_of(a, "audience"))
                .collect::<Result<_, _>>()?,
            _ => return Err(invalid("audience is not a list")),
        },
        operation_expires_at: decode_expires(&fields[7])?,
        subject_audit_id: match (&fields[8], &fields[4]) {
            (Value::Nil, Value::Array(ids)) if ids.len() == 2 => {
                AUDIT_B64.encode(bytes_of(&ids[1], "audit id")?)
            }
            (Value::Nil, _) => return Err(invalid("continuation without a chain root")),
            (v, _) => AUDIT_B64.encode(bytes_of(v, "subject audit id")?),
        },
        delegation: decode_delegation(fields.get(9))?,
    })
}

/// Versions 5 (project) and 6 (domain): the federated scope, then the user's groups, the
/// identity provider and the protocol.
fn decode_federated_scoped(version: i64, fields: &[Value<'_>]) -> Result<Scope, TokenError> {
    let scope_id = decode_id(&fields[2], "scope id")?;
    let group_ids = decode_groups(&fields[3])?;
    let idp_id = decode_id(&fields[4], "identity provider id")?;
    let protocol_id = text_of(&fields[5], "protocol id")?;
    Ok(if version == 5 {
        Scope::FederatedProject {
            project_id: scope_id,
            group_ids,
            idp_id,
            protocol_id,
        }
    } else {
        Scope::FederatedDomain {
            domain_id: scope_id,
            group_ids,
            idp_id,
            protocol_id,
        }
    })
}

/// The scope field some versions write after the audit ids.
enum ScopeTail<'s> {
    None,
    /// Version 3: the trust id as 16 raw UUID bytes.
    Bin([u8; 16]),
    /// Version 9: the application credential id pair.
    Id(&'s str),
    /// Version 10: the certificate thumbprint, always as `[false, text]`.
    Thumbprint(&'s str),
    /// Continuation: actor, audience, operation expiry, subject audit id.
    Continuation {
        actor_id: &'s str,
        audience: &'s [String],
        operation_expires_at: f64,
        subject_audit_id: &'s str,
        delegation: DelegationTail<'s>,
    },
}

/// A continuation's delegation field, checked.
enum DelegationTail<'s> {
    None,
    AppCred(&'s str),
    Trust([u8; 16]),
}

impl ScopeTail<'_> {
    /// `chain_root` is the payload's second audit id, which a continuation's subject audit id
    /// usually repeats.
    fn write(self, w: &mut Writer, chain_root: Option<&str>) {
        match self {
            ScopeTail::None => {}
            ScopeTail::Bin(raw) => w.bin(&raw),
            ScopeTail::Id(id) => w.id(id),
            ScopeTail::Thumbprint(thumbprint) => {
                // Keystone never tries the UUID form for the thumbprint.
                w.array(2);
                w.bool(false);
                w.str(thumbprint);
            }
            ScopeTail::Continuation {
                actor_id,
                audience,
                operation_expires_at,
                subject_audit_id,
                delegation,
            } => {
                w.id(actor_id);
                w.array(Writer::len_u32(audience.len()));
                for a in audience {
                    w.str(a);
                }
                // Whole seconds (what Baton writes) as an integer: 5 bytes instead of 9, which
                // keeps a one-audience token within 255 characters.
                if operation_expires_at.fract() == 0.0
                    && (0.0..=f64::from(u32::MAX)).contains(&operation_expires_at)
                {
                    w.uint(operation_expires_at as u64);
                } else {
                    w.f64(operation_expires_at);
                }
                if chain_root == Some(subject_audit_id) {
                    w.nil();
                } else {
                    // Checked to decode in `write_scope_head`.
                    let raw = AUDIT_B64.decode(subject_audit_id).unwrap_or_default();
                    w.bin(&raw);
                }
                match delegation {
                    DelegationTail::None => {}
                    DelegationTail::AppCred(id) => {
                        w.array(2);
                        w.uint(9);
                        w.id(id);
                    }
                    DelegationTail::Trust(raw) => {
                        w.array(2);
                        w.uint(3);
                        w.bin(&raw);
                    }
                }
            }
        }
    }
}

/// A fresh audit id as Keystone makes them: the 16 bytes of a random (version 4) UUID in
/// urlsafe base64 without padding, 22 characters.
pub fn random_audit_id() -> String {
    AUDIT_B64.encode(uuid::Uuid::new_v4().as_bytes())
}

/// Audit ids: urlsafe base64, no padding. Decoding, like Python's, accepts padding and does
/// not insist on zero trailing bits.
const AUDIT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Parses `text` the way Python's `uuid.UUID(text)` does and returns the 16 bytes, or `None`
/// when Python would raise. Python removes every `urn:` and then every `uuid:`, strips `{` and
/// `}` from both ends, deletes every `-`, requires exactly 32 characters, and parses the rest
/// with `int(text, 16)`, which also allows surrounding whitespace, a `+` sign, a `0x` prefix
/// and single underscores between digits. (Python also takes non-ASCII decimal digits; those
/// are not recognised here.)
pub fn python_uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let cleaned = text.replace("urn:", "").replace("uuid:", "");
    let cleaned = cleaned.trim_matches(['{', '}']).replace('-', "");
    if cleaned.chars().count() != 32 {
        return None;
    }
    python_hex_int(&cleaned).map(u128::to_be_bytes)
}

/// Python's `int(text, 16)` restricted to ASCII digits.
fn python_hex_int(text: &str) -> Option<u128> {
    let is_space = |c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c);
    let t = text.trim_matches(is_space);
    let t = t.strip_prefix('+').unwrap_or(t);
    let t = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        // After a base prefix one underscore may come before the first digit.
        Some(rest) => rest.strip_prefix('_').unwrap_or(rest),
        None => t,
    };
    if t.is_empty() || t.starts_with('_') || t.ends_with('_') || t.contains("__") {
        return None;
    }
    let mut value: u128 = 0;
    for c in t.chars().filter(|c| *c != '_') {
        let digit = c.to_digit(16)?;
        value = value.checked_mul(16)?.checked_add(u128::from(digit))?;
    }
    Some(value)
}

fn invalid(reason: &str) -> TokenError {
    TokenError::InvalidPayload(reason.to_string())
}

/// Thin wrapper over `rmp`'s writers. Writing to a `Vec` cannot fail, so the results of the
/// `rmp` calls carry no information.
struct Writer(Vec<u8>);

const VEC_WRITE: &str = "writing msgpack into a Vec cannot fail";

impl Writer {
    fn array(&mut self, len: u32) {
        rmp::encode::write_array_len(&mut self.0, len).expect(VEC_WRITE);
    }

    fn uint(&mut self, v: u64) {
        rmp::encode::write_uint(&mut self.0, v).expect(VEC_WRITE);
    }

    fn f64(&mut self, v: f64) {
        rmp::encode::write_f64(&mut self.0, v).expect(VEC_WRITE);
    }

    fn bool(&mut self, v: bool) {
        rmp::encode::write_bool(&mut self.0, v).expect(VEC_WRITE);
    }

    fn nil(&mut self) {
        rmp::encode::write_nil(&mut self.0).expect(VEC_WRITE);
    }

    fn str(&mut self, s: &str) {
        rmp::encode::write_str(&mut self.0, s).expect(VEC_WRITE);
    }

    fn bin(&mut self, b: &[u8]) {
        rmp::encode::write_bin(&mut self.0, b).expect(VEC_WRITE);
    }

    fn len_u32(len: usize) -> u32 {
        // Payloads are a few hundred bytes; anything near 4 GiB is a caller bug.
        u32::try_from(len).expect("payload list longer than u32::MAX")
    }

    /// The `[is_uuid, value]` pair.
    fn id(&mut self, id: &str) {
        self.array(2);
        match python_uuid_bytes(id) {
            Some(raw) => {
                self.bool(true);
                self.bin(&raw);
            }
            None => {
                self.bool(false);
                self.str(id);
            }
        }
    }

    /// The pair, or `[false, nil]` for an absent id (Keystone's result for `None`).
    fn optional_id(&mut self, id: Option<&str>) {
        match id {
            Some(id) => self.id(id),
            None => {
                self.array(2);
                self.bool(false);
                self.nil();
            }
        }
    }

    fn groups(&mut self, ids: &[String]) {
        self.array(Self::len_u32(ids.len()));
        for id in ids {
            self.id(id);
        }
    }

    fn audit_ids(&mut self, ids: &[String]) -> Result<(), TokenError> {
        self.array(Self::len_u32(ids.len()));
        for id in ids {
            let raw = AUDIT_B64.decode(id).map_err(|_| {
                TokenError::InvalidInput(format!("audit id {id:?} is not urlsafe base64"))
            })?;
            self.bin(&raw);
        }
        Ok(())
    }
}

/// The subset of msgpack values Keystone payloads use. Text and byte strings keep their
/// msgpack type so the few places where it matters can tell them apart.
#[derive(Debug)]
enum Value<'a> {
    Nil,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(Vec<Value<'a>>),
}

/// Deepest nesting a payload needs is 3 (payload, group list, id pair); allow some slack.
const MAX_DEPTH: usize = 8;

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TokenError> {
        if self.buf.len() < n {
            return Err(invalid("payload is truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], TokenError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    fn len8(&mut self) -> Result<usize, TokenError> {
        Ok(usize::from(self.be::<1>()?[0]))
    }

    fn len16(&mut self) -> Result<usize, TokenError> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }

    fn len32(&mut self) -> Result<usize, TokenError> {
        usize::try_from(u32::from_be_bytes(self.be()?))
            .map_err(|_| invalid("length does not fit in memory"))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, TokenError> {
        if depth > MAX_DEPTH {
            return Err(invalid("payload is nested too deeply"));
        }
        let marker = Marker::from_u8(self.be::<1>()?[0]);
        Ok(match marker {
            Marker::Null => Value::Nil,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::FixPos(v) => Value::Int(i128::from(v)),
            Marker::FixNeg(v) => Value::Int(i128::from(v)),
            Marker::U8 => Value::Int(i128::from(self.be::<1>()?[0])),
            Marker::U16 => Value::Int(i128::from(u16::from_be_bytes(self.be()?))),
            Marker::U32 => Value::Int(i128::from(u32::from_be_bytes(self.be()?))),
            Marker::U64 => Value::Int(i128::from(u64::from_be_bytes(self.be()?))),
            Marker::I8 => Value::Int(i128::from(i8::from_be_bytes(self.be()?))),
            Marker::I16 => Value::Int(i128::from(i16::from_be_bytes(self.be()?))),
            Marker::I32 => Value::Int(i128::from(i32::from_be_bytes(self.be()?))),
            Marker::I64 => Value::Int(i128::from(i64::from_be_bytes(self.be()?))),
            Marker::F32 => Value::Float(f64::from(f32::from_be_bytes(self.be()?))),
            Marker::F64 => Value::Float(f64::from_be_bytes(self.be()?)),
            Marker::FixStr(n) => Value::Str(self.take(usize::from(n))?),
            Marker::Str8 => {
                let n = self.len8()?;
                Value::Str(self.take(n)?)
            }
            Marker::Str16 => {
                let n = self.len16()?;
                Value::Str(self.take(n)?)
            }
            Marker::Str32 => {
                let n = self.len32()?;
                Value::Str(self.take(n)?)
            }
            Marker::Bin8 => {
                let n = self.len8()?;
                Value::Bin(self.take(n)?)
            }
            Marker::Bin16 => {
                let n = self.len16()?;
                Value::Bin(self.take(n)?)
            }
            Marker::Bin32 => {
                let n = self.len32()?;
                Value::Bin(self.take(n)?)
            }
            Marker::FixArray(n) => self.array(usize::from(n), depth)?,
            Marker::Array16 => {
                let n = self.len16()?;
                self.array(n, depth)?
            }
            Marker::Array32 => {
                let n = self.len32()?;
                self.array(n, depth)?
            }
            _ => return Err(invalid("unexpected msgpack type (map, ext or reserved)")),
        })
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<Value<'a>, TokenError> {
        // Every element takes at least one byte, so a longer claim is certainly truncated;
        // checking first keeps a forged length from reserving a huge allocation.
        if len > self.buf.len() {
            return Err(invalid("payload is truncated"));
        }
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }
}

fn bytes_of<'a>(value: &Value<'a>, what: &str) -> Result<&'a [u8], TokenError> {
    match value {
        Value::Str(b) | Value::Bin(b) => Ok(b),
        _ => Err(TokenError::InvalidPayload(format!(
            "{what} is not a string or bytes"
        ))),
    }
}

fn text_of(value: &Value<'_>, what: &str) -> Result<String, TokenError> {
    let bytes = bytes_of(value, what)?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| TokenError::InvalidPayload(format!("{what} is not valid UTF-8")))
}

fn uuid_hex(bytes: &[u8], what: &str) -> Result<String, TokenError> {
    if bytes.len() != 16 {
        return Err(TokenError::InvalidPayload(format!(
            "{what} should be 16 UUID bytes, found {}",
            bytes.len()
        )));
    }
    Ok(hex_lower(bytes))
}

/// An `[is_uuid, value]` pair; `Ok(None)` only for `[false, nil]`.
fn decode_optional_id(value: &Value<'_>, what: &str) -> Result<Option<String>, TokenError> {
    let pair = match value {
        Value::Array(items) if items.len() == 2 => items,
        _ => {
            return Err(TokenError::InvalidPayload(format!(
                "{what} is not an [is_uuid, value] pair"
            )))
        }
    };
    match (&pair[0], &pair[1]) {
        (Value::Bool(true), v) => uuid_hex(bytes_of(v, what)?, what).map(Some),
        (Value::Bool(false), Value::Nil) => Ok(None),
        (Value::Bool(false), v) => text_of(v, what).map(Some),
        _ => Err(TokenError::InvalidPayload(format!(
            "{what} pair does not start with a boolean"
        ))),
    }
}

fn decode_id(value: &Value<'_>, what: &str) -> Result<String, TokenError> {
    decode_optional_id(value, what)?
        .ok_or_else(|| TokenError::InvalidPayload(format!("{what} is missing")))
}

fn decode_groups(value: &Value<'_>) -> Result<Vec<String>, TokenError> {
    match value {
        Value::Array(items) => items.iter().map(|g| decode_id(g, "group id")).collect(),
        _ => Err(invalid("group ids are not a list")),
    }
}

fn decode_expires(value: &Value<'_>) -> Result<f64, TokenError> {
    let v = match *value {
        Value::Float(f) => f,
        // Python accepts an integer timestamp just as well.
        Value::Int(i) => i as f64,
        _ => return Err(invalid("expires_at is not a number")),
    };
    if !v.is_finite() {
        return Err(invalid("expires_at is not finite"));
    }
    Ok(v)
}

fn decode_audit_ids(value: &Value<'_>) -> Result<Vec<String>, TokenError> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| bytes_of(v, "audit id").map(|b| AUDIT_B64.encode(b)))
            .collect(),
        _ => Err(invalid("audit ids are not a list")),
    }
}

#[cfg(test)]
mod tests;
