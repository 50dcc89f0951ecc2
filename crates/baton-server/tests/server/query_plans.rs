//! Every statement the hot paths run uses an index, on SQLite, PostgreSQL and MariaDB (issue
//! 18): token issue and validation, the role-assignment listing, `/v3/auth/projects`, a user's
//! projects, lookups of projects and domains by name, and the project writes that walk the tree.
//! The statements are the ones sqlx actually ran (its `sqlx::query` events), each asked of the
//! database with `Store::explain`; none may read a whole table that grows with the cloud.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use super::change_feed::validate_on;
use baton_store::Dialect;
use baton_testkit::{call, on_every_database, project_scope, IdentityServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

const PW: &str = "Plan-Secret-4kT";

/// Tables that stay small whatever the size of the cloud (roles, the catalog, Baton's own
/// bookkeeping, system grants): a full read of them is fine.
const SMALL_TABLES: &[&str] = &[
    "role",
    "implied_role",
    "role_option",
    "region",
    "service",
    "endpoint",
    "endpoint_group",
    "project_endpoint",
    "project_endpoint_group",
    "system_assignment",
    "alembic_version",
    "baton_change",
    "baton_key_set",
    "baton_node",
    "whitelisted_config",
    "sensitive_config",
    "config_register",
    // Federation service providers: a handful per cloud, read whole with the catalog snapshot.
    "service_provider",
];

/// The statements sqlx ran while `recording` was on.
#[derive(Clone, Default)]
struct Statements {
    recording: Arc<Mutex<bool>>,
    seen: Arc<Mutex<BTreeSet<String>>>,
}

struct StatementVisitor {
    summary: String,
    statement: String,
}

impl Visit for StatementVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_string(),
            "db.statement" => self.statement = value.to_string(),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" || !*self.recording.lock().unwrap() {
            return;
        }
        let mut v = StatementVisitor {
            summary: String::new(),
            statement: String::new(),
        };
        event.record(&mut v);
        // sqlx leaves `db.statement` empty when the summary is the whole statement.
        let sql = if v.statement.trim().is_empty() {
            v.summary
        } else {
            v.statement
        };
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        self.seen.lock().unwrap().insert(sql);
    }
}

/// One recorder per test process (nextest runs each test in its own).
fn statements() -> &'static Statements {
    static ST: OnceLock<Statements> = OnceLock::new();
    ST.get_or_init(|| {
        let st = Statements::default();
        let subscriber = tracing_subscriber::registry().with(st.clone());
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber per process");
        st
    })
}

/// `alias -> table` for the tables a statement names after FROM or JOIN.
fn aliases(sql: &str) -> HashMap<String, String> {
    const NOT_ALIAS: &[&str] = &[
        "WHERE", "LEFT", "RIGHT", "INNER", "JOIN", "ON", "ORDER", "GROUP", "LIMIT", "SET", "AS",
        "UNION", "FOR", "USING", "HAVING", "OFFSET", "CROSS", "OUTER",
    ];
    let clean = |w: &str| {
        w.trim_matches(|c: char| c == '"' || c == '`' || c == ',' || c == '(' || c == ')')
            .to_string()
    };
    let words: Vec<&str> = sql.split_whitespace().collect();
    let mut out = HashMap::new();
    for (i, w) in words.iter().enumerate() {
        if !(w.eq_ignore_ascii_case("FROM") || w.eq_ignore_ascii_case("JOIN")) {
            continue;
        }
        let Some(table) = words.get(i + 1).map(|t| clean(t)) else {
            continue;
        };
        out.insert(table.clone(), table.clone());
        let mut next = words.get(i + 2).copied();
        if next.is_some_and(|n| n.eq_ignore_ascii_case("AS")) {
            next = words.get(i + 3).copied();
        }
        if let Some(alias) = next.map(clean) {
            if !alias.is_empty() && !NOT_ALIAS.iter().any(|k| k.eq_ignore_ascii_case(&alias)) {
                out.insert(alias, table);
            }
        }
    }
    out
}

async fn hot_paths_use_indexes(d: Dialect) {
    let rec = statements();
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    let send = |method: Method, path: String, body: Option<Value>, want: StatusCode| {
        let (s, admin) = (&s, admin.clone());
        async move {
            let (st, got) = call(s, method, &path, &admin, body).await;
            assert_eq!(st, want, "{path}: {got}");
            got
        }
    };
    let id_of = |v: Value, key: &str| v[key]["id"].as_str().expect("id").to_string();
    let user = s.create_user("planner", PW, "default").await;
    s.add_secrets(&[PW]);
    let member = s.role_id("member").await;
    let mut projects = Vec::new();
    let mut parent: Option<String> = None;
    for name in ["root", "mid", "leaf"] {
        let mut body = json!({"project": {"name": name, "domain_id": "default"}});
        if let Some(p) = &parent {
            body["project"]["parent_id"] = json!(p);
        }
        let id = id_of(
            send(
                Method::POST,
                "projects".into(),
                Some(body),
                StatusCode::CREATED,
            )
            .await,
            "project",
        );
        parent = Some(id.clone());
        projects.push(id);
    }
    let (root, leaf) = (projects[0].clone(), projects[2].clone());
    let mut groups = Vec::new();
    for name in ["g1", "g2", "g3"] {
        let body = json!({"group": {"name": name, "domain_id": "default"}});
        let g = id_of(
            send(
                Method::POST,
                "groups".into(),
                Some(body),
                StatusCode::CREATED,
            )
            .await,
            "group",
        );
        send(
            Method::PUT,
            format!("groups/{g}/users/{user}"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
        groups.push(g);
    }
    for path in [
        format!("projects/{leaf}/users/{user}/roles/{member}"),
        format!(
            "OS-INHERIT/projects/{root}/groups/{}/roles/{member}/inherited_to_projects",
            groups[0]
        ),
        format!(
            "OS-INHERIT/domains/default/groups/{}/roles/{member}/inherited_to_projects",
            groups[1]
        ),
        format!("projects/{root}/tags/blue"),
    ] {
        let want = if path.contains("/tags/") {
            StatusCode::CREATED
        } else {
            StatusCode::NO_CONTENT
        };
        send(Method::PUT, path, None, want).await;
    }

    // The hot paths, each recorded.
    *rec.recording.lock().unwrap() = true;
    let mine = s.token("planner", PW, project_scope(&leaf)).await;
    s.state.tokens.invalidate_caches();
    assert_eq!(
        validate_on(&s, &s.base, &admin, &mine).await,
        StatusCode::OK
    );
    for path in [
        format!("role_assignments?user.id={user}&effective"),
        format!("role_assignments?user.id={user}&effective&include_names"),
        format!("role_assignments?scope.project.id={leaf}&effective"),
        format!("role_assignments?scope.project.id={root}&include_subtree=true"),
        format!("role_assignments?group.id={}", groups[0]),
        format!("users/{user}/projects"),
        format!("users/{user}/groups"),
        format!("groups/{}/users", groups[0]),
        "projects?name=leaf".to_string(),
        format!("projects?parent_id={root}"),
        "projects?domain_id=default&name=mid".to_string(),
        "domains?name=Default".to_string(),
        "users?domain_id=default&name=planner".to_string(),
        format!("projects/{leaf}?parents_as_ids"),
    ] {
        send(Method::GET, path, None, StatusCode::OK).await;
    }
    for path in ["auth/projects", "auth/domains"] {
        let (st, body) = call(&s, Method::GET, path, &mine, None).await;
        assert_eq!(st, StatusCode::OK, "{path}: {body}");
    }
    // Writes that walk the tree: up (a new leaf's depth), down (disabling a parent).
    let body = json!({"project": {"name": "below", "domain_id": "default", "parent_id": leaf}});
    send(
        Method::POST,
        "projects".into(),
        Some(body),
        StatusCode::CREATED,
    )
    .await;
    let body = json!({"project": {"enabled": false}});
    send(
        Method::PATCH,
        format!("projects/{root}"),
        Some(body),
        StatusCode::FORBIDDEN,
    )
    .await;
    *rec.recording.lock().unwrap() = false;

    let seen = rec.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|q| q.contains("assignment")),
        "no statement was recorded: {seen:?}"
    );
    let mut scans: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut explained = 0;
    for sql in &seen {
        let head = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if !matches!(head.as_str(), "SELECT" | "UPDATE" | "DELETE" | "WITH") {
            continue;
        }
        let steps = s
            .store
            .explain(sql)
            .await
            .unwrap_or_else(|e| panic!("explain {sql}: {e}"));
        explained += 1;
        let names = aliases(sql);
        for step in steps.iter().filter(|st| st.full_scan) {
            let table = names.get(&step.table).unwrap_or(&step.table);
            if !SMALL_TABLES.contains(&table.as_str()) {
                scans
                    .entry(sql.clone())
                    .or_default()
                    .push(step.detail.clone());
            }
        }
    }
    assert!(explained > 20, "only {explained} statements explained");
    assert!(
        scans.is_empty(),
        "{d:?}: statements reading a whole table:\n{}",
        scans
            .iter()
            .map(|(q, why)| format!("{q}\n    {}", why.join("\n    ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
    s.stop().await;
}

on_every_database!(hot_paths_use_indexes);

/// Issue 15 item 2: a node that has validated one token of a user validates the user's next
/// token without reading users, passwords, projects or assignments (the snapshot answers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_node_validates_new_tokens_without_identity_reads() {
    let rec = statements();
    let s = IdentityServer::start(Dialect::Sqlite).await;
    let admin = s.admin_token().await;
    let user = s.create_user("warm", PW, "default").await;
    s.add_secrets(&[PW]);
    let project = s.create_project("warm-p", "default").await;
    s.grant_project(&user, &project, "member").await;
    let first = s.token("warm", PW, project_scope(&project)).await;
    let second = s.token("warm", PW, project_scope(&project)).await;
    // Issuing cached both answers; the validations below must build theirs.
    s.state.tokens.invalidate_caches();
    assert_eq!(
        validate_on(&s, &s.base, &admin, &first).await,
        StatusCode::OK
    );
    rec.seen.lock().unwrap().clear();
    *rec.recording.lock().unwrap() = true;
    assert_eq!(
        validate_on(&s, &s.base, &admin, &second).await,
        StatusCode::OK
    );
    *rec.recording.lock().unwrap() = false;
    let identity_tables = [
        "user",
        "local_user",
        "nonlocal_user",
        "password",
        "project",
        "assignment",
        "system_assignment",
        "user_group_membership",
    ];
    let seen = rec.seen.lock().unwrap().clone();
    let reads: Vec<&String> = seen
        .iter()
        .filter(|sql| {
            aliases(sql)
                .values()
                .any(|t| identity_tables.contains(&t.as_str()))
        })
        .collect();
    assert!(
        reads.is_empty(),
        "the snapshot should have answered: {reads:?}"
    );
    assert!(s.state.tokens.snapshot_bytes() > 0);
    s.stop().await;
}
