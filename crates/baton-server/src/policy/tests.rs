use std::path::Path;

use baton_types::{IdName, ScopedProject, SystemScope, TokenBody, TokenUser};
use chrono::Utc;

use super::rules::{self, Expr};
use super::*;

// ----- parser --------------------------------------------------------------------------------

fn grouped(rule: &str) -> String {
    rules::parse(rule)
        .unwrap_or_else(|e| panic!("{rule:?}: {e}"))
        .to_string()
}

fn parse_error(rule: &str) -> String {
    match rules::parse(rule) {
        Ok(expr) => panic!("{rule:?} parsed as {expr}"),
        Err(e) => e,
    }
}

#[test]
fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
    let cases = [
        (
            "role:a or role:b and role:c",
            "(role:a or (role:b and role:c))",
        ),
        (
            "role:a and role:b or role:c",
            "((role:a and role:b) or role:c)",
        ),
        ("not role:a and role:b", "((not role:a) and role:b)"),
        ("not role:a or role:b", "((not role:a) or role:b)"),
        (
            "role:a AND NOT role:b Or role:c",
            "((role:a and (not role:b)) or role:c)",
        ),
        ("not not @", "(not (not @))"),
        (
            "role:a or role:b or role:c and role:d and role:e",
            "(role:a or role:b or (role:c and role:d and role:e))",
        ),
    ];
    for (rule, expected) in cases {
        assert_eq!(grouped(rule), expected, "{rule}");
    }
}

#[test]
fn parentheses_group_and_are_peeled_off_words() {
    let cases = [
        (
            "(role:a or role:b) and role:c",
            "((role:a or role:b) and role:c)",
        ),
        ("not (role:a or role:b)", "(not (role:a or role:b))"),
        ("((role:a))", "role:a"),
        ("( role:a )", "role:a"),
        (
            "(role:a and (role:b or (role:c)))",
            "(role:a and (role:b or role:c))",
        ),
        // The closing parenthesis of %(...)s is part of the check, not a group.
        ("(user_id:%(target.user.id)s)", "user_id:%(target.user.id)s"),
        ("", "@"),
        ("@", "@"),
        ("!", "!"),
        ("rule:admin_required", "rule:admin_required"),
    ];
    for (rule, expected) in cases {
        assert_eq!(grouped(rule), expected, "{rule}");
    }
}

/// Fuzzing (fuzz/corpus/policy_file): a check string nested thousands of levels deep must be
/// refused, not overflow the parser's stack.
#[test]
fn nesting_is_bounded() {
    let fine = format!(
        "{}@{}",
        "(".repeat(rules::MAX_NESTING),
        ")".repeat(rules::MAX_NESTING)
    );
    assert!(rules::parse(&fine).is_ok());
    for deep in [
        format!("{}@{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("{}@", "not ".repeat(100_000)),
        format!("{}@", "(not ".repeat(60)) + &")".repeat(60),
    ] {
        let err = parse_error(&deep);
        assert!(err.contains("nested deeper than 100 levels"), "{err}");
    }
}

/// A policy file chaining thousands of `rule:` references is refused at load with a reason (the
/// walk keeps its own stack), and so is any chain deeper than `MAX_RULE_DEPTH`; one that deep
/// loads and evaluates.
#[test]
fn rule_reference_chains_are_bounded() {
    let chain = |n: usize| {
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&format!("r{i}: rule:r{}\n", i + 1));
        }
        text.push_str(&format!("r{n}: role:member\n"));
        text
    };
    let err = load_error(&chain(5000));
    assert!(
        err.ends_with("rule references chain more than 32 rules deep"),
        "{err}"
    );
    let err = load_error(&chain(super::MAX_RULE_DEPTH));
    assert!(err.contains("more than 32 rules deep"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "policy.yaml", &chain(super::MAX_RULE_DEPTH - 1));
    let policy = Policy::load(&path, true).expect("32 rules deep loads");
    let creds = Credentials::default();
    assert!(!policy.allows("r0", &creds, &Target::new()));
}

#[test]
fn malformed_check_strings_are_refused_with_a_reason() {
    let cases = [
        ("(role:a or role:b", "unbalanced parenthesis"),
        ("role:a)", "unbalanced parenthesis"),
        ("(role:a))", "unbalanced parenthesis"),
        (")", "unbalanced parenthesis"),
        ("()", "empty parentheses"),
        ("role:a and", "expected a check at the end"),
        ("and role:a", "expected a check before 'and'"),
        ("role:a or or role:b", "expected a check before 'or'"),
        ("not", "expected a check at the end"),
        ("role:a role:b", "expected 'and' or 'or' before \"role:b\""),
        ("(role:a role:b)", "expected 'and', 'or' or ')' before \"role:b\""),
        (
            "'admin'",
            "unexpected quoted string \"admin\" (a quoted literal goes before the ':' of a check)",
        ),
        ("admin", "check \"admin\" is not of the form kind:match"),
        (":admin", "check \":admin\": empty kind"),
        (
            "user_id:%(target.user.id)d",
            "check \"user_id:%(target.user.id)d\": only %(key)s substitutions are supported, in \"%(target.user.id)d\"",
        ),
        (
            "user_id:50%",
            "check \"user_id:50%\": stray '%' in \"50%\" (write %% for a literal %)",
        ),
        (
            "user_id:%(x",
            "check \"user_id:%(x\": unterminated %( in \"%(x\"",
        ),
        ("  ", "blank check string (write \"\" to allow everyone)"),
    ];
    for (rule, expected) in cases {
        assert_eq!(parse_error(rule), expected, "{rule}");
    }
}

// ----- evaluation semantics ------------------------------------------------------------------

/// A policy holding the defaults plus `extra` rules, for evaluating single check strings.
fn with_rules(extra: &[(&str, &str)]) -> Policy {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(n, c)| ((*n).to_owned(), (*c).to_owned()))
        .collect();
    Policy::build(&extra, Some(Path::new("test.yaml"))).expect("builds")
}

fn check(rule: &str, creds: &Credentials, target: &Target) -> bool {
    with_rules(&[("t", rule)]).allows("t", creds, target)
}

fn project_creds() -> Credentials<'static> {
    Credentials {
        user_id: Some("u1"),
        user_domain_id: Some("d1"),
        project_id: Some("p1"),
        project_domain_id: Some("d1"),
        roles: vec!["Member", "reader"],
        is_admin_project: true,
        ..Credentials::default()
    }
}

#[test]
fn role_checks_ignore_case_and_may_interpolate() {
    let creds = project_creds();
    let none = Target::new();
    assert!(check("role:member", &creds, &none));
    assert!(check("role:MEMBER", &creds, &none));
    assert!(!check("role:admin", &creds, &none));
    let t = Target::new().with("target.role.name", "READER");
    assert!(check("role:%(target.role.name)s", &creds, &t));
    assert!(!check("role:%(target.missing)s", &creds, &t));
}

#[test]
fn generic_checks_compare_credentials_or_literals_with_the_target() {
    let creds = project_creds();
    let t = Target::new()
        .with("target.user.id", "u1")
        .with("target.role.name", "manager")
        .with("target.user.enabled", "True")
        .with("target.n", "1")
        .with("target.suffix", "1");
    assert!(check("user_id:%(target.user.id)s", &creds, &t));
    assert!(!check("project_id:%(target.user.id)s", &creds, &t));
    // A literal left side, quoted either way, True/False/None, or a number.
    assert!(check("'manager':%(target.role.name)s", &creds, &t));
    assert!(check("\"manager\":%(target.role.name)s", &creds, &t));
    assert!(!check("'member':%(target.role.name)s", &creds, &t));
    assert!(check("True:%(target.user.enabled)s", &creds, &t));
    assert!(!check("False:%(target.user.enabled)s", &creds, &t));
    assert!(check("1:%(target.n)s", &creds, &t));
    assert!(check("+1:%(target.n)s", &creds, &t));
    // A literal match on the right, text around a substitution, %% for a percent sign.
    assert!(check("project_id:p1", &creds, &t));
    assert!(check("user_id:u%(target.suffix)s", &creds, &t));
    assert!(!check("user_id:%%(target.suffix)s", &creds, &t));
    // A list credential matches any element (case-sensitive, unlike role:).
    assert!(check("roles:Member", &creds, &t));
    assert!(!check("roles:member", &creds, &t));
    assert!(check("is_admin_project:True", &creds, &t));
}

#[test]
fn a_missing_target_key_or_credential_makes_the_check_false() {
    let creds = project_creds();
    let empty = Target::new();
    assert!(!check("user_id:%(target.user.id)s", &creds, &empty));
    // Only the check is false: `not` of it is true, as in oslo.
    assert!(check("not user_id:%(target.user.id)s", &creds, &empty));
    // Keystone's credentials have no is_admin, so admin_required's second half never holds.
    assert!(!check("is_admin:1", &creds, &empty));
    assert!(!check("no_such_key:x", &creds, &empty));
    assert!(!check("token.methods:password", &creds, &empty));
}

#[test]
fn none_is_compared_as_python_prints_it() {
    let creds = project_creds();
    let global = Target::new().with_opt("target.role.domain_id", None::<String>);
    let local = Target::new().with_opt("target.role.domain_id", Some("d1"));
    assert_eq!(global.get("target.role.domain_id"), Some("None"));
    assert!(check("None:%(target.role.domain_id)s", &creds, &global));
    assert!(!check("None:%(target.role.domain_id)s", &creds, &local));
    // Unset plain credentials are None...
    assert!(check("domain_id:None", &creds, &global));
    assert!(check(
        "system_scope:%(target.role.domain_id)s",
        &creds,
        &global
    ));
    // ...but an absent part of the token is missing, so never matches.
    assert!(!check(
        "token.domain.id:%(target.role.domain_id)s",
        &creds,
        &global
    ));
    assert!(check("token.project.domain.id:d1", &creds, &global));
    let domain = Credentials {
        domain_id: Some("d1"),
        project_id: None,
        project_domain_id: None,
        ..project_creds()
    };
    assert!(!check("domain_id:None", &domain, &global));
    assert!(check(
        "token.domain.id:%(target.role.domain_id)s",
        &domain,
        &local
    ));
}

#[test]
fn unsupported_check_kinds_load_and_deny() {
    let creds = project_creds();
    let none = Target::new();
    assert!(!check("http://policy.example/check", &creds, &none));
    assert!(check(
        "http://policy.example/check or role:member",
        &creds,
        &none
    ));
    assert!(check("not https://x", &creds, &none));
}

#[test]
fn unknown_actions_are_denied_and_target_keys_can_be_replaced() {
    let policy = Policy::keystone_defaults();
    let admin = Credentials {
        system_scope: Some("all"),
        roles: vec!["admin"],
        ..Credentials::default()
    };
    assert!(policy.allows("identity:list_users", &admin, &Target::new()));
    assert!(!policy.allows("identity:no_such_action", &admin, &Target::new()));
    assert!(matches!(
        policy.enforce("identity:no_such_action", &admin, &Target::new()),
        Err(ApiError::Forbidden(rule)) if rule == "identity:no_such_action"
    ));
    let mut t = Target::new().with("k", "a");
    t.set("k", "b");
    assert_eq!(t.get("k"), Some("b"));
}

// ----- Keystone's defaults -------------------------------------------------------------------

#[test]
fn every_default_parses_and_every_rule_reference_resolves() {
    let policy = Policy::keystone_defaults();
    assert_eq!(
        defaults::KEYSTONE_DEFAULTS.len(),
        204,
        "Keystone 30 registers 204 rules"
    );
    assert_eq!(
        policy.rules.len(),
        defaults::KEYSTONE_DEFAULTS.len() + defaults::BATON_DEFAULTS.len()
    );
    fn resolved(expr: &Expr) -> bool {
        match expr {
            Expr::Not(e) => resolved(e),
            Expr::And(items) | Expr::Or(items) => items.iter().all(resolved),
            Expr::Rule { index, .. } => index.is_some(),
            Expr::Unsupported(_) => false,
            _ => true,
        }
    }
    for rule in &policy.rules {
        assert!(resolved(&rule.expr), "{}: {}", rule.name, rule.check);
    }
    // Spot checks against `oslopolicy-policy-generator --namespace keystone`.
    assert_eq!(
        policy.check_str("admin_required"),
        Some("role:admin or is_admin:1")
    );
    assert_eq!(
        policy.check_str("identity:get_user"),
        Some("(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and token.domain.id:%(target.user.domain_id)s) or user_id:%(target.user.id)s")
    );
    assert_eq!(
        policy.check_str("identity:validate_token"),
        Some("rule:admin_required or (role:reader and system_scope:all) or rule:service_role or rule:token_subject")
    );
    assert_eq!(policy.check_str("identity:get_region"), Some(""));
    assert_eq!(policy.check_str("identity:change_password"), None);
    assert_eq!(policy.check_str("default"), None);
}

const OTHER_USER: &str = "u-other";

struct Persona {
    name: &'static str,
    body: TokenBody,
}

enum Scope {
    System,
    Domain(&'static str),
    Project(&'static str, &'static str),
    Unscoped,
}

fn token(user: &str, user_domain: &str, scope: Scope, roles: &[&str]) -> TokenBody {
    let id_name = |id: &str| IdName {
        id: id.to_owned(),
        name: format!("{id}-name"),
    };
    let (project, domain, system) = match scope {
        Scope::System => (None, None, Some(SystemScope { all: true })),
        Scope::Domain(d) => (None, Some(id_name(d)), None),
        Scope::Project(p, d) => (
            Some(ScopedProject {
                domain: id_name(d),
                id: p.to_owned(),
                name: format!("{p}-name"),
            }),
            None,
            None,
        ),
        Scope::Unscoped => (None, None, None),
    };
    let scoped = !matches!(scope, Scope::Unscoped);
    TokenBody {
        methods: vec!["password".to_owned()],
        user: TokenUser {
            domain: id_name(user_domain),
            id: user.to_owned(),
            name: format!("{user}-name"),
            password_expires_at: None,
        },
        audit_ids: vec!["audit".to_owned()],
        expires_at: Utc::now(),
        issued_at: Utc::now(),
        project,
        is_domain: None,
        domain,
        system,
        roles: scoped.then(|| {
            roles
                .iter()
                .map(|r| IdName {
                    id: format!("{r}-id"),
                    name: (*r).to_owned(),
                })
                .collect()
        }),
        is_admin_project: None,
        catalog: None,
        application_credential: None,
        trust: None,
        oauth1: None,
        continuation: None,
        service_providers: None,
    }
}

fn persona(name: &'static str, body: TokenBody) -> Persona {
    Persona { name, body }
}

/// Roles as Keystone's bootstrap implies them: admin > manager > member > reader.
const ADMIN: &[&str] = &["admin", "manager", "member", "reader"];
const MANAGER: &[&str] = &["manager", "member", "reader"];
const MEMBER: &[&str] = &["member", "reader"];
const READER: &[&str] = &["reader"];

fn system_admin() -> Persona {
    persona("system admin", token("sa", "default", Scope::System, ADMIN))
}
fn system_reader() -> Persona {
    persona(
        "system reader",
        token("sr", "default", Scope::System, READER),
    )
}
fn project_admin() -> Persona {
    persona(
        "project admin",
        token("pa", "d1", Scope::Project("p1", "d1"), ADMIN),
    )
}
fn domain_admin() -> Persona {
    persona(
        "domain admin",
        token("da", "d1", Scope::Domain("d1"), ADMIN),
    )
}
fn domain_manager() -> Persona {
    persona(
        "domain manager",
        token("dm", "d1", Scope::Domain("d1"), MANAGER),
    )
}
fn domain_reader() -> Persona {
    persona(
        "domain reader",
        token("dr", "d1", Scope::Domain("d1"), READER),
    )
}
fn project_manager() -> Persona {
    persona(
        "project manager",
        token("pm", "d1", Scope::Project("p1", "d1"), MANAGER),
    )
}
fn project_member() -> Persona {
    persona(
        "project member",
        token("m1", "d1", Scope::Project("p1", "d1"), MEMBER),
    )
}
fn project_reader() -> Persona {
    persona(
        "project reader",
        token("r1", "d1", Scope::Project("p1", "d1"), READER),
    )
}
fn service_user() -> Persona {
    persona(
        "service user",
        token(
            "nova",
            "default",
            Scope::Project("service", "default"),
            &["service"],
        ),
    )
}
fn unscoped() -> Persona {
    persona("unscoped user", token("un", "d1", Scope::Unscoped, &[]))
}

fn user(id: &str, domain: &str) -> Target {
    Target::new()
        .with("target.user.id", id)
        .with("target.user.domain_id", domain)
}

fn project(id: &str, domain: &str) -> Target {
    Target::new()
        .with("target.project.id", id)
        .with("target.project.domain_id", domain)
}

/// The target Keystone builds for list_users, list_projects, list_role_assignments: the
/// caller's own domain, for a domain-scoped token only.
fn list_target(p: &Persona) -> Target {
    let mut t = Target::new();
    if let Some(domain) = &p.body.domain {
        t.set("target.domain_id", domain.id.as_str());
    }
    t
}

/// A grant of `role` (global unless `role_domain`) to a user of `user_domain` on a project of
/// `project_domain`.
fn grant(role: &str, role_domain: Option<&str>, user_domain: &str, project_domain: &str) -> Target {
    Target::new()
        .with("target.role.name", role)
        .with_opt("target.role.domain_id", role_domain)
        .with("target.user.id", "u-grantee")
        .with("target.user.domain_id", user_domain)
        .with("target.project.id", "p-grant")
        .with("target.project.domain_id", project_domain)
}

fn subject(user_id: &str) -> Target {
    Target::new()
        .with("target.token.user_id", user_id)
        .with("target.token.user.domain.id", "d1")
}

/// Asserts every `(action, target, allowed)` for `p`, reporting all mismatches at once.
fn expect(policy: &Policy, p: &Persona, cases: &[(&str, Target, bool)]) {
    let creds = Credentials::from_body(&p.body);
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(action, target, allowed)| policy.allows(action, &creds, target) != *allowed)
        .map(|(action, target, allowed)| {
            format!(
                "{action} {:?}: expected {}",
                target.entries,
                if *allowed { "allowed" } else { "denied" }
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}:\n{}", p.name, wrong.join("\n"));
}

#[test]
fn system_admin_may_do_everything() {
    let policy = Policy::keystone_defaults();
    let p = system_admin();
    expect(
        &policy,
        &p,
        &[
            ("identity:get_user", user(OTHER_USER, "d2"), true),
            ("identity:list_users", list_target(&p), true),
            ("identity:create_user", user("new", "d2"), true),
            ("identity:create_project", project("new", "d2"), true),
            ("identity:list_projects", list_target(&p), true),
            (
                "identity:create_grant",
                grant("admin", None, "d2", "d2"),
                true,
            ),
            ("identity:list_role_assignments", list_target(&p), true),
            (
                "identity:get_role",
                Target::new().with("target.role.name", "admin"),
                true,
            ),
            ("identity:create_role", Target::new(), true),
            ("identity:list_endpoints", Target::new(), true),
            ("identity:create_domain", Target::new(), true),
            ("identity:validate_token", subject(OTHER_USER), true),
            ("identity:revoke_token", subject(OTHER_USER), true),
            ("identity:change_password", user("sa", "default"), false),
        ],
    );
}

#[test]
fn system_reader_reads_everything_and_writes_nothing() {
    let policy = Policy::keystone_defaults();
    let p = system_reader();
    expect(
        &policy,
        &p,
        &[
            ("identity:get_user", user(OTHER_USER, "d2"), true),
            ("identity:list_users", list_target(&p), true),
            ("identity:create_user", user("new", "d1"), false),
            ("identity:update_user", user(OTHER_USER, "d1"), false),
            ("identity:create_project", project("new", "d1"), false),
            ("identity:list_projects", list_target(&p), true),
            (
                "identity:check_grant",
                grant("member", None, "d1", "d1"),
                true,
            ),
            (
                "identity:create_grant",
                grant("member", None, "d1", "d1"),
                false,
            ),
            ("identity:list_role_assignments", list_target(&p), true),
            (
                "identity:get_role",
                Target::new().with("target.role.name", "admin"),
                true,
            ),
            ("identity:create_role", Target::new(), false),
            ("identity:list_endpoints", Target::new(), true),
            ("identity:create_endpoint", Target::new(), false),
            ("identity:validate_token", subject(OTHER_USER), true),
            ("identity:check_token", subject(OTHER_USER), true),
            ("identity:revoke_token", subject(OTHER_USER), false),
        ],
    );
}

#[test]
fn project_admin_is_a_cloud_admin_under_keystone_30() {
    // admin_required is `role:admin` with no scope condition: an admin on any project passes
    // every rule that admits project scope, in every domain.
    let policy = Policy::keystone_defaults();
    let p = project_admin();
    expect(
        &policy,
        &p,
        &[
            ("identity:get_user", user(OTHER_USER, "d2"), true),
            ("identity:list_users", list_target(&p), true),
            ("identity:create_user", user("new", "d2"), true),
            ("identity:create_project", project("new", "d2"), true),
            ("identity:list_projects", list_target(&p), true),
            (
                "identity:create_grant",
                grant("admin", None, "d2", "d2"),
                true,
            ),
            ("identity:list_role_assignments", list_target(&p), true),
            ("identity:create_role", Target::new(), true),
            ("identity:list_endpoints", Target::new(), true),
            ("identity:create_domain", Target::new(), true),
            ("identity:validate_token", subject(OTHER_USER), true),
        ],
    );
}

#[test]
fn domain_admin_manages_all_domains_but_not_system_or_project_only_rules() {
    let policy = Policy::keystone_defaults();
    let p = domain_admin();
    expect(
        &policy,
        &p,
        &[
            // admin_required again: users and projects of another domain too.
            ("identity:get_user", user(OTHER_USER, "d2"), true),
            ("identity:list_users", list_target(&p), true),
            ("identity:create_user", user("new", "d2"), true),
            ("identity:create_project", project("new", "d2"), true),
            (
                "identity:create_grant",
                grant("admin", None, "d2", "d2"),
                true,
            ),
            ("identity:list_role_assignments", list_target(&p), true),
            (
                "identity:get_role",
                Target::new().with("target.role.name", "admin"),
                true,
            ),
            // Rules registered for system and project scope refuse a domain-scoped token.
            ("identity:create_role", Target::new(), false),
            ("identity:create_domain_role", Target::new(), false),
            ("identity:list_endpoints", Target::new(), false),
            ("identity:list_services", Target::new(), false),
            ("identity:create_domain", Target::new(), false),
            ("identity:create_region", Target::new(), false),
            ("identity:validate_token", subject(OTHER_USER), true),
        ],
    );
}

#[test]
fn domain_manager_manages_its_own_domain() {
    let policy = Policy::keystone_defaults();
    let p = domain_manager();
    expect(
        &policy,
        &p,
        &[
            ("identity:get_user", user(OTHER_USER, "d1"), true),
            ("identity:get_user", user(OTHER_USER, "d2"), false),
            ("identity:list_users", list_target(&p), true),
            ("identity:create_user", user("new", "d1"), true),
            ("identity:create_user", user("new", "d2"), false),
            // create_user's target is the request body: no domain_id in it, no match.
            (
                "identity:create_user",
                Target::new().with("target.user.name", "x"),
                false,
            ),
            ("identity:create_project", project("new", "d1"), true),
            ("identity:create_project", project("new", "d2"), false),
            ("identity:list_projects", list_target(&p), true),
            (
                "identity:create_grant",
                grant("member", None, "d1", "d1"),
                true,
            ),
            (
                "identity:create_grant",
                grant("reader", Some("d1"), "d1", "d1"),
                true,
            ),
            (
                "identity:create_grant",
                grant("admin", None, "d1", "d1"),
                false,
            ),
            (
                "identity:create_grant",
                grant("member", None, "d2", "d1"),
                false,
            ),
            (
                "identity:create_grant",
                grant("member", None, "d1", "d2"),
                false,
            ),
            ("identity:list_role_assignments", list_target(&p), true),
            (
                "identity:get_role",
                Target::new().with("target.role.name", "member"),
                true,
            ),
            (
                "identity:get_role",
                Target::new().with("target.role.name", "admin"),
                false,
            ),
            ("identity:list_roles", Target::new(), true),
            ("identity:create_role", Target::new(), false),
            ("identity:validate_token", subject(OTHER_USER), false),
        ],
    );
}

#[test]
fn domain_reader_reads_its_own_domain() {
    let policy = Policy::keystone_defaults();
    let p = domain_reader();
    expect(
        &policy,
        &p,
        &[
            ("identity:get_user", user(OTHER_USER, "d1"), true),
            ("identity:get_user", user(OTHER_USER, "d2"), false),
            ("identity:list_users", list_target(&p), true),
            ("identity:create_user", user("new", "d1"), false),
            ("identity:get_project", project("p1", "d1"), true),
            ("identity:get_project", project("p9", "d2"), false),
            ("identity:list_projects", list_target(&p), true),
            ("identity:create_project", project("new", "d1"), false),
            ("identity:list_role_assignments", list_target(&p), true),
            (
                "identity:check_grant",
                grant("member", None, "d1", "d1"),
                true,
            ),
            (
                "identity:create_grant",
                grant("member", None, "d1", "d1"),
                false,
            ),
            ("identity:list_roles", Target::new(), false),
        ],
    );
}

#[test]
fn project_member_and_reader_see_themselves_and_their_project_only() {
    let policy = Policy::keystone_defaults();
    for p in [project_member(), project_reader(), project_manager()] {
        let me = p.body.user.id.clone();
        // get_role's manager branch checks only the role's name, not the token's domain.
        let manager = p.body.role_names().any(|r| r == "manager");
        expect(
            &policy,
            &p,
            &[
                ("identity:get_user", user(&me, "d1"), true),
                ("identity:get_user", user(OTHER_USER, "d1"), false),
                ("identity:update_user", user(&me, "d1"), false),
                ("identity:list_users", list_target(&p), false),
                ("identity:create_user", user("new", "d1"), false),
                ("identity:list_user_projects", user(&me, "d1"), true),
                ("identity:list_user_projects", user(OTHER_USER, "d1"), false),
                (
                    "identity:list_groups_for_user",
                    user(&me, "d1").with("user_id", me.as_str()),
                    true,
                ),
                (
                    "identity:list_groups_for_user",
                    user(OTHER_USER, "d1").with("user_id", OTHER_USER),
                    false,
                ),
                ("identity:get_project", project("p1", "d1"), true),
                ("identity:get_project", project("p2", "d1"), false),
                ("identity:create_project", project("new", "d1"), false),
                ("identity:list_projects", list_target(&p), false),
                (
                    "identity:get_domain",
                    Target::new().with("target.domain.id", "d1"),
                    true,
                ),
                (
                    "identity:get_domain",
                    Target::new().with("target.domain.id", "d2"),
                    false,
                ),
                (
                    "identity:create_grant",
                    grant("member", None, "d1", "d1"),
                    false,
                ),
                ("identity:list_role_assignments", list_target(&p), false),
                (
                    "identity:get_role",
                    Target::new().with("target.role.name", "member"),
                    manager,
                ),
                (
                    "identity:get_role",
                    Target::new().with("target.role.name", "admin"),
                    false,
                ),
                ("identity:list_roles", Target::new(), false),
                ("identity:create_role", Target::new(), false),
                ("identity:list_endpoints", Target::new(), false),
                ("identity:get_region", Target::new(), true),
                ("identity:validate_token", subject(&me), true),
                ("identity:validate_token", subject(OTHER_USER), false),
                ("identity:check_token", subject(&me), true),
                ("identity:revoke_token", subject(&me), true),
                ("identity:revoke_token", subject(OTHER_USER), false),
            ],
        );
    }
}

#[test]
fn unscoped_token_counts_as_project_scope() {
    let policy = Policy::keystone_defaults();
    let p = unscoped();
    expect(
        &policy,
        &p,
        &[
            ("identity:get_user", user("un", "d1"), true),
            ("identity:get_user", user(OTHER_USER, "d1"), false),
            ("identity:list_user_projects", user("un", "d1"), true),
            ("identity:list_endpoints", Target::new(), false),
        ],
    );
}

#[test]
fn service_role_validates_tokens_and_nothing_else() {
    let policy = Policy::keystone_defaults();
    let p = service_user();
    expect(
        &policy,
        &p,
        &[
            ("identity:validate_token", subject(OTHER_USER), true),
            // check_token and revoke_token do not name the service role.
            ("identity:check_token", subject(OTHER_USER), false),
            ("identity:revoke_token", subject(OTHER_USER), false),
            ("identity:get_user", user(OTHER_USER, "default"), false),
            ("identity:list_users", list_target(&p), false),
            ("identity:list_endpoints", Target::new(), false),
            ("identity:list_revoke_events", Target::new(), true),
        ],
    );
}

#[test]
fn token_api_decisions_use_the_subject_tokens_user() {
    let policy = Policy::keystone_defaults();
    let member = project_member().body;
    let mine = token("m1", "d1", Scope::Unscoped, &[]);
    let theirs = token(OTHER_USER, "d1", Scope::Unscoped, &[]);
    let service = service_user().body;
    let decide = |action, caller: &TokenBody, subject: &TokenBody| {
        enforce_on_subject(&policy, action, caller, subject).is_ok()
    };
    assert!(decide("identity:validate_token", &member, &mine));
    assert!(!decide("identity:validate_token", &member, &theirs));
    assert!(decide("identity:validate_token", &service, &theirs));
    assert!(!decide("identity:check_token", &service, &theirs));
    assert!(decide("identity:revoke_token", &member, &mine));
    assert!(matches!(
        enforce_on_subject(&policy, "identity:revoke_token", &service, &theirs),
        Err(ApiError::Forbidden(rule)) if rule == "identity:revoke_token"
    ));
}

#[test]
fn credentials_from_a_token() {
    let body = token("u1", "d1", Scope::Project("p1", "d2"), MEMBER);
    let creds = Credentials::from_body(&body);
    assert_eq!(creds.user_id, Some("u1"));
    assert_eq!(creds.user_domain_id, Some("d1"));
    assert_eq!(creds.project_id, Some("p1"));
    assert_eq!(creds.project_domain_id, Some("d2"));
    assert_eq!(creds.domain_id, None);
    assert_eq!(creds.system_scope, None);
    assert_eq!(creds.roles, ["member", "reader"]);
    assert_eq!(creds.role_ids, ["member-id", "reader-id"]);
    assert!(creds.is_admin_project);
    assert_eq!(creds.scope(), Scopes::PROJECT);

    let body = token("u1", "d1", Scope::Domain("d1"), READER);
    let creds = Credentials::from_body(&body);
    assert_eq!(creds.domain_id, Some("d1"));
    assert!(!creds.is_admin_project);
    assert_eq!(creds.scope(), Scopes::DOMAIN);

    let body = token("u1", "d1", Scope::System, READER);
    let creds = Credentials::from_body(&body);
    assert_eq!(creds.system_scope, Some("all"));
    assert_eq!(creds.scope(), Scopes::SYSTEM);
    assert!(check(
        "system:all and token.system.all:True",
        &creds,
        &Target::new()
    ));
}

// ----- policy files --------------------------------------------------------------------------

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn load_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "policy.yaml", text);
    let message = Policy::load(&path, true).unwrap_err().to_string();
    let prefix = format!("{}: ", path.display());
    assert!(!message.contains('\n'), "{message}");
    message
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{message} names the file"))
        .to_owned()
}

#[test]
fn yaml_file_overrides_and_adds_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "policy.yaml",
        "# operators' overrides\n\
         \"identity:list_users\": \"rule:project_member_can_list\"\n\
         project_member_can_list: role:member and project_id:p1\n\
         'identity:create_user': '!'\n",
    );
    let policy = Policy::load(&path, true).unwrap();
    let member = project_creds();
    let admin = Credentials {
        system_scope: Some("all"),
        roles: vec!["admin"],
        ..Credentials::default()
    };
    let none = Target::new();
    assert!(policy.allows("identity:list_users", &member, &none));
    assert!(!policy.allows("identity:create_user", &admin, &user("x", "d1")));
    // Untouched defaults stay.
    assert!(policy.allows("identity:create_project", &admin, &project("x", "d1")));
    assert!(!Policy::keystone_defaults().allows("identity:list_users", &member, &none));
    assert_eq!(
        policy.check_str("project_member_can_list"),
        Some("role:member and project_id:p1")
    );
}

#[test]
fn json_file_works_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "policy.json",
        "{\n\t\"identity:get_region\": \"role:admin\",\n\t\"identity:list_endpoints\": \"\"\n}\n",
    );
    let policy = Policy::load(&path, true).unwrap();
    let member = project_creds();
    assert!(!policy.allows("identity:get_region", &member, &Target::new()));
    assert!(policy.allows("identity:list_endpoints", &member, &Target::new()));
}

#[test]
fn an_override_keeps_the_registered_scope_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "policy.yaml", "\"identity:create_role\": \"@\"\n");
    let policy = Policy::load(&path, true).unwrap();
    let admin = domain_admin();
    let domain = Credentials::from_body(&admin.body);
    let project = project_creds();
    assert!(!policy.allows("identity:create_role", &domain, &Target::new()));
    assert!(policy.allows("identity:create_role", &project, &Target::new()));
}

#[test]
fn a_default_rule_answers_references_to_undefined_rules() {
    let creds = project_creds();
    let none = Target::new();
    let without = with_rules(&[("t", "rule:undefined")]);
    assert!(!without.allows("t", &creds, &none));
    let with = with_rules(&[("t", "rule:undefined"), ("default", "role:member")]);
    assert!(with.allows("t", &creds, &none));
    // An action without a rule is still denied: Keystone refuses unregistered actions.
    assert!(!with.allows("identity:undefined", &creds, &none));
}

#[test]
fn missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let policy = Policy::load(&path, false).expect("the default path may be absent");
    assert_eq!(
        policy.check_str("identity:get_region"),
        Some(""),
        "defaults apply"
    );
    let message = Policy::load(&path, true).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}: cannot read policy file: ", path.display())),
        "{message}"
    );
}

#[test]
fn empty_files_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for text in ["", "# nothing yet\n", "{}", "null"] {
        let path = write(&dir, "policy.yaml", text);
        let policy = Policy::load(&path, true).unwrap();
        assert_eq!(
            policy.rules.len(),
            defaults::KEYSTONE_DEFAULTS.len() + defaults::BATON_DEFAULTS.len(),
            "{text:?}"
        );
    }
}

#[test]
fn file_errors_are_one_line_naming_file_and_rule() {
    assert_eq!(
        load_error("\"identity:get_user\": \"(role:admin\"\n"),
        "rule \"identity:get_user\": unbalanced parenthesis"
    );
    assert_eq!(
        load_error("{\"identity:get_user\": \"role:admin or\"}"),
        "rule \"identity:get_user\": expected a check at the end"
    );
    assert_eq!(
        load_error("\"identity:get_user\":\n"),
        "rule \"identity:get_user\": the check string must be a string (oslo reads a null as \"allow everyone\": write \"\" for that)"
    );
    assert_eq!(
        load_error("\"identity:get_user\": [\"role:admin\"]\n"),
        "rule \"identity:get_user\": the check string must be a string (oslo reads a null as \"allow everyone\": write \"\" for that)"
    );
    assert_eq!(
        load_error("a: rule:b\nb: rule:c\nc: rule:a\n"),
        "rule \"a\": rule references loop back to it: a -> b -> c -> a"
    );
    assert_eq!(
        load_error("default: rule:nowhere\n"),
        "rule \"default\": rule references loop back to it: default -> default"
    );
    assert_eq!(
        load_error("- role:admin\n"),
        "expected a mapping of rule names to check strings"
    );
    assert!(load_error("\"a\": \"@\"\n\"a\": \"!\"\n").starts_with("not valid YAML: "));
    assert!(load_error("a: [unclosed\n").starts_with("not valid YAML: "));
}
