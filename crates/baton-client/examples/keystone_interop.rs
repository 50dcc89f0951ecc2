//! baton-client against a real identity service, driven by
//! `tests/interop/test_client_keystone.py` (which starts the real Keystone and keystonemiddleware
//! and asserts on what this prints).
//!
//! ```text
//! keystone_interop SCENARIO_JSON
//! ```
//!
//! The scenario names the identity URL, the users' passwords, two user tokens (a fresh one and
//! one that has expired) and the URL of an app behind keystonemiddleware; the program prints one
//! JSON object of observations: password auth (v3 path rule and generic discovery), scopes,
//! catalog lookups, token validation with and without `allow_expired`, calls through the
//! middleware with and without the service-token wrapper, the `[service_user]` start-up check
//! and `OS_*` loading. Tokens and passwords are never printed.

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does

use std::process::ExitCode;
use std::sync::Arc;

use baton_client::{
    AuthPlugin, AuthToken, CloudLoader, DomainRef, EndpointFilter, Error, Interface, Password,
    Scope, ServiceTokenAuth, ServiceUserConfig, Session, Url, UserRef, UserToken, ValidateOptions,
};
use serde_json::{json, Value};

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("scenario lacks {k}"))
}

fn password(url: &Url, user: &str, pw: &str, scope: Scope) -> Password {
    Password::new(
        url.clone(),
        UserRef::name(user, DomainRef::Name("Default".into())),
        pw,
    )
    .with_scope(scope)
}

fn project(name: &str) -> Scope {
    Scope::project_name(name, DomainRef::Name("Default".into()))
}

fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Unauthorized { .. } => "Unauthorized",
        Error::TokenNotFound { .. } => "TokenNotFound",
        Error::AuthenticationFailed { .. } => "AuthenticationFailed",
        Error::Startup { .. } => "Startup",
        Error::Discovery { .. } => "Discovery",
        Error::Http { .. } => "Http",
        _ => "Other",
    }
}

fn err_json(e: &Error) -> Value {
    let mut v = json!({"error": error_kind(e), "message": e.to_string()});
    if let Error::Unauthorized { refused, .. } = e {
        v["service_token_sent"] = json!(refused.service_token_sent);
    }
    v
}

async fn call(session: &Session, url: &Url) -> Value {
    match session.get(url, "/anything").send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let mut body: Value = resp.json().await.unwrap_or(Value::Null);
            // The echo app returns every X-* header, the tokens too: never print them.
            if let Some(h) = body["headers"].as_object_mut() {
                h.remove("x-auth-token");
                h.remove("x-service-token");
            }
            json!({"status": status, "headers": body["headers"]})
        }
        Err(e) => err_json(&e),
    }
}

async fn run(sc: Value) -> Result<Value, Error> {
    let v3 = Url::parse(s(&sc, "auth_url")).expect("auth_url");
    let root = Url::parse(s(&sc, "root_url")).expect("root_url");
    let ksm = Url::parse(s(&sc, "ksm_url")).expect("ksm_url");
    let (admin_pw, nova_pw, plain_pw) = (
        s(&sc, "admin_password"),
        s(&sc, "nova_password"),
        s(&sc, "plain_password"),
    );
    let mut out = json!({});

    // Password auth with the v3 path rule; the catalog.
    let admin = Session::new(Arc::new(password(&v3, "admin", admin_pw, project("admin"))))?;
    let a = admin.get_access().await?;
    out["password"] = json!({
        "user_id": a.user_id(), "user_name": a.user_name(), "project_id": a.project_id(),
        "project_name": a.project_name(), "roles": a.role_names(), "methods": a.methods(),
        "expires_at": a.expires_at().to_rfc3339(),
        "identity_public": a.endpoint_for("identity", Interface::Public, Some("RegionOne")).map(|u| u.to_string()),
        "identity_nowhere": a.endpoint_for("identity", Interface::Public, Some("NoRegion")).map(|u| u.to_string()),
        "session_identity": admin.identity_endpoint(Interface::Public, None).await?.to_string(),
        "catalog_types": a.catalog().iter().map(|c| c.service_type.clone()).collect::<Vec<_>>(),
    });
    // Generic password: discovery from the root URL.
    let generic = Session::new(Arc::new(
        password(&root, "admin", admin_pw, project("admin")).with_discovery(true),
    ))?;
    out["generic"] = json!({"project_id": generic.get_access().await?.project_id()});
    // Other scopes.
    let sys = Session::new(Arc::new(password(&v3, "admin", admin_pw, Scope::System)))?;
    let unscoped = Session::new(Arc::new(password(&v3, "admin", admin_pw, Scope::Unscoped)))?;
    let u = unscoped.get_access().await?;
    out["scopes"] = json!({
        "system": sys.get_access().await?.system_scoped(),
        "unscoped_is_scoped": u.is_scoped(),
        "unscoped_catalog": u.catalog().len(),
    });
    // A wrong password.
    let wrong = Session::new(Arc::new(password(
        &v3,
        "admin",
        "not-the-password",
        project("admin"),
    )))?;
    out["wrong_password"] = match wrong.get_access().await {
        Ok(_) => json!("accepted"),
        Err(e) => err_json(&e),
    };

    // Validation by the service user (as the auth_token middleware does).
    let nova_plugin: Arc<dyn AuthPlugin> =
        Arc::new(password(&v3, "nova", nova_pw, project("service")));
    let nova = Session::new(nova_plugin.clone())?;
    let fresh = AuthToken::new(s(&sc, "fresh_user_token"));
    let expired = AuthToken::new(s(&sc, "expired_user_token"));
    let plain_opts = ValidateOptions {
        interface: Interface::Public,
        ..ValidateOptions::default()
    };
    let allow = ValidateOptions {
        allow_expired: true,
        ..plain_opts.clone()
    };
    out["validate"] = json!({
        "fresh": nova.validate_token(&fresh, &plain_opts).await.map(|a| a.user_name().to_string()).map_err(|e| err_json(&e)).unwrap_or_else(|e| e.to_string()),
        "expired": match nova.validate_token(&expired, &plain_opts).await { Ok(_) => json!("accepted"), Err(e) => err_json(&e) },
        "expired_allowed": match nova.validate_token(&expired, &allow).await { Ok(a) => json!(a.user_name()), Err(e) => err_json(&e) },
    });

    // Calls through keystonemiddleware, with and without the service-token wrapper.
    let plain_plugin: Arc<dyn AuthPlugin> =
        Arc::new(password(&v3, "plain", plain_pw, project("service")));
    let as_user = |t: &AuthToken| -> Arc<dyn AuthPlugin> { Arc::new(UserToken::new(t.clone())) };
    let with_service = |t: &AuthToken, svc: &Arc<dyn AuthPlugin>| -> Arc<dyn AuthPlugin> {
        Arc::new(ServiceTokenAuth::new(as_user(t), svc.clone()))
    };
    out["ksm"] = json!({
        "fresh_user_only": call(&admin.with_auth(as_user(&fresh)), &ksm).await,
        "expired_user_only": call(&admin.with_auth(as_user(&expired)), &ksm).await,
        "expired_user+service": call(&admin.with_auth(with_service(&expired, &nova_plugin)), &ksm).await,
        "expired_user+nonservice": call(&admin.with_auth(with_service(&expired, &plain_plugin)), &ksm).await,
    });

    // [service_user] as Nova and Cinder read it, checked at start-up.
    let section = |url: &str, user: &str, pw: &str| {
        format!(
            "[service_user]\nsend_service_user_token = true\nauth_type = password\nauth_url = {url}\n\
             username = {user}\npassword = {pw}\nuser_domain_name = Default\nproject_name = service\n\
             project_domain_name = Default\n"
        )
    };
    let check = |text: String| async move {
        let ini = baton_config::IniFile::parse(&text, "nova.conf").expect("ini");
        let cfg = ServiceUserConfig::from_ini(&ini, "service_user")
            .expect("section")
            .expect("enabled");
        match cfg.validate_at_startup().await {
            Ok(c) => json!({"user": c.user_name, "roles": c.roles}),
            Err(e) => err_json(&e),
        }
    };
    let root_text = root.as_str().trim_end_matches('/').to_string();
    out["service_user"] = json!({
        "nova": check(section(&root_text, "nova", nova_pw)).await,
        "plain": check(section(&root_text, "plain", plain_pw)).await,
        "wrong_url": check(section(&format!("{root_text}/nowhere"), "nova", nova_pw)).await,
    });

    // OS_* variables, as the CLI reads them.
    let env = [
        ("OS_AUTH_URL", root_text.as_str()),
        ("OS_USERNAME", "admin"),
        ("OS_PASSWORD", admin_pw),
        ("OS_PROJECT_NAME", "admin"),
        ("OS_USER_DOMAIN_NAME", "Default"),
        ("OS_PROJECT_DOMAIN_NAME", "Default"),
        ("OS_REGION_NAME", "RegionOne"),
    ];
    let cloud = CloudLoader::new(env, None).search_path(Vec::new()).load()?;
    let session = cloud.session()?;
    let identity = session
        .get_endpoint(&EndpointFilter::new("identity").region(cloud.region_name.as_deref()))
        .await?;
    out["os_env"] = json!({
        "project_id": session.get_access().await?.project_id(),
        "identity": identity.to_string(),
    });
    Ok(out)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(arg) = std::env::args().nth(1) else {
        eprintln!("usage: keystone_interop SCENARIO_JSON");
        return ExitCode::from(2);
    };
    let sc: Value = match serde_json::from_str(&arg) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("keystone_interop: the scenario is not JSON: {e}");
            return ExitCode::from(2);
        }
    };
    match run(sc).await {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keystone_interop: {e}");
            ExitCode::FAILURE
        }
    }
}
