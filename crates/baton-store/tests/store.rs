//! Storage tests, run on every backend: SQLite in a temp dir, and throwaway databases on the
//! machine's PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306). Override the server URLs
//! with BATON_TEST_POSTGRES_URL / BATON_TEST_MYSQL_URL.

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does

#[path = "store/sqlite_file_mode.rs"]
mod sqlite_file_mode;

use baton_store::{
    Assignment, AssignmentType, BootstrapSpec, Dialect, Project, RevocationEvent, Store,
    SyncOutcome, User,
};
use chrono::{NaiveDateTime, Utc};

/// A database that exists for one test and is dropped afterwards.
struct TestDb {
    store: Store,
    url: String,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    async fn new(dialect: Dialect) -> TestDb {
        let name = format!(
            "baton_t_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        match dialect {
            Dialect::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite:///{}/keystone.db", dir.path().display());
                let store = Store::connect(&url).await.unwrap();
                TestDb {
                    store,
                    url,
                    cleanup: None,
                    _dir: Some(dir),
                }
            }
            Dialect::Postgres => {
                let server = std::env::var("BATON_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432".into());
                admin_exec(
                    &format!("{server}/postgres"),
                    &format!("CREATE DATABASE {name}"),
                )
                .await;
                let url = format!("{server}/{name}");
                let store = Store::connect(&url).await.unwrap();
                TestDb {
                    store,
                    url,
                    cleanup: Some((
                        format!("{server}/postgres"),
                        format!("DROP DATABASE {name} WITH (FORCE)"),
                    )),
                    _dir: None,
                }
            }
            Dialect::MySql => {
                let server = std::env::var("BATON_TEST_MYSQL_URL")
                    .unwrap_or_else(|_| "mysql+pymysql://root@127.0.0.1:3306".into());
                admin_exec(
                    &format!("{server}/test"),
                    &format!("CREATE DATABASE {name}"),
                )
                .await;
                let url = format!("{server}/{name}");
                let store = Store::connect(&url).await.unwrap();
                TestDb {
                    store,
                    url,
                    cleanup: Some((format!("{server}/test"), format!("DROP DATABASE {name}"))),
                    _dir: None,
                }
            }
        }
    }

    async fn drop_db(self) {
        self.store.close().await;
        if let Some((admin, sql)) = &self.cleanup {
            admin_exec(admin, sql).await;
        }
    }
}

async fn admin_exec(url: &str, sql: &str) {
    let parsed = baton_store::parse_connection(url).unwrap();
    match parsed.dialect {
        Dialect::Postgres => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&parsed.url)
                .await
                .expect("PostgreSQL on 127.0.0.1:5432");
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        Dialect::MySql => {
            use sqlx::Connection;
            let mut c = sqlx::MySqlConnection::connect(&parsed.url)
                .await
                .expect("MariaDB on 127.0.0.1:3306");
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        Dialect::Sqlite => unreachable!(),
    }
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn spec(password_hash: &str) -> BootstrapSpec {
    BootstrapSpec {
        default_domain_id: "default".into(),
        username: "admin".into(),
        password_hash: password_hash.into(),
        reset_password: false,
        project_name: Some("admin".into()),
        role_name: "admin".into(),
        service_name: Some("keystone".into()),
        region_id: Some("RegionOne".into()),
        public_url: Some("http://127.0.0.1:5000/v3".into()),
        internal_url: Some("http://127.0.0.1:5000/v3".into()),
        admin_url: None,
        now: now(),
    }
}

async fn schema_and_bootstrap(dialect: Dialect) {
    let db = TestDb::new(dialect).await;
    let store = &db.store;
    assert!(!store.schema_is_current().await.unwrap());
    assert_eq!(store.db_sync().await.unwrap(), SyncOutcome::Created);
    assert_eq!(store.db_sync().await.unwrap(), SyncOutcome::AlreadyCurrent);
    assert!(store.schema_is_current().await.unwrap());

    let report = store.bootstrap(&spec("$2b$04$first")).await.unwrap();
    assert!(
        report.created.iter().any(|l| l.starts_with("user admin")),
        "{:?}",
        report.created
    );
    let again = store.bootstrap(&spec("$2b$04$ignored")).await.unwrap();
    assert!(
        again.created.is_empty(),
        "re-run created {:?}",
        again.created
    );
    assert_eq!(again.user_id, report.user_id);

    let user = store
        .find_user("admin", "default")
        .await
        .unwrap()
        .expect("admin user");
    assert_eq!(user.id, report.user_id);
    assert!(user.enabled);
    assert_eq!(
        store.get_user(&user.id).await.unwrap().unwrap().name,
        "admin"
    );
    assert_eq!(
        store.get_password(&user.id).await.unwrap().unwrap().hash,
        "$2b$04$first"
    );
    let mut reset = spec("$2b$04$second");
    reset.reset_password = true;
    store.bootstrap(&reset).await.unwrap();
    assert_eq!(
        store.get_password(&user.id).await.unwrap().unwrap().hash,
        "$2b$04$second"
    );

    let domain = store
        .find_domain("Default")
        .await
        .unwrap()
        .expect("default domain");
    assert_eq!(domain.id, "default");
    assert!(domain.is_domain);
    let project = store
        .find_project("admin", "default")
        .await
        .unwrap()
        .expect("admin project");
    assert_eq!(Some(project.id.clone()), report.project_id);
    assert_eq!(project.parent_id.as_deref(), Some("default"));
    assert!(store
        .find_project("Default", "default")
        .await
        .unwrap()
        .is_none());

    let roles = store.list_roles().await.unwrap();
    let mut names: Vec<_> = roles.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["admin", "manager", "member", "reader", "service"]);
    assert!(roles.iter().all(|r| r.domain_id.is_none()));
    assert_eq!(store.list_implied_roles().await.unwrap().len(), 3);

    let assignments = store
        .list_assignments_for_actors(std::slice::from_ref(&user.id))
        .await
        .unwrap();
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0].kind, AssignmentType::UserProject);
    assert_eq!(assignments[0].role_id, report.admin_role_id);
    let system = store
        .list_system_assignments_for_actors(std::slice::from_ref(&user.id))
        .await
        .unwrap();
    assert_eq!(system.len(), 1);
    assert!(!system[0].is_group);

    let services = store.list_services().await.unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(
        (services[0].service_type.as_str(), services[0].name.as_str()),
        ("identity", "keystone")
    );
    let endpoints = store.list_endpoints().await.unwrap();
    assert_eq!(endpoints.len(), 2);
    assert_eq!(store.list_regions().await.unwrap()[0].id, "RegionOne");

    // Grants, users and projects written by Baton.
    let member = roles.iter().find(|r| r.name == "member").unwrap();
    let nova = User {
        id: baton_store::new_id(),
        name: "nova".into(),
        domain_id: "default".into(),
        enabled: true,
        default_project_id: None,
        extra: None,
        created_at: None,
    };
    store
        .create_local_user(&nova, Some("$2b$04$nova"), now())
        .await
        .unwrap();
    let dup = store
        .create_local_user(
            &User {
                id: baton_store::new_id(),
                ..nova.clone()
            },
            None,
            now(),
        )
        .await;
    assert!(
        matches!(dup, Err(baton_store::StoreError::Conflict(_))),
        "{dup:?}"
    );
    let service_project = Project {
        id: baton_store::new_id(),
        name: "service".into(),
        domain_id: "default".into(),
        parent_id: Some("default".into()),
        enabled: true,
        is_domain: false,
        description: None,
        extra: None,
    };
    store.create_project(&service_project).await.unwrap();
    let grant = Assignment {
        kind: AssignmentType::UserProject,
        actor_id: nova.id.clone(),
        target_id: service_project.id.clone(),
        role_id: member.id.clone(),
        inherited: false,
    };
    store.create_assignment(&grant).await.unwrap();
    store.create_assignment(&grant).await.unwrap();
    assert_eq!(
        store
            .list_assignments_for_actors(std::slice::from_ref(&nova.id))
            .await
            .unwrap(),
        vec![grant.clone()]
    );
    assert!(store.delete_assignment(&grant).await.unwrap());
    assert!(!store.delete_assignment(&grant).await.unwrap());
    store
        .set_password(&nova.id, "$2b$04$nova2", now())
        .await
        .unwrap();
    assert_eq!(
        store.get_password(&nova.id).await.unwrap().unwrap().hash,
        "$2b$04$nova2"
    );

    // Revocation events keep their fields and are pruned by revoked_at only.
    let t0 = chrono::DateTime::from_timestamp(1_800_000_000, 0)
        .unwrap()
        .naive_utc();
    let old = RevocationEvent {
        audit_id: Some("old-audit-id-aaaaaaaaaa".into()),
        issued_before: t0,
        revoked_at: t0,
        ..Default::default()
    };
    store.add_revocation_event(&old).await.unwrap();
    let recent = RevocationEvent {
        user_id: Some(nova.id.clone()),
        project_id: Some(service_project.id.clone()),
        expires_at: Some(t0 + chrono::Duration::hours(1)),
        issued_before: t0 + chrono::Duration::days(3),
        revoked_at: t0 + chrono::Duration::days(3),
        ..Default::default()
    };
    store.add_revocation_event(&recent).await.unwrap();
    let pruned = store
        .prune_revocation_events(t0 + chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    let events = store.list_revocation_events(0, &[]).await.unwrap();
    assert_eq!(events.len(), 1, "the old event is pruned: {events:?}");
    let got = &events[0];
    assert_eq!(got.user_id, recent.user_id);
    assert_eq!(got.expires_at, recent.expires_at);
    assert_eq!(got.issued_before, recent.issued_before);
    assert!(store
        .list_revocation_events(got.id, &[])
        .await
        .unwrap()
        .is_empty());
    let again = store
        .list_revocation_events(got.id, &[got.id])
        .await
        .unwrap();
    assert_eq!(
        again.len(),
        1,
        "ids asked for again are read below the cursor"
    );

    // A connection string for a fresh Store sees the same data (nothing is cached in Store).
    let second = Store::connect(&db.url).await.unwrap();
    assert!(second.find_user("nova", "default").await.unwrap().is_some());
    second.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_schema_and_bootstrap() {
    schema_and_bootstrap(Dialect::Sqlite).await;
}

#[tokio::test]
async fn postgres_schema_and_bootstrap() {
    schema_and_bootstrap(Dialect::Postgres).await;
}

#[tokio::test]
async fn mariadb_schema_and_bootstrap() {
    schema_and_bootstrap(Dialect::MySql).await;
}

async fn concurrent_db_sync_and_bootstrap(dialect: Dialect) {
    let db = TestDb::new(dialect).await;
    // Separate Store instances stand for separate processes (separate pools).
    let mut handles = Vec::new();
    for _ in 0..4 {
        let url = db.url.clone();
        handles.push(tokio::spawn(async move {
            let store = Store::connect(&url).await.unwrap();
            store.db_sync().await.unwrap();
            store.bootstrap(&spec("$2b$04$x")).await.unwrap();
            store.close().await;
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(db.store.list_roles().await.unwrap().len(), 5);
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_concurrent_db_sync_and_bootstrap() {
    concurrent_db_sync_and_bootstrap(Dialect::Sqlite).await;
}

#[tokio::test]
async fn postgres_concurrent_db_sync_and_bootstrap() {
    concurrent_db_sync_and_bootstrap(Dialect::Postgres).await;
}

#[tokio::test]
async fn mariadb_concurrent_db_sync_and_bootstrap() {
    concurrent_db_sync_and_bootstrap(Dialect::MySql).await;
}

/// The real Keystone on SQLite fails with "database is locked" under two workers; Baton's
/// writers (several pools, many tasks) must all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_many_concurrent_writers_never_see_database_locked() {
    let db = TestDb::new(Dialect::Sqlite).await;
    db.store.db_sync().await.unwrap();
    db.store.bootstrap(&spec("$2b$04$x")).await.unwrap();
    let mut handles = Vec::new();
    for p in 0..3 {
        let store = Store::connect(&db.url).await.unwrap();
        for i in 0..40 {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                if i % 10 == 0 {
                    store.bootstrap(&spec("$2b$04$x")).await.map(|_| ())
                } else {
                    let ev = RevocationEvent {
                        audit_id: Some(format!("audit-{p}-{i}")),
                        issued_before: now(),
                        revoked_at: now(),
                        ..Default::default()
                    };
                    store.add_revocation_event(&ev).await
                }
            }));
        }
    }
    for h in handles {
        h.await.unwrap().expect("no write may fail");
    }
    assert_eq!(
        db.store.list_revocation_events(0, &[]).await.unwrap().len(),
        3 * 36
    );
    db.drop_db().await;
}

/// A database that the real `keystone-manage db_sync` + `bootstrap` wrote (fixture generated by
/// tests/fixtures/keystone/generate.py) is read as is.
#[tokio::test]
async fn reads_a_database_written_by_keystone() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/keystone/keystone-bootstrap.sqlite");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keystone.db");
    std::fs::copy(&fixture, &path)
        .expect("fixture database (run tests/fixtures/keystone/generate.py)");
    let store = Store::connect(&format!("sqlite:///{}", path.display()))
        .await
        .unwrap();
    assert!(store.schema_is_current().await.unwrap());
    assert_eq!(store.db_sync().await.unwrap(), SyncOutcome::AlreadyCurrent);
    let admin = store
        .find_user("admin", "default")
        .await
        .unwrap()
        .expect("admin");
    let hash = store
        .get_password(&admin.id)
        .await
        .unwrap()
        .expect("password")
        .hash;
    assert!(hash.starts_with("$2b$"), "bcrypt hash from Keystone");
    assert!(store
        .find_project("admin", "default")
        .await
        .unwrap()
        .is_some());
    let roles = store.list_roles().await.unwrap();
    assert!(roles.iter().any(|r| r.name == "service"));
    assert!(!store
        .list_system_assignments_for_actors(std::slice::from_ref(&admin.id))
        .await
        .unwrap()
        .is_empty());
    store.close().await;
}

/// `AssignmentFilter::matches` (the in-memory filter of rows already read) keeps exactly the
/// rows `list_assignments` returns for the same filter, for every combination of fields.
#[tokio::test]
async fn the_in_memory_assignment_filter_agrees_with_the_database() {
    use baton_store::AssignmentFilter;
    use AssignmentType::*;
    let db = TestDb::new(Dialect::Sqlite).await;
    db.store.db_sync().await.unwrap();
    let mut rows = Vec::new();
    for (i, kind) in [UserProject, UserDomain, GroupProject, GroupDomain]
        .into_iter()
        .cycle()
        .take(48)
        .enumerate()
    {
        let a = Assignment {
            kind,
            actor_id: format!("actor{}", i % 3),
            target_id: format!("target{}", i % 4),
            role_id: format!("role{}", i % 5),
            inherited: i % 2 == 0,
        };
        db.store.create_assignment(&a).await.unwrap();
        rows.push(a);
    }
    let some = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let mut checked = 0;
    for role_id in [None, Some("role1".to_string())] {
        for actor_ids in [None, some(&["actor0"]), some(&["actor1", "actor2"])] {
            for target_ids in [None, some(&["target3"]), some(&["target0", "target2"])] {
                for kinds in [None, Some(vec![UserProject, GroupDomain])] {
                    for inherited in [None, Some(true), Some(false)] {
                        let filter = AssignmentFilter {
                            role_id: role_id.clone(),
                            actor_ids: actor_ids.clone(),
                            target_ids: target_ids.clone(),
                            kinds: kinds.clone(),
                            inherited,
                        };
                        let mut stored = db.store.list_assignments(&filter).await.unwrap();
                        let mut kept: Vec<Assignment> =
                            rows.iter().filter(|a| filter.matches(a)).cloned().collect();
                        let key = |a: &Assignment| {
                            (
                                a.kind.as_str(),
                                a.actor_id.clone(),
                                a.target_id.clone(),
                                a.role_id.clone(),
                                a.inherited,
                            )
                        };
                        stored.sort_by_key(key);
                        kept.sort_by_key(key);
                        assert_eq!(stored, kept, "{filter:?}");
                        checked += usize::from(!kept.is_empty());
                    }
                }
            }
        }
    }
    assert!(checked > 20, "most filters match something: {checked}");
    db.drop_db().await;
}
