//! The text lines, the JSON document (pinned field by field), the exit status, and the
//! documentation of every code.

use std::path::Path;

use baton_doctor::{diagnose_static, Code, Report, Severity, EXIT_ERRORS, EXIT_OK, JSON_VERSION};
use serde_json::Value;

use crate::common::set_options;

fn broken() -> Report {
    diagnose_static(&set_options(Some("receiver-admin-role"), "12h", "1d")).unwrap()
}

#[test]
fn json_document_shape_is_stable() {
    let report = broken();
    let json: Value = serde_json::from_str(&report.to_json_string()).expect("valid JSON");
    let top: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top, ["exit_status", "findings", "summary", "version"]);
    assert_eq!(json["version"], JSON_VERSION);
    assert_eq!(json["exit_status"], 1);
    assert_eq!(json["summary"]["errors"], 1);
    assert_eq!(json["summary"]["warnings"], 1);
    assert_eq!(
        json["summary"]["ok"].as_u64().unwrap() as usize,
        report.count(Severity::Ok)
    );
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), report.findings.len());
    for f in findings {
        let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["code", "file", "fix", "impact", "line", "message", "option", "section", "severity"],
            "{f}"
        );
        assert!(["error", "warning", "ok"].contains(&f["severity"].as_str().unwrap()));
        assert!(Code::ALL
            .iter()
            .any(|c| c.as_str() == f["code"].as_str().unwrap()));
    }
    let mismatch = findings
        .iter()
        .find(|f| f["code"] == "receiver.service_token_roles_mismatch")
        .expect("mismatch finding");
    assert_eq!(mismatch["severity"], "error");
    assert!(mismatch["file"]
        .as_str()
        .unwrap()
        .ends_with("receiver-admin-role/cinder.conf"));
    assert_eq!(mismatch["section"], "keystone_authtoken");
    assert_eq!(mismatch["option"], "service_token_roles");
    assert!(mismatch["line"].as_u64().unwrap() > 1);
    assert!(mismatch["fix"]
        .as_str()
        .unwrap()
        .contains("service_token_roles = service"));
    assert!(mismatch["impact"].as_str().unwrap().contains("409"));
    // ok findings carry empty impact and fix, never null.
    let ok = findings.iter().find(|f| f["severity"] == "ok").unwrap();
    assert_eq!(ok["impact"], "");
    assert_eq!(ok["fix"], "");
}

#[test]
fn exit_status_follows_the_worst_severity() {
    assert_eq!(broken().exit_status(), EXIT_ERRORS);
    // Warnings alone do not fail.
    let warnings =
        diagnose_static(&set_options(Some("receiver-memcache-plain"), "12h", "1d")).unwrap();
    assert_eq!(warnings.count(Severity::Error), 0);
    assert!(warnings.count(Severity::Warning) > 0);
    assert_eq!(warnings.exit_status(), EXIT_OK);
}

#[test]
fn text_has_one_line_per_finding_errors_first() {
    let report = broken();
    let text = report.to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), report.findings.len() + 1);
    assert!(
        lines[0].starts_with("error   receiver.service_token_roles_mismatch "),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("cinder.conf:")
            && lines[0].contains("[keystone_authtoken] service_token_roles: ")
    );
    assert!(lines[0].contains(" | breaks: ") && lines[0].contains(" | fix: "));
    assert!(
        lines[1].starts_with("warning receiver.admin_is_service_role "),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("ok "), "{}", lines[2]);
    assert_eq!(
        *lines.last().unwrap(),
        format!(
            "1 error(s), 1 warning(s), {} ok",
            report.count(Severity::Ok)
        )
    );
}

#[test]
fn every_code_is_documented() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/doctor.md"))
            .expect("docs/doctor.md");
    for code in Code::ALL {
        assert!(
            doc.contains(&format!("`{}`", code.as_str())),
            "docs/doctor.md lacks {code}"
        );
    }
    // Codes are unique.
    let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), Code::ALL.len());
}
