//! `request token create|authorize` and `access token create` (openstackclient
//! `identity/v3/token.py`, over keystoneclient's OAuth1 managers): the consumer's side of an
//! OAuth1 delegation, signed with HMAC-SHA1 as keystoneclient signs it, printed as
//! openstackclient prints it (`expires`, `id`, `key`, `secret`; the verifier).

use baton_client::Method;
use clap::{Args, Subcommand};
use serde_json::json;

use super::api::Kind;
use super::output::{Cell, Output, OutputArgs, Value};
use super::{CliResult, Done, Identity};

/// The consumer whose secret signs the request.
#[derive(Debug, Args)]
pub struct ConsumerArgs {
    /// Consumer key (required).
    #[arg(long, required = true)]
    consumer_key: String,
    /// Consumer secret (required).
    #[arg(long, required = true)]
    consumer_secret: String,
}

/// `request ...`: only `token` is one of openstackclient's.
#[derive(Debug, Subcommand)]
pub enum RequestCmd {
    /// OAuth1 request tokens (openstack request token ...).
    Token {
        #[command(subcommand)]
        cmd: RequestTokenCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum RequestTokenCmd {
    /// Create a request token.
    Create {
        #[command(flatten)]
        consumer: ConsumerArgs,
        /// Project that consumer wants to access (name or ID) (required).
        #[arg(long, required = true)]
        project: String,
        /// Domain owning <project> (name or ID).
        #[arg(long)]
        domain: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Authorize a request token.
    Authorize {
        /// Request token to authorize (ID only) (required).
        #[arg(long, required = true)]
        request_key: String,
        /// Roles to authorize (name or ID) (repeat option to set multiple values) (required).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccessTokenCmd {
    /// Create an access token.
    Create {
        #[command(flatten)]
        consumer: ConsumerArgs,
        /// Request token to exchange for access token (required).
        #[arg(long, required = true)]
        request_key: String,
        /// Secret associated with <request-key> (required).
        #[arg(long, required = true)]
        request_secret: String,
        /// Verifier associated with <request-key> (required).
        #[arg(long, required = true)]
        verifier: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// keystoneclient's reading of a form-encoded token answer, as openstackclient prints it.
fn token_output(body: &str) -> Output {
    let pairs: Vec<(&str, &str)> = body
        .trim()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .collect();
    let get = |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let mut fields: Vec<(String, Cell)> = Vec::new();
    if let Some(at) = get("oauth_expires_at") {
        fields.push(("expires".into(), Cell::from(Value::str(at))));
    }
    let key = get("oauth_token").unwrap_or_default();
    fields.push(("id".into(), Cell::from(Value::str(key))));
    fields.push(("key".into(), Cell::from(Value::str(key))));
    let secret = get("oauth_token_secret").unwrap_or_default();
    fields.push(("secret".into(), Cell::from(Value::str(secret))));
    Output::One(fields)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// One signed `POST` to an OAuth1 token endpoint; the answer's form-encoded text.
async fn signed_post(
    id: &Identity,
    endpoint: &str,
    oauth: Vec<(String, String)>,
    secrets: (&str, Option<&str>),
    extra: Vec<(String, String)>,
) -> CliResult<String> {
    let (client_secret, token_secret) = secrets;
    Ok(id
        .post_text(&["OS-OAUTH1", endpoint], |url| {
            let auth = baton_server::oauth1_signature::sign(
                "POST",
                url,
                oauth,
                now(),
                client_secret,
                token_secret,
            );
            let mut headers = vec![("authorization".to_string(), auth)];
            headers.extend(extra);
            headers
        })
        .await?)
}

pub async fn run_request(id: &Identity, cmd: RequestCmd) -> CliResult<Done> {
    let RequestCmd::Token { cmd } = cmd;
    match cmd {
        RequestTokenCmd::Create {
            consumer:
                ConsumerArgs {
                    consumer_key,
                    consumer_secret,
                },
            project,
            domain,
            out,
        } => {
            let mut filters = Vec::new();
            if let Some(d) = domain {
                filters.push(("domain_id", id.domain_id(&d).await?));
            }
            let project_id = id.find_id(Kind::Project, &project, &filters, true).await?;
            let oauth = vec![
                ("oauth_consumer_key".to_string(), consumer_key),
                ("oauth_callback".to_string(), "oob".to_string()),
            ];
            let body = signed_post(
                id,
                "request_token",
                oauth,
                (&consumer_secret, None),
                vec![("requested-project-id".to_string(), project_id)],
            )
            .await?;
            Ok(Done::Print(token_output(&body), out))
        }
        RequestTokenCmd::Authorize {
            request_key,
            roles,
            out,
        } => {
            let mut ids = Vec::with_capacity(roles.len());
            for r in &roles {
                ids.push(json!({ "id": id.find_id(Kind::Role, r, &[], true).await? }));
            }
            let answer = id
                .call(
                    Method::PUT,
                    &["OS-OAUTH1", "authorize", &request_key],
                    &[],
                    Some(json!({ "roles": ids })),
                )
                .await?
                .unwrap_or(Value::Null);
            let verifier = answer.field("token").field("oauth_verifier");
            Ok(Done::Print(
                Output::One(vec![("oauth_verifier".into(), Cell::from(verifier))]),
                out,
            ))
        }
    }
}

pub async fn run_access_token(id: &Identity, cmd: AccessTokenCmd) -> CliResult<Done> {
    let AccessTokenCmd::Create {
        consumer: ConsumerArgs {
            consumer_key,
            consumer_secret,
        },
        request_key,
        request_secret,
        verifier,
        out,
    } = cmd;
    let oauth = vec![
        ("oauth_consumer_key".to_string(), consumer_key),
        ("oauth_token".to_string(), request_key),
        ("oauth_verifier".to_string(), verifier),
    ];
    let body = signed_post(
        id,
        "access_token",
        oauth,
        (&consumer_secret, Some(&request_secret)),
        Vec::new(),
    )
    .await?;
    Ok(Done::Print(token_output(&body), out))
}
