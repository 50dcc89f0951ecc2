//! Fernet retention: (K - 2) x R must cover expiration + allow_expired_window; the minimum K for
//! R and the shortest safe R for K; and `fernet_rotate`'s refusal and `--force`.

use std::time::Duration;

use baton_doctor::{rotate_decision, Retention, Verdict};

const DAY: u64 = 86_400;

fn keystone_defaults(keys: u64) -> Retention {
    Retention {
        expiration: 3600,
        allow_expired_window: 2 * DAY,
        continuation_lifetime: 0,
        max_active_keys: keys,
    }
}

/// With `allow_expired_window = 0` (as StarlingX sets it) a continuation token outliving
/// `expiration` is what keys must cover.
#[test]
fn a_longer_continuation_lifetime_is_what_keys_must_cover() {
    let r = Retention {
        expiration: 3600,
        allow_expired_window: 0,
        continuation_lifetime: 4 * 3600,
        max_active_keys: 3,
    };
    assert_eq!(r.required(), 4 * 3600);
    let check = r.check(Some(Duration::from_secs(3600)));
    assert_eq!(check.verdict, Verdict::Unsafe);
    assert!(
        check
            .explanation
            .contains("continuation token's token_lifetime"),
        "{}",
        check.explanation
    );
    assert_eq!(check.min_keys, Some(6));
    let shorter = Retention {
        continuation_lifetime: 600,
        ..r
    };
    assert_eq!(shorter.required(), 3600);
    assert_eq!(
        shorter.check(Some(Duration::from_secs(3600))).verdict,
        Verdict::Safe
    );
}

#[test]
fn arithmetic_matches_keystones_faq_formula() {
    let r = keystone_defaults(3);
    assert_eq!(r.required(), 176_400);
    // FAQ: max_active_keys = (expiration + window) / rotation + 2, rounded up.
    assert_eq!(r.min_keys(DAY), 5);
    assert_eq!(r.min_keys(3600), 51);
    assert_eq!(r.min_keys(176_400), 3);
    assert_eq!(r.guaranteed(DAY), DAY);
    assert_eq!(r.min_interval(), Some(176_400));
    assert_eq!(keystone_defaults(5).min_interval(), Some(58_800));
    assert_eq!(keystone_defaults(2).min_interval(), None);
    assert_eq!(keystone_defaults(1).guaranteed(DAY), 0);
}

#[test]
fn verdicts_with_and_without_a_schedule() {
    let d = |s| Some(Duration::from_secs(s));
    assert_eq!(keystone_defaults(5).check(d(DAY)).verdict, Verdict::Safe);
    // 58 800 s is exactly enough for 5 keys; one second less is not.
    assert_eq!(keystone_defaults(5).check(d(58_800)).verdict, Verdict::Safe);
    let short = keystone_defaults(5).check(d(58_799));
    assert_eq!(short.verdict, Verdict::Unsafe);
    assert_eq!(short.min_keys, Some(6));
    assert!(
        short
            .explanation
            .contains("(5 - 2) x 58799 s (16h 19m 59s) = 176397 s"),
        "{}",
        short.explanation
    );
    assert!(
        short.explanation.contains("max_active_keys = 6"),
        "{}",
        short.explanation
    );
    assert!(
        short.explanation.contains("every 58800 s (16h 20m)"),
        "{}",
        short.explanation
    );
    // Without a schedule: unchecked for K >= 3, unsafe for K <= 2 whatever the schedule.
    assert_eq!(keystone_defaults(3).check(None).verdict, Verdict::Unchecked);
    assert_eq!(keystone_defaults(2).check(None).verdict, Verdict::Unsafe);
    assert_eq!(
        keystone_defaults(2).check(d(365 * DAY)).verdict,
        Verdict::Unsafe
    );
}

#[test]
fn fernet_rotate_refuses_unless_forced() {
    let unsafe_check = keystone_defaults(3).check(Some(Duration::from_secs(DAY)));
    let refusal = rotate_decision(&unsafe_check, false).unwrap_err();
    assert!(refusal.starts_with("refusing to rotate: "), "{refusal}");
    assert!(
        refusal.contains("176400 s") && refusal.contains("max_active_keys = 5"),
        "{refusal}"
    );
    assert!(refusal.contains("--force"), "{refusal}");
    let forced = rotate_decision(&unsafe_check, true).unwrap().unwrap();
    assert!(forced.contains("--force"), "{forced}");

    let safe = keystone_defaults(5).check(Some(Duration::from_secs(DAY)));
    assert!(rotate_decision(&safe, false).is_ok());
    // keystone-manage compatibility: no schedule given, enough keys: rotate, with a note.
    let unchecked = keystone_defaults(3).check(None);
    let note = rotate_decision(&unchecked, false).unwrap().unwrap();
    assert!(note.contains("176400 s"), "{note}");
    // Two keys: every rotation loses live tokens, so even an unstated schedule is refused.
    assert!(rotate_decision(&keystone_defaults(2).check(None), false).is_err());
}

#[test]
fn retention_reads_the_identity_config() {
    let mut c = baton_config::IdentityConfig::default();
    c.token.expiration = 7200;
    c.token.allow_expired_window = 0;
    c.fernet_tokens.max_active_keys = 4;
    let r = Retention::from_config(&c);
    assert_eq!(
        (r.expiration, r.allow_expired_window, r.max_active_keys),
        (7200, 0, 4)
    );
    assert_eq!(r.min_interval(), Some(3600));
}
