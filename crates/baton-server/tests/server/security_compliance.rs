//! `[security_compliance] lockout_failure_attempts` / `lockout_duration` as Keystone enforces
//! them: N failed password logins in a row lock the user out (even the right password gets the
//! generic 401) until `lockout_duration` after the last failure; a success resets the count;
//! re-enabling the user and `ignore_lockout_failure_attempts` lift it.

use super::*;
use baton_server::clock::Clock;
use baton_testkit::{call, on_every_database, send};

fn login(name: &str, password: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"id": "default"}, "password": password}}}}})
}

async fn attempt(s: &IdentityServer, name: &str, password: &str) -> StatusCode {
    send(
        s,
        Method::POST,
        "auth/tokens",
        None,
        Some(login(name, password)),
    )
    .await
    .0
}

async fn lockout_as_keystone(dialect: DbDialect) {
    let s = IdentityServer::start_with_clock(dialect, Clock::manual(Utc::now()), |c| {
        c.security_compliance.lockout_failure_attempts = Some(2);
        c.security_compliance.lockout_duration = 60;
    })
    .await;
    s.add_secrets(&[USER_PW, WRONG_PW]);
    let admin = s.admin_token().await;
    let user = s.create_user("locky", USER_PW, "default").await;

    // A success in between resets the count.
    assert_eq!(
        attempt(&s, "locky", WRONG_PW).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(attempt(&s, "locky", USER_PW).await, StatusCode::CREATED);
    assert_eq!(
        attempt(&s, "locky", WRONG_PW).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(attempt(&s, "locky", USER_PW).await, StatusCode::CREATED);

    // Two failures in a row: locked, the right password too, with the generic answer.
    for _ in 0..2 {
        assert_eq!(
            attempt(&s, "locky", WRONG_PW).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, body) = send(
        &s,
        Method::POST,
        "auth/tokens",
        None,
        Some(login("locky", USER_PW)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"]["message"],
        "The request you have made requires authentication."
    );
    // Until lockout_duration after the last failure.
    s.clock().advance(chrono::Duration::seconds(59));
    assert_eq!(
        attempt(&s, "locky", USER_PW).await,
        StatusCode::UNAUTHORIZED
    );
    s.clock().advance(chrono::Duration::seconds(2));
    assert_eq!(attempt(&s, "locky", USER_PW).await, StatusCode::CREATED);

    // Re-enabling the user forgives the failures (Keystone's enabled setter).
    for _ in 0..2 {
        attempt(&s, "locky", WRONG_PW).await;
    }
    assert_eq!(
        attempt(&s, "locky", USER_PW).await,
        StatusCode::UNAUTHORIZED
    );
    for enabled in [false, true] {
        let (status, _) = call(
            &s,
            Method::PATCH,
            &format!("users/{user}"),
            &admin,
            Some(json!({"user": {"enabled": enabled}})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(attempt(&s, "locky", USER_PW).await, StatusCode::CREATED);

    // An exempt user is never locked.
    let (status, _) = call(
        &s,
        Method::PATCH,
        &format!("users/{user}"),
        &admin,
        Some(json!({"user": {"options": {"ignore_lockout_failure_attempts": true}}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..3 {
        attempt(&s, "locky", WRONG_PW).await;
    }
    assert_eq!(attempt(&s, "locky", USER_PW).await, StatusCode::CREATED);
    s.stop().await;
}

on_every_database!(lockout_as_keystone);

/// `password_expires_days` and `change_password_upon_first_use` as Keystone: a password an
/// administrator set is expired at once (Keystone's shown 401, which keystoneauth and the CLI
/// understand) until the user changes it; a password lasts `password_expires_days` in whole
/// seconds; `ignore_password_expiry` and `ignore_change_password_upon_first_use` exempt.
async fn password_expiry_as_keystone(dialect: DbDialect) {
    let s = IdentityServer::start_with_clock(dialect, Clock::manual(Utc::now()), |c| {
        c.security_compliance.password_expires_days = Some(1);
        c.security_compliance.change_password_upon_first_use = true;
    })
    .await;
    s.add_secrets(&[USER_PW, WRONG_PW]);
    let admin = s.admin_token().await;
    let (status, body) = call(
        &s,
        Method::POST,
        "users",
        &admin,
        Some(json!({"user": {"name": "expiring", "password": USER_PW}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let user = body["user"]["id"].as_str().expect("id").to_string();
    let (status, body) = send(
        &s,
        Method::POST,
        "auth/tokens",
        None,
        Some(login("expiring", USER_PW)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"]["message"],
        format!("The password is expired and needs to be changed for user: {user}.")
    );

    // The user changes it: it lasts a day, in whole seconds.
    let (status, _) = send(
        &s,
        Method::POST,
        &format!("users/{user}/password"),
        None,
        Some(json!({"user": {"original_password": USER_PW, "password": WRONG_PW}})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(attempt(&s, "expiring", WRONG_PW).await, StatusCode::CREATED);
    let (_, body) = call(&s, Method::GET, &format!("users/{user}"), &admin, None).await;
    let expires = body["user"]["password_expires_at"]
        .as_str()
        .expect("password_expires_at");
    assert!(expires.ends_with(".000000"), "{expires}");
    s.clock().advance(chrono::Duration::days(1));
    assert_eq!(
        attempt(&s, "expiring", WRONG_PW).await,
        StatusCode::UNAUTHORIZED
    );

    // ignore_password_expiry lets an expired password log in (the old admin token expired too).
    let admin = s.admin_token().await;
    let (status, _) = call(
        &s,
        Method::PATCH,
        &format!("users/{user}"),
        &admin,
        Some(json!({"user": {"options": {"ignore_password_expiry": true}}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(attempt(&s, "expiring", WRONG_PW).await, StatusCode::CREATED);

    // An exempt new user logs in at once.
    let (status, _) = call(
        &s,
        Method::POST,
        "users",
        &admin,
        Some(json!({"user": {
        "name": "exempt", "password": USER_PW,
        "options": {"ignore_change_password_upon_first_use": true}}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(attempt(&s, "exempt", USER_PW).await, StatusCode::CREATED);
    s.stop().await;
}

on_every_database!(password_expiry_as_keystone);

/// `unique_last_password_count` and `minimum_password_age` as Keystone: a self-service change
/// may not reuse any of the newest N passwords, and a password the user set must be kept for
/// the minimum age (an administrator's reset is not bound by it).
async fn password_history_and_age_as_keystone(dialect: DbDialect) {
    let s = IdentityServer::start_with_clock(dialect, Clock::manual(Utc::now()), |c| {
        c.security_compliance.unique_last_password_count = 3;
        c.security_compliance.minimum_password_age = 1;
    })
    .await;
    let pws = [
        "Hist0ry-One-aa",
        "Hist0ry-Two-bb",
        "Hist0ry-Three-cc",
        "Hist0ry-Four-dd",
    ];
    s.add_secrets(&pws);
    let user = s.create_user("history", pws[0], "default").await;
    let change = |from: &'static str, to: &'static str| {
        let s = &s;
        let user = user.clone();
        async move {
            send(
                s,
                Method::POST,
                &format!("users/{user}/password"),
                None,
                Some(json!({"user": {"original_password": from, "password": to}})),
            )
            .await
        }
    };
    // The first password was set by an administrator: no minimum age.
    assert_eq!(change(pws[0], pws[1]).await.0, StatusCode::NO_CONTENT);
    // The user was created through the store at the real time, which runs ahead of the manual
    // clock, and a new password is always newer than the last: step past that.
    s.clock().advance(chrono::Duration::minutes(5));
    let (status, body) = change(pws[1], pws[2]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["message"], "You cannot change your password at this time due to the minimum password age. Once you change your password, it must be used for 1 day(s) before it can be changed. Please try again in 0 day(s) or contact your administrator to reset your password.");
    s.clock().advance(chrono::Duration::days(1));
    assert_eq!(change(pws[1], pws[2]).await.0, StatusCode::NO_CONTENT);
    s.clock().advance(chrono::Duration::days(1));
    // The newest three (pws[0..=2]) may not come back; reusing the current one neither.
    for reused in [pws[0], pws[1], pws[2]] {
        let (status, body) = change(pws[2], reused).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reused}");
        assert_eq!(body["error"]["message"], "The new password cannot be identical to a previous password. The total number which includes the new password must be unique is 3.");
    }
    assert_eq!(change(pws[2], pws[3]).await.0, StatusCode::NO_CONTENT);
    s.clock().advance(chrono::Duration::days(1));
    // pws[0] fell out of the history.
    assert_eq!(change(pws[3], pws[0]).await.0, StatusCode::NO_CONTENT);
    s.stop().await;
}

on_every_database!(password_history_and_age_as_keystone);

/// Beyond Keystone: failed password logins are limited per user name (existing or not, alike)
/// and per source address; past a limit, password logins get 429 with `Retry-After` and no
/// hashing, until the window ends.
async fn user_enabled(s: &IdentityServer, admin: &str, user: &str) -> Value {
    let (status, body) = call(s, Method::GET, &format!("users/{user}"), admin, None).await;
    assert_eq!(status, StatusCode::OK);
    body["user"]["enabled"].clone()
}

async fn patch_options(s: &IdentityServer, admin: &str, user: &str, options: Value) {
    let body = json!({"user": {"options": options}});
    let (status, _) = call(
        s,
        Method::PATCH,
        &format!("users/{user}"),
        admin,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// `disable_user_account_days_inactive` as Keystone: a user whose last successful password login
/// is that many days old counts as disabled everywhere (login 401, their tokens stop
/// validating, the API shows `enabled: false`) while the `enabled` column stays; a login records
/// the day; re-enabling restarts the count; `ignore_user_inactivity` exempts.
async fn inactive_users_are_disabled_as_keystone(dialect: DbDialect) {
    let s = IdentityServer::start_with(dialect, |c| {
        c.security_compliance.disable_user_account_days_inactive = Some(30);
        // A user crosses the limit by the day, with no write to flush caches: a cached
        // validation lasts up to validation_cache_ttl past it (1 s here, the least).
        c.baton.validation_cache_ttl = 0;
    })
    .await;
    s.add_secrets(&[USER_PW]);
    let admin = s.admin_token().await;
    let user = s.create_user("sleepy", USER_PW, "default").await;
    let today = Utc::now().date_naive();
    assert_eq!(attempt(&s, "sleepy", USER_PW).await, StatusCode::CREATED);
    let token = s.token("sleepy", USER_PW, Value::Null).await;
    // 29 days: still active. 30 days: disabled, as a disabled user is.
    let rewind = |days: i64| today - chrono::Duration::days(days);
    s.store
        .record_user_active(&user, rewind(29))
        .await
        .expect("write");
    assert_eq!(attempt(&s, "sleepy", USER_PW).await, StatusCode::CREATED);
    // That login moved last_active_at back to today.
    s.store
        .record_user_active(&user, rewind(30))
        .await
        .expect("write");
    assert_eq!(
        attempt(&s, "sleepy", USER_PW).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(user_enabled(&s, &admin, &user).await, json!(false));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(s.validation(&token).await.0, 404, "the user's token ends");

    // As in Keystone, a PATCH writes the shown `enabled` back: the exemption given to an
    // inactive user does not bring them back; re-enabling does.
    patch_options(&s, &admin, &user, json!({"ignore_user_inactivity": true})).await;
    assert_eq!(user_enabled(&s, &admin, &user).await, json!(false));
    // Re-enabling restarts the count (Keystone's enabled setter).
    let (status, _) = call(
        &s,
        Method::PATCH,
        &format!("users/{user}"),
        &admin,
        Some(json!({"user": {"enabled": true}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(attempt(&s, "sleepy", USER_PW).await, StatusCode::CREATED);
    // Now exempt (the option was kept): 90 days pass without a login.
    s.store
        .record_user_active(&user, rewind(90))
        .await
        .expect("write");
    assert_eq!(user_enabled(&s, &admin, &user).await, json!(true));
    assert_eq!(attempt(&s, "sleepy", USER_PW).await, StatusCode::CREATED);
    s.stop().await;
}

on_every_database!(inactive_users_are_disabled_as_keystone);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_per_name_and_address() {
    let s = IdentityServer::start_with(DbDialect::Sqlite, |c| {
        c.baton.login_failures_per_user_name = 3;
        c.baton.login_failures_per_address = 8;
        c.baton.login_failure_window = 2;
    })
    .await;
    s.add_secrets(&[USER_PW, WRONG_PW]);
    s.create_user("sprayed", USER_PW, "default").await;
    s.create_user("bystander", USER_PW, "default").await;
    for name in ["sprayed", "nobody-by-that-name"] {
        for _ in 0..3 {
            assert_eq!(attempt(&s, name, WRONG_PW).await, StatusCode::UNAUTHORIZED);
        }
        // The same answer whether the name exists or not, and even with the right password.
        let (status, body) = send(
            &s,
            Method::POST,
            "auth/tokens",
            None,
            Some(login(name, USER_PW)),
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{name}");
        assert_eq!(body["error"]["code"], 429);
    }
    assert_eq!(attempt(&s, "bystander", USER_PW).await, StatusCode::CREATED);
    // Two more failures from this address reach its limit of 8: everyone is refused.
    for _ in 0..2 {
        assert_eq!(
            attempt(&s, "bystander", WRONG_PW).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = s
        .client
        .post(s.url("auth/tokens"))
        .json(&login("bystander", USER_PW))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // The window ends.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(attempt(&s, "sprayed", USER_PW).await, StatusCode::CREATED);
    s.stop().await;
}

/// Issue 15: password hashing runs in bounded slots. With every hashing thread held (the
/// workers, and the spare threads, which take a hash only while validation is quiet), a login
/// waits `[baton] password_hash_max_wait` and gets Keystone's error JSON with 503 and
/// `Retry-After`, while token validation, which never hashes, goes on; once the threads are
/// free, logins work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_beyond_the_hashing_slots_get_503_while_validation_goes_on() {
    let s = IdentityServer::start_with(DbDialect::Sqlite, |c| {
        c.baton.password_hash_workers = 1;
        c.baton.password_hash_max_wait = 1;
    })
    .await;
    s.add_secrets(&[USER_PW]);
    s.create_user("stormy", USER_PW, "default").await;
    let admin = s.admin_token().await;
    let subject = s.token("stormy", USER_PW, Value::Null).await;
    let hashing = &s.state.tokens.hashing;
    assert_eq!(hashing.workers(), 1);
    let threads = hashing.workers() + hashing.spare_workers();

    // No validation for a while: the spare threads take hashes too; hold every thread.
    tokio::time::sleep(baton_server::password::SPARE_AFTER_QUIET * 2).await;
    let mut releases = Vec::new();
    let mut held = Vec::new();
    for _ in 0..threads {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let tokens = s.state.tokens.clone();
        held.push(tokio::spawn(async move {
            tokens
                .hashing
                .run(move || {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                })
                .await
        }));
        started_rx.await.expect("a hashing thread is taken");
        releases.push(release_tx);
    }

    let r = s
        .client
        .post(s.url("auth/tokens"))
        .json(&login("stormy", USER_PW))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], 503);
    for token in [&subject, &admin] {
        let r = s
            .client
            .get(s.url("auth/tokens"))
            .header("x-auth-token", &admin)
            .header("x-subject-token", token)
            .send()
            .await
            .expect("validate");
        assert_eq!(r.status(), StatusCode::OK, "validation waits for no hash");
    }

    for release in releases {
        release.send(()).expect("release");
    }
    for held in held {
        held.await.expect("join").expect("the held hash ran");
    }
    assert_eq!(attempt(&s, "stormy", USER_PW).await, StatusCode::CREATED);
    s.stop().await;
}
