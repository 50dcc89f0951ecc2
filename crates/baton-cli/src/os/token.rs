//! `token issue` and `token revoke` (openstackclient `identity/v3/token.py`).

use clap::Subcommand;

use super::output::{Output, OutputArgs, Value};
use super::{CliResult, Done, Identity};

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue new token (prints it: it is a credential).
    Issue {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Revoke existing token.
    Revoke {
        /// Token to be deleted.
        #[arg(value_name = "TOKEN")]
        token: String,
    },
}

pub async fn run(id: &Identity, cmd: TokenCmd) -> CliResult<Done> {
    match cmd {
        TokenCmd::Issue { out } => {
            let a = &id.access;
            // The fields present, in sorted order, as openstackclient builds them.
            let mut data: Vec<(&str, Value)> = vec![
                (
                    "expires",
                    Value::str(a.expires_at().format("%Y-%m-%dT%H:%M:%S%z").to_string()),
                ),
                ("id", Value::str(a.token().expose())),
                ("user_id", Value::str(a.user_id())),
            ];
            if let Some(p) = a.project_id() {
                data.push(("project_id", Value::str(p)));
            }
            if let Some(d) = a.domain_id() {
                data.push(("domain_id", Value::str(d)));
            }
            if a.system_scoped() {
                data.push(("system", Value::str("all")));
            }
            data.sort_by(|x, y| x.0.cmp(y.0));
            Ok(Done::Print(Output::one(data), out))
        }
        TokenCmd::Revoke { token } => {
            id.revoke(&token).await?;
            Ok(Done::Nothing)
        }
    }
}
