//! A domain's own configuration (`/v3/domains/{id}/config`) over HTTP on every database: who
//! may read and write it under Keystone's default policy, replace (201 then 200), merge, delete,
//! the sensitive `[ldap] password` kept and never shown, Keystone's 403 and 404 texts (the
//! configuration's before the domain's on reads), the defaults from this process's `[ldap]`
//! options, and the configuration deleted with its domain.
//! `tests/interop/test_domain_config.py` compares the same requests with Keystone 30.

use baton_config::domain_config::{LdapDefaults, OptionValue};
use baton_testkit::{call, error, on_every_database, IdentityServer, Personas};
use reqwest::Method;
use serde_json::json;

async fn domain_configuration(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start_with(dialect, |c| {
        let mut ldap = LdapDefaults::default();
        for (name, value) in &mut ldap.0 {
            if *name == "url" {
                *value = OptionValue::Str("ldap://configured.test".into());
            }
        }
        c.ldap = ldap;
    })
    .await;
    let p = Personas::build(&s).await;
    let admin = p.system_admin.clone();
    let (st, body) = call(
        &s,
        Method::POST,
        "domains",
        &admin,
        Some(json!({"domain": {"name": "dc"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{body}");
    let dom = body["domain"]["id"].as_str().unwrap().to_string();
    let base = format!("domains/{dom}/config");
    let ldap = json!({"url": "ldap://a", "password": "s3cret", "page_size": 5});

    // Nothing yet: the configuration's 404, for a missing domain too (after policy).
    let (st, b) = call(&s, Method::GET, &base, &admin, None).await;
    assert_eq!(
        error(st, &b, 404),
        format!("Could not find any options in domain configuration for domain {dom}.")
    );
    let (st, b) = call(&s, Method::GET, "domains/nosuch/config/ldap", &admin, None).await;
    assert_eq!(
        error(st, &b, 404),
        "Could not find group ldap in domain configuration for domain nosuch."
    );
    let (st, b) = call(
        &s,
        Method::GET,
        "domains/nosuch/config",
        &p.project_member,
        None,
    )
    .await;
    error(st, &b, 403);

    // Writing: admins only; the body is checked after the domain.
    for token in [&p.system_reader, &p.project_member, &p.domain_admin] {
        let (st, b) = call(
            &s,
            Method::PUT,
            &base,
            token,
            Some(json!({"config": {"ldap": ldap}})),
        )
        .await;
        error(st, &b, 403);
    }
    for (bad, want) in [
        (json!({"config": {}}), "No options specified"),
        (
            json!({"config": {"nova": {"x": 1}}}),
            "Group nova is not supported for domain specific configurations",
        ),
        (
            json!({"config": {"ldap": {"bogus": 1}}}),
            "Option bogus in group ldap is not supported for domain specific configurations",
        ),
        (
            json!({"config": {"ldap": {}}}),
            "The value of group ldap specified in the config should be a dictionary of options",
        ),
    ] {
        let (st, b) = call(&s, Method::PUT, &base, &admin, Some(bad)).await;
        assert_eq!(
            error(st, &b, 403),
            format!("Invalid domain specific configuration: {want}.")
        );
    }
    let (st, b) = call(
        &s,
        Method::PUT,
        "domains/nosuch/config",
        &admin,
        Some(json!({"config": {}})),
    )
    .await;
    assert_eq!(error(st, &b, 404), "Could not find domain: nosuch.");
    let (st, b) = call(
        &s,
        Method::PUT,
        &base,
        &admin,
        Some(json!({"config": {"ldap": ldap}})),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{b}");
    assert_eq!(
        b,
        json!({"config": {"ldap": {"url": "ldap://a", "page_size": 5}}}),
        "the password is never shown"
    );
    let (st, _) = call(
        &s,
        Method::PUT,
        &base,
        &admin,
        Some(json!({"config": {"ldap": ldap}})),
    )
    .await;
    assert_eq!(st.as_u16(), 200, "a replacement is a 200");

    // Reading: admins and system readers.
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{base}/ldap/url"),
        &p.system_reader,
        None,
    )
    .await;
    assert_eq!(
        (st.as_u16(), b),
        (200, json!({"config": {"url": "ldap://a"}}))
    );
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{base}/ldap/password"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &b, 404), format!("Could not find option password in group ldap in domain configuration for domain {dom}."));
    let (st, b) = call(&s, Method::GET, &base, &p.project_member, None).await;
    error(st, &b, 403);

    // Merging; a path's group or option must be the only one given and exist already.
    let (st, b) = call(
        &s,
        Method::PATCH,
        &base,
        &admin,
        Some(json!({"config": {"identity": {"driver": "ldap"}}})),
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(b["config"]["identity"], json!({"driver": "ldap"}));
    assert_eq!(b["config"]["ldap"]["url"], "ldap://a");
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{base}/ldap/url"),
        &admin,
        Some(json!({"config": {"url": "ldap://b"}})),
    )
    .await;
    assert_eq!(
        (st.as_u16(), b["config"]["ldap"]["url"].clone()),
        (200, json!("ldap://b"))
    );
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{base}/ldap/suffix"),
        &admin,
        Some(json!({"config": {"suffix": "x"}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 404),
        format!(
            "Could not find option suffix in group ldap in domain configuration for domain {dom}."
        )
    );
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{base}/ldap"),
        &admin,
        Some(json!({"config": {"identity": {"driver": "sql"}}})),
    )
    .await;
    assert_eq!(error(st, &b, 403), "Invalid domain specific configuration: request to update group ldap, but config provided contains group identity instead.");
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{base}/ldap/password"),
        &admin,
        Some(json!({"config": {"password": "n3w"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 200, "the sensitive option exists: {b}");

    // Deleting: a group or option named must be set.
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("{base}/ldap/password"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 204);
    let (st, b) = call(
        &s,
        Method::DELETE,
        &format!("{base}/ldap/password"),
        &admin,
        None,
    )
    .await;
    error(st, &b, 404);
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("{base}/identity"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 204);
    let (st, b) = call(
        &s,
        Method::DELETE,
        &format!("{base}/identity"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        error(st, &b, 404),
        format!("Could not find group identity in domain configuration for domain {dom}.")
    );
    let (st, b) = call(&s, Method::DELETE, &base, &p.system_reader, None).await;
    error(st, &b, 403);

    // Defaults: this process's values; sensitive options have none to show.
    let (st, b) = call(
        &s,
        Method::GET,
        "domains/config/ldap/url/default",
        &p.system_reader,
        None,
    )
    .await;
    assert_eq!(
        (st.as_u16(), b),
        (200, json!({"config": {"url": "ldap://configured.test"}}))
    );
    let (st, b) = call(&s, Method::GET, "domains/config/default", &admin, None).await;
    assert_eq!(st.as_u16(), 200);
    assert_eq!(
        b["config"]["identity"],
        json!({"driver": "sql", "list_limit": null})
    );
    assert_eq!(b["config"]["ldap"]["pool_retry_delay"], json!(0.1));
    assert_eq!(b["config"]["ldap"].as_object().unwrap().len(), 49);
    let (st, b) = call(
        &s,
        Method::GET,
        "domains/config/ldap/password/default",
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &b, 403), "Invalid domain specific configuration: Reading the default for option password in group ldap is not supported.");
    let (st, b) = call(
        &s,
        Method::GET,
        "domains/config/default",
        &p.project_member,
        None,
    )
    .await;
    error(st, &b, 403);

    // Security compliance: anyone, for the default domain.
    let (st, b) = call(
        &s,
        Method::GET,
        "domains/default/config/security_compliance",
        &p.project_member,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(
        b,
        json!({"config": {"security_compliance": {"password_regex": null, "password_regex_description": null}}})
    );

    // The configuration goes with its domain.
    let (st, _) = call(
        &s,
        Method::PATCH,
        &format!("domains/{dom}"),
        &admin,
        Some(json!({"domain": {"enabled": false}})),
    )
    .await;
    assert_eq!(st.as_u16(), 200);
    let (st, _) = call(&s, Method::DELETE, &format!("domains/{dom}"), &admin, None).await;
    assert_eq!(st.as_u16(), 204);
    let (st, b) = call(&s, Method::GET, &base, &admin, None).await;
    assert_eq!(
        error(st, &b, 404),
        format!("Could not find any options in domain configuration for domain {dom}.")
    );
}

on_every_database!(domain_configuration);
