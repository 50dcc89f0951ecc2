//! `trust create|list|show|delete` (openstackclient `identity/v3/trust.py`).

use baton_client::Method;
use clap::Subcommand;
use serde_json::json;

use super::api::{CallError, Kind};
use super::output::{Cell, Output, OutputArgs, Value};
use super::{CliError, CliResult, Done, Identity};

#[derive(Debug, Subcommand)]
pub enum TrustCmd {
    /// Create new trust.
    Create {
        /// User that is delegating authorization (name or ID).
        #[arg(value_name = "TRUSTOR_USER")]
        trustor: String,
        /// User that is assuming authorization (name or ID).
        #[arg(value_name = "TRUSTEE_USER")]
        trustee: String,
        /// Project being delegated (name or ID) (required).
        #[arg(long, required = true)]
        project: String,
        /// Roles to authorize (name or ID) (repeat option to set multiple values, required).
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        /// Tokens generated from the trust will represent <trustor> (defaults to False).
        #[arg(long)]
        impersonate: bool,
        /// Sets an expiration date for the trust (format of YYYY-mm-ddTHH:MM:SS).
        #[arg(long)]
        expiration: Option<String>,
        /// Domain the project belongs to (name or ID).
        #[arg(long)]
        project_domain: Option<String>,
        /// Domain that contains <trustor> (name or ID).
        #[arg(long)]
        trustor_domain: Option<String>,
        /// Domain that contains <trustee> (name or ID).
        #[arg(long)]
        trustee_domain: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete trust(s).
    Delete {
        /// Trust(s) to delete.
        #[arg(required = true, value_name = "TRUST")]
        trusts: Vec<String>,
    },
    /// List trusts.
    List {
        /// Trustor user to filter (name or ID).
        #[arg(long)]
        trustor: Option<String>,
        /// Trustee user to filter (name or ID).
        #[arg(long)]
        trustee: Option<String>,
        /// Domain that contains <trustor> (name or ID).
        #[arg(long)]
        trustor_domain: Option<String>,
        /// Domain that contains <trustee> (name or ID).
        #[arg(long)]
        trustee_domain: Option<String>,
        /// Only list trusts related to the authenticated user.
        #[arg(long)]
        auth_user: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Display trust details.
    Show {
        /// Trust to display.
        #[arg(value_name = "TRUST")]
        trust: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// openstackclient's `_format_trust` columns, with the SDK's attribute names.
const COLUMNS: [(&str, &str); 10] = [
    ("expires_at", "expires_at"),
    ("id", "id"),
    ("is_impersonation", "impersonation"),
    ("project_id", "project_id"),
    ("redelegated_trust_id", "redelegated_trust_id"),
    ("redelegation_count", "redelegation_count"),
    ("remaining_uses", "remaining_uses"),
    ("roles", "roles"),
    ("trustee_user_id", "trustee_user_id"),
    ("trustor_user_id", "trustor_user_id"),
];

fn format_trust(t: &Value) -> Output {
    Output::one(COLUMNS.iter().map(|(col, key)| (*col, t.field(key))))
}

pub async fn run(id: &Identity, cmd: TrustCmd) -> CliResult<Done> {
    match cmd {
        TrustCmd::Create {
            trustor,
            trustee,
            project,
            roles,
            impersonate,
            expiration,
            project_domain,
            trustor_domain,
            trustee_domain,
            out,
        } => {
            let trustor_id = user_id(id, &trustor, &trustor_domain).await?;
            let trustee_id = user_id(id, &trustee, &trustee_domain).await?;
            let project_id = in_domain(id, Kind::Project, &project, &project_domain).await?;
            let mut role_refs = Vec::with_capacity(roles.len());
            for role in &roles {
                let rid = id.find_id(Kind::Role, role, &[], true).await?;
                role_refs.push(json!({ "id": rid }));
            }
            let mut body = json!({
                "trustor_user_id": trustor_id,
                "trustee_user_id": trustee_id,
                "project_id": project_id,
                "roles": role_refs,
                "impersonation": impersonate,
            });
            if let Some(e) = expiration {
                body["expires_at"] = json!(expiry(&e)?);
            }
            let created = id
                .call(
                    Method::POST,
                    &["OS-TRUST", "trusts"],
                    &[],
                    Some(json!({ "trust": body })),
                )
                .await?
                .unwrap_or(Value::Null);
            Ok(Done::Print(format_trust(&created.field("trust")), out))
        }
        TrustCmd::Delete { trusts } => delete(id, &trusts).await,
        TrustCmd::List {
            trustor,
            trustee,
            trustor_domain,
            trustee_domain,
            auth_user,
            out,
        } => {
            let filter = Filter {
                trustor,
                trustee,
                trustor_domain,
                trustee_domain,
                auth_user,
            };
            list(id, filter, out).await
        }
        TrustCmd::Show { trust, out } => {
            Ok(Done::Print(format_trust(&find(id, &trust).await?), out))
        }
    }
}

/// openstackclient's `strptime('%Y-%m-%dT%H:%M:%S')`, sent as the SDK serializes the datetime.
fn expiry(text: &str) -> CliResult<String> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .map_err(|_| {
            CliError(format!(
                "time data '{text}' does not match format '%Y-%m-%dT%H:%M:%S'"
            ))
        })
}

/// A resource id, looked up within a domain when one is given; a 403 passes the text through
/// (a trustor may not look users up), as openstackclient does.
pub(super) async fn in_domain(
    id: &Identity,
    kind: Kind,
    name_or_id: &str,
    domain: &Option<String>,
) -> CliResult<String> {
    let filters = match domain {
        Some(d) => match id.find_id(Kind::Domain, d, &[], true).await {
            Ok(did) => vec![("domain_id", did)],
            Err(e) => return Err(e),
        },
        None => Vec::new(),
    };
    id.find_id(kind, name_or_id, &filters, true).await
}

async fn user_id(id: &Identity, user: &str, domain: &Option<String>) -> CliResult<String> {
    in_domain(id, Kind::User, user, domain).await
}

/// openstacksdk's `find_trust`: the trust by id.
async fn find(id: &Identity, trust: &str) -> CliResult<Value> {
    match id.get(&["OS-TRUST", "trusts", trust], &[]).await {
        Ok(v) => Ok(v.field("trust")),
        Err(CallError::Api(a)) if a.status == 404 => {
            Err(CliError(format!("No Trust found for {trust}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// `trust delete`: each trust in turn; the failures are reported together at the end.
async fn delete(id: &Identity, trusts: &[String]) -> CliResult<Done> {
    super::delete_each(
        trusts,
        "trust with name or ID",
        "trusts",
        |trust| async move {
            let t = find(id, &trust).await?;
            let tid = t.str_field("id").unwrap_or(&trust).to_string();
            id.call(Method::DELETE, &["OS-TRUST", "trusts", &tid], &[], None)
                .await?;
            Ok(())
        },
    )
    .await
}

/// The filters of `trust list`.
struct Filter {
    trustor: Option<String>,
    trustee: Option<String>,
    trustor_domain: Option<String>,
    trustee_domain: Option<String>,
    auth_user: bool,
}

async fn list(id: &Identity, f: Filter, out: OutputArgs) -> CliResult<Done> {
    if f.auth_user
        && (f.trustor.is_some()
            || f.trustor_domain.is_some()
            || f.trustee.is_some()
            || f.trustee_domain.is_some())
    {
        return Err(CliError(
            "--authuser cannot be used with --trustee or --trustor".into(),
        ));
    }
    if f.trustee_domain.is_some() && f.trustee.is_none() {
        return Err(CliError(
            "Using --trustee-domain mandates the use of --trustee".into(),
        ));
    }
    if f.trustor_domain.is_some() && f.trustor.is_none() {
        return Err(CliError(
            "Using --trustor-domain mandates the use of --trustor".into(),
        ));
    }
    let path = ["OS-TRUST", "trusts"];
    let data: Vec<Value> = if f.auth_user {
        let me = id.access.user_id().to_string();
        let mut all = id
            .list(&path, "trusts", &[("trustor_user_id", me.clone())])
            .await?;
        all.extend(id.list(&path, "trusts", &[("trustee_user_id", me)]).await?);
        // A dict keyed by id: first position, last value.
        let mut out: Vec<Value> = Vec::new();
        for t in all {
            match out
                .iter_mut()
                .find(|o| o.str_field("id") == t.str_field("id"))
            {
                Some(slot) => *slot = t,
                None => out.push(t),
            }
        }
        out
    } else {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(u) = &f.trustor {
            query.push(("trustor_user_id", user_id(id, u, &f.trustor_domain).await?));
        }
        if let Some(u) = &f.trustee {
            query.push(("trustee_user_id", user_id(id, u, &f.trustee_domain).await?));
        }
        id.list(&path, "trusts", &query).await?
    };
    let rows: Vec<Vec<Cell>> = data
        .iter()
        .map(|t| {
            [
                "id",
                "expires_at",
                "impersonation",
                "project_id",
                "trustee_user_id",
                "trustor_user_id",
            ]
            .iter()
            .map(|k| Cell::from(t.field(k)))
            .collect()
        })
        .collect();
    let headers = [
        "ID",
        "Expires At",
        "Impersonation",
        "Project ID",
        "Trustee User ID",
        "Trustor User ID",
    ];
    Ok(Done::Print(Output::list(&headers, rows), out))
}
