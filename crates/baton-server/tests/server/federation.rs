//! Federation service providers (`/v3/OS-FEDERATION/service_providers`) over HTTP on every
//! database: the newer validator's 400s before policy, who may read and write them, the 404 and
//! 409, and the enabled ones listed in every token (at once on this node, for a token
//! validated before the change too); identity providers, protocols and mappings likewise.
//! `tests/interop/test_federation.py` and `test_identity_providers.py` compare the same
//! requests with Keystone 30.

use baton_testkit::{call, error, on_every_database, IdentityServer, Personas};
use reqwest::Method;
use serde_json::json;

const SPS: &str = "OS-FEDERATION/service_providers";

async fn service_providers(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let p = Personas::build(&s).await;
    let admin = p.system_admin.clone();
    let good = json!({"service_provider": {"auth_url": "https://sp.test/v3/auth", "sp_url": "https://sp.test/ecp"}});

    // The schema first (a member's bad body is a 400), then policy.
    for (bad, want) in [
        (json!({}), "'service_provider' is a required property".to_string()),
        (
            json!({"service_provider": {"sp_url": "https://x"}}),
            "Invalid input for field/attribute service_provider. Value: {'sp_url': 'https://x'}. 'auth_url' is a required property".to_string(),
        ),
        (
            json!({"service_provider": {"auth_url": "nourl", "sp_url": "https://x"}}),
            "Invalid input for field/attribute auth_url. Value: nourl. 'nourl' does not match '^[a-zA-Z0-9+.-]+:.+'".to_string(),
        ),
        (
            json!({"service_provider": {"auth_url": "https://x", "sp_url": "https://x", "other": 1}}),
            "Invalid input for field/attribute service_provider. Value: {'auth_url': 'https://x', 'other': 1, 'sp_url': 'https://x'}. Additional properties are not allowed ('other' was unexpected)".to_string(),
        ),
    ] {
        let (st, b) = call(&s, Method::PUT, &format!("{SPS}/sp1"), &p.project_member, Some(bad)).await;
        assert_eq!(error(st, &b, 400), want);
    }
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{SPS}/sp1"),
        &p.system_reader,
        Some(good.clone()),
    )
    .await;
    error(st, &b, 403);

    // A token before any service provider lists none.
    let before = p.project_member.clone();
    assert!(s.validation(&before).await.1["token"]
        .get("service_providers")
        .is_none());

    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{SPS}/sp1"),
        &admin,
        Some(good.clone()),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{b}");
    assert_eq!(
        b["service_provider"],
        json!({"id": "sp1", "enabled": false, "description": null, "auth_url": "https://sp.test/v3/auth",
               "sp_url": "https://sp.test/ecp", "relay_state_prefix": "ss:mem:",
               "links": {"self": b["service_provider"]["links"]["self"]}})
    );
    assert!(b["service_provider"]["links"]["self"]
        .as_str()
        .unwrap()
        .ends_with("/v3/OS-FEDERATION/service_providers/sp1"));
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{SPS}/sp1"),
        &admin,
        Some(good.clone()),
    )
    .await;
    assert_eq!(error(st, &b, 409), "Conflict occurred attempting to store service_provider - Duplicate entry found with ID sp1.");
    // Disabled: not in tokens.
    assert!(s.validation(&before).await.1["token"]
        .get("service_providers")
        .is_none());

    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{SPS}/sp1"),
        &admin,
        Some(json!({"service_provider": {"enabled": true, "description": "remote"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(
        (
            b["service_provider"]["enabled"].clone(),
            b["service_provider"]["description"].clone()
        ),
        (json!(true), json!("remote"))
    );
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{SPS}/sp1"),
        &admin,
        Some(json!({"service_provider": {}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 400),
        "Invalid input for field/attribute service_provider. Value: {}. {} should be non-empty"
    );
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{SPS}/nosuch"),
        &admin,
        Some(json!({"service_provider": {"enabled": true}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 404),
        "Could not find Service Provider: nosuch."
    );

    // Enabled: in every token, a token validated before included.
    let want = json!([{"auth_url": "https://sp.test/v3/auth", "id": "sp1", "sp_url": "https://sp.test/ecp"}]);
    assert_eq!(
        s.validation(&before).await.1["token"]["service_providers"],
        want
    );
    let fresh = s.admin_token().await;
    assert_eq!(
        s.validation(&fresh).await.1["token"]["service_providers"],
        want
    );

    // Reading: admins and system readers.
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{SPS}?enabled=true"),
        &p.system_reader,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(b["service_providers"].as_array().unwrap().len(), 1);
    assert!(b["service_providers"][0]["links"]["self"]
        .as_str()
        .unwrap()
        .ends_with("/v3/OS-FEDERATION/service_providers/sp1"));
    let (_, b) = call(
        &s,
        Method::GET,
        &format!("{SPS}?enabled=false"),
        &admin,
        None,
    )
    .await;
    assert_eq!(b["service_providers"], json!([]));
    let (st, b) = call(&s, Method::GET, SPS, &p.project_member, None).await;
    error(st, &b, 403);
    let (st, b) = call(&s, Method::GET, &format!("{SPS}/nosuch"), &admin, None).await;
    assert_eq!(
        error(st, &b, 404),
        "Could not find Service Provider: nosuch."
    );

    let (st, _) = call(&s, Method::DELETE, &format!("{SPS}/sp1"), &admin, None).await;
    assert_eq!(st.as_u16(), 204);
    let (st, b) = call(&s, Method::DELETE, &format!("{SPS}/sp1"), &admin, None).await;
    error(st, &b, 404);
    assert!(s.validation(&before).await.1["token"]
        .get("service_providers")
        .is_none());
}

on_every_database!(service_providers);

const IDPS: &str = "OS-FEDERATION/identity_providers";
const MAPPINGS: &str = "OS-FEDERATION/mappings";

/// Identity providers, their protocols and mappings, on every database: who may read and
/// write them, the schema's 400s (before policy for identity providers and protocols, after it
/// for mappings, every mapping violation at once), 404s and 409s, the domain made for an
/// identity provider that names none, remote ids unique across identity providers, and a
/// domain's identity providers deleted with it.
async fn identity_providers(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let p = Personas::build(&s).await;
    let admin = p.system_admin.clone();
    let rules = json!([{"local": [{"user": {"name": "{0}"}}], "remote": [{"type": "UserName"}]}]);

    // Mappings: policy, then the mapping schema.
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{MAPPINGS}/m1"),
        &p.system_reader,
        Some(json!({"mapping": {"rules": rules}})),
    )
    .await;
    error(st, &b, 403);
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{MAPPINGS}/m1"),
        &admin,
        Some(
            json!({"mapping": {"rules": [{"local": [{"group": {"name": "g"}}], "remote": []}, 5]}}),
        ),
    )
    .await;
    assert_eq!(
        error(st, &b, 400),
        "5 is not of type 'object'\n[] should be non-empty\n{'name': 'g'} is not valid under any of the given schemas\n"
    );
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{MAPPINGS}/m1"),
        &admin,
        Some(json!({"mapping": {"rules": rules}})),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{b}");
    assert_eq!(
        (&b["mapping"]["rules"], &b["mapping"]["schema_version"]),
        (&rules, &json!("1.0"))
    );
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{MAPPINGS}/m1"),
        &admin,
        Some(json!({"mapping": {"rules": rules}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 409),
        "Conflict occurred attempting to store mapping - Duplicate entry."
    );
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{MAPPINGS}/m1"),
        &admin,
        Some(json!({"mapping": {"rules": rules, "schema_version": "3.0"}})),
    )
    .await;
    assert_eq!(
        (st.as_u16(), &b["mapping"]["schema_version"]),
        (200, &json!("3.0")),
        "{b}"
    );
    let (st, b) = call(&s, Method::GET, MAPPINGS, &p.system_reader, None).await;
    assert_eq!(
        (st.as_u16(), b["mappings"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{b}"
    );
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{MAPPINGS}/m1"),
        &p.project_member,
        None,
    )
    .await;
    error(st, &b, 403);
    let (st, b) = call(&s, Method::GET, &format!("{MAPPINGS}/nosuch"), &admin, None).await;
    assert_eq!(error(st, &b, 404), "Could not find mapping: nosuch.");

    // Identity providers: the schema before policy.
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{IDPS}/idp1"),
        &p.project_member,
        Some(json!({"identity_provider": {"remote_ids": ["a", "a"]}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 400),
        "Invalid input for field/attribute remote_ids. Value: ['a', 'a']. ['a', 'a'] has non-unique elements"
    );
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{IDPS}/idp1"),
        &p.domain_admin,
        Some(json!({})),
    )
    .await;
    error(st, &b, 403);
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{IDPS}/idp1"),
        &admin,
        Some(json!({"identity_provider": {"domain_id": "nosuch"}})),
    )
    .await;
    assert_eq!(error(st, &b, 404), "Could not find domain: nosuch.");
    let good = json!({"identity_provider": {"domain_id": p.domain_id, "remote_ids": ["https://b", "https://a"],
                                            "enabled": true, "authorization_ttl": 5}});
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{IDPS}/idp1"),
        &admin,
        Some(good.clone()),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{b}");
    assert_eq!(
        b["identity_provider"]["remote_ids"],
        json!(["https://b", "https://a"])
    );
    let (st, b) = call(&s, Method::PUT, &format!("{IDPS}/idp1"), &admin, Some(good)).await;
    assert_eq!(
        error(st, &b, 409),
        "Conflict occurred attempting to store identity_provider - Duplicate entry: idp1."
    );
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{IDPS}/idp2"),
        &admin,
        Some(json!({"identity_provider": {"remote_ids": ["https://a"]}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 409),
        "Conflict occurred attempting to store identity_provider - Duplicate remote ID: https://a."
    );
    // Longer than the columns hold: refused, not a database error.
    let long = "i".repeat(65);
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{IDPS}/{long}"),
        &admin,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        error(st, &b, 400),
        "Invalid input: identity provider ids are at most 64 characters."
    );
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{IDPS}/idp3"),
        &admin,
        Some(json!({"identity_provider": {"authorization_ttl": 2_147_483_648_i64}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 400),
        "Invalid input for field/attribute authorization_ttl. Value: 2147483648. 2147483648 is greater than the maximum of 2147483647"
    );
    // No domain named: one is made for it (and none is left behind by the refused one above).
    let domains_before = call(&s, Method::GET, "domains", &admin, None).await.1["domains"]
        .as_array()
        .unwrap()
        .len();
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{IDPS}/idp2"),
        &admin,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (st.as_u16(), &b["identity_provider"]["enabled"]),
        (201, &json!(false)),
        "{b}"
    );
    let auto = b["identity_provider"]["domain_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, d) = call(&s, Method::GET, &format!("domains/{auto}"), &admin, None).await;
    assert_eq!(d["domain"]["name"], json!(auto));
    assert_eq!(
        d["domain"]["description"],
        json!("Auto generated federated domain for Identity Provider: idp2")
    );
    let domains_after = call(&s, Method::GET, "domains", &admin, None).await.1["domains"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(domains_after, domains_before + 1);

    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{IDPS}/idp1"),
        &p.system_reader,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(
        b["identity_provider"]["remote_ids"],
        json!(["https://a", "https://b"])
    );
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{IDPS}?enabled=true"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    let listed: Vec<&str> = b["identity_providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["idp1"]);
    assert!(b["identity_providers"][0]["links"]["protocols"]
        .as_str()
        .unwrap()
        .ends_with("/identity_providers/idp1/protocols"));
    let (st, b) = call(&s, Method::GET, IDPS, &p.project_member, None).await;
    error(st, &b, 403);
    let (st, b) = call(&s, Method::PATCH, &format!("{IDPS}/idp1"), &admin,
        Some(json!({"identity_provider": {"remote_ids": ["https://c", "https://a"], "authorization_ttl": null}}))).await;
    assert_eq!(
        (st.as_u16(), &b["identity_provider"]["authorization_ttl"]),
        (200, &json!(null)),
        "{b}"
    );
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{IDPS}/idp1"),
        &admin,
        Some(json!({"identity_provider": {"domain_id": "x"}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 400),
        "Invalid input for field/attribute identity_provider. Value: {'domain_id': 'x'}. Additional properties are not allowed ('domain_id' was unexpected)"
    );
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{IDPS}/nosuch"),
        &admin,
        Some(json!({"identity_provider": {"enabled": true}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 404),
        "Could not find Identity Provider: nosuch."
    );

    // Protocols.
    let proto = format!("{IDPS}/idp1/protocols");
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{proto}/saml2"),
        &admin,
        Some(json!({"protocol": {}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 400),
        "Invalid input for field/attribute protocol. Value: {}. 'mapping_id' is a required property"
    );
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{proto}/saml2"),
        &p.system_reader,
        Some(json!({"protocol": {"mapping_id": "m1"}})),
    )
    .await;
    error(st, &b, 403);
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{proto}/saml2"),
        &admin,
        Some(json!({"protocol": {"mapping_id": "nosuch"}})),
    )
    .await;
    assert_eq!(error(st, &b, 400), "Invalid mapping id: nosuch");
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{IDPS}/nosuch/protocols/saml2"),
        &admin,
        Some(json!({"protocol": {"mapping_id": "m1"}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 404),
        "Could not find Identity Provider: nosuch."
    );
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{proto}/saml2"),
        &admin,
        Some(json!({"protocol": {"mapping_id": "m1", "remote_id_attribute": "iss"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{b}");
    assert_eq!(b["protocol"]["mapping_id"], json!("m1"));
    assert!(b["protocol"].get("remote_id_attribute").is_none(), "{b}");
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{proto}/saml2"),
        &admin,
        Some(json!({"protocol": {"mapping_id": "m1"}})),
    )
    .await;
    assert_eq!(error(st, &b, 409), "Conflict occurred attempting to store federation_protocol - Duplicate entry found with ID saml2.");
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{proto}/saml2"),
        &admin,
        Some(json!({"protocol": {"mapping_id": "m1"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    let (st, b) = call(&s, Method::GET, &proto, &p.system_reader, None).await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(
        b["protocols"][0]["remote_id_attribute"],
        json!("iss"),
        "an update without it keeps it"
    );
    assert_eq!(b["protocols"][0]["idp_id"], json!("idp1"));
    let (st, b) = call(&s, Method::GET, &format!("{proto}/nosuch"), &admin, None).await;
    assert_eq!(
        error(st, &b, 404),
        "Could not find federated protocol nosuch for Identity Provider: idp1."
    );
    let (st, b) = call(
        &s,
        Method::DELETE,
        &format!("{proto}/saml2"),
        &p.system_member,
        None,
    )
    .await;
    error(st, &b, 403);

    // Deleting: the identity provider takes its protocols; a domain its identity providers.
    let (st, _) = call(&s, Method::DELETE, &format!("{IDPS}/idp1"), &admin, None).await;
    assert_eq!(st.as_u16(), 204);
    let (_, b) = call(&s, Method::GET, &proto, &admin, None).await;
    assert_eq!(b["protocols"], json!([]));
    let (st, b) = call(&s, Method::DELETE, &format!("{IDPS}/idp1"), &admin, None).await;
    error(st, &b, 404);
    let (st, _) = call(
        &s,
        Method::PATCH,
        &format!("domains/{auto}"),
        &admin,
        Some(json!({"domain": {"enabled": false}})),
    )
    .await;
    assert_eq!(st.as_u16(), 200);
    let (st, _) = call(&s, Method::DELETE, &format!("domains/{auto}"), &admin, None).await;
    assert_eq!(st.as_u16(), 204);
    let (st, b) = call(&s, Method::GET, &format!("{IDPS}/idp2"), &admin, None).await;
    error(st, &b, 404);
    let (st, _) = call(&s, Method::DELETE, &format!("{MAPPINGS}/m1"), &admin, None).await;
    assert_eq!(st.as_u16(), 204);

    // The older names of /v3/auth/projects and /v3/auth/domains.
    let (st, b) = call(
        &s,
        Method::GET,
        "OS-FEDERATION/projects",
        &p.project_member,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert!(b["links"]["self"]
        .as_str()
        .unwrap()
        .ends_with("/v3/OS-FEDERATION/projects"));
    assert_eq!(b["projects"][0]["id"], json!(p.project_id));
}

on_every_database!(identity_providers);
