//! The fleet behind an identity URL (Baton's `GET /v3/baton/fleet`, read with a sender's token
//! when its policy `baton:get_fleet` allows it: admin on the system by default): a live node
//! whose keys differ from the database's shared set (or, with `filesystem` keys, from the
//! answering node's) cannot validate the others' tokens. Skipped silently where the API is
//! absent (Keystone) or refused.

use std::collections::BTreeSet;

use baton_client::discover::v3_url_from_path;
use serde_json::Value;

use super::{section_loc, LiveSender, Run};
use crate::report::{Code, Finding};

/// One look per identity URL, with the first sender allowed to read it.
pub(super) async fn check(run: &mut Run<'_>, senders: &[LiveSender<'_>]) {
    let mut seen = BTreeSet::new();
    for s in senders {
        let v3 = v3_url_from_path(&s.auth.auth_url);
        if seen.contains(v3.as_str()) {
            continue;
        }
        let Ok(doc) = s
            .session
            .get(v3.clone(), "baton/fleet")
            .send_json::<Value>()
            .await
        else {
            continue;
        };
        seen.insert(v3.to_string());
        judge(run, s, &doc);
    }
}

fn judge(run: &mut Run<'_>, s: &LiveSender<'_>, doc: &Value) {
    let loc = || section_loc(&s.input.file, &s.auth.section, Some("auth_url"));
    let nodes = doc["fleet"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut live = 0;
    let mut differing = Vec::new();
    for n in &nodes {
        let name = format!(
            "{} ({})",
            n["name"].as_str().unwrap_or("?"),
            n["address"].as_str().unwrap_or("address unknown")
        );
        if n["state"] != "live" {
            continue;
        }
        live += 1;
        let keys = n["keys"].as_object().cloned().unwrap_or_default();
        for (repository, k) in keys {
            if k["matches"] == false {
                differing.push(format!("{name}: {repository} keys"));
            }
        }
    }
    if differing.is_empty() {
        run.report.push(Finding::ok(
            Code::LiveFleetOk,
            loc(),
            format!("{live} live identity node(s), all holding the same keys"),
        ));
        return;
    }
    run.report.push(
        Finding::error(
            Code::LiveFleetKeysDiffer,
            loc(),
            format!(
                "live identity node(s) hold other keys than the fleet's: {}",
                differing.join("; ")
            ),
        )
        .impact("tokens minted on one node are refused (404) on another behind the same load balancer")
        .fix("with key_distribution = database, check that node's log and `baton manage fernet_setup`/KEK file; with filesystem keys, copy the key repository again (or switch to key_distribution = database)"),
    );
}
