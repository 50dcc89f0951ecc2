//! Fixture paths and the shape findings are compared in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_doctor::{Finding, Options, Report, Severity};

/// Passwords and secrets of the fixture files: none may appear in any output.
pub const SECRETS: [&str; 12] = [
    "Rabb1t-Pass",
    "K3ystone-DB-Pass",
    "N0va-DB-Pass",
    "C1nder-Pass",
    "C1nder-DB-Pass",
    "N0va-Service-Pass",
    "Neutr0n-Pass",
    "Pl4cement-Pass",
    "Gl4nce-Pass",
    "M3tadata-Secret",
    "7f1d0a9c4b2e8f3a6d5c1b0e9a8f7d6c",
    "3c9e1f7a2b8d4e6f0a1c5b9d8e7f6a2b",
];

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `file` of set `dir`, or the healthy one when the set does not change it.
pub fn fixture(dir: Option<&str>, file: &str) -> PathBuf {
    if let Some(d) = dir {
        let p = fixtures().join(d).join(file);
        if p.exists() {
            return p;
        }
    }
    fixtures().join("healthy").join(file)
}

pub fn duration(text: &str) -> Option<Duration> {
    (!text.is_empty()).then(|| baton_config::parse_duration(text).expect("duration"))
}

/// The standard command line over set `dir` (see the README of the fixtures).
pub fn set_options(dir: Option<&str>, longest: &str, rotation: &str) -> Options {
    Options {
        identity: vec![fixture(dir, "keystone.conf")],
        senders: vec![fixture(dir, "nova.conf"), fixture(dir, "cinder.conf")],
        receivers: [
            "cinder.conf",
            "glance-api.conf",
            "neutron.conf",
            "nova.conf",
        ]
        .iter()
        .map(|f| fixture(dir, f))
        .collect(),
        longest_operation: duration(longest),
        rotation_interval: duration(rotation),
        ..Options::default()
    }
}

/// (severity, code, file name, section, option) of a finding.
pub type Key = (Severity, String, String, Option<String>, Option<String>);

pub fn key(f: &Finding) -> Key {
    let file = f
        .location
        .file
        .as_deref()
        .map(|p| {
            Path::new(p)
                .file_name()
                .map_or(p.to_string(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    (
        f.severity,
        f.code.as_str().to_string(),
        file,
        f.location.section.clone(),
        f.location.option.clone(),
    )
}

/// Errors and warnings, sorted.
pub fn problems(report: &Report) -> Vec<Key> {
    let mut v: Vec<Key> = report
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Ok)
        .map(key)
        .collect();
    v.sort();
    v
}

pub fn assert_no_secrets(text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "output shows the secret {s:?}:\n{text}");
    }
}
