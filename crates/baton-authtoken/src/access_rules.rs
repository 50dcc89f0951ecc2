//! Enforcing an application credential's access rules on the receiving side, as
//! keystonemiddleware 13 does (`validate_allowed_request`), with one difference that closes
//! keystonemiddleware bug 2129016.
//!
//! A user token from a credential with access rules may make only the requests a rule allows:
//! same HTTP method, `service` equal to this service's `[keystone_authtoken] service_type`, and
//! the request path matching the rule's `path` (`*` and `{name}` match one non-empty segment,
//! `**` matches anything, including `/`). Other characters match themselves; keystonemiddleware
//! builds an unescaped regular expression, so there a `.` matches any character. Baton's literal
//! reading is the stricter one.
//!
//! Before the rules: a service without `service_type`, or whose type is not in the token's
//! catalog, cannot enforce them and refuses the token; `GET .../v3/auth/tokens` on the identity
//! service is always allowed (a token may always be validated).
//!
//! A request that comes with a service token is part of a chain of calls, not the user's own,
//! and keystonemiddleware lets it through without the rules. It does so for any token in
//! `X-Service-Token`, even an invalid one, which under `delay_auth_decision` let a user step
//! round their own rules by adding junk. Baton skips the rules only for a valid service token
//! holding a role of `service_token_roles`.

use baton_client::AccessInfo;

use crate::reason::FailureReason;

/// What the check needs to know about the request and this service.
pub(crate) struct RequestScope<'a> {
    /// The request's method (`GET`).
    pub method: &'a str,
    /// The request's path, as received (percent-encoded, without the query).
    pub path: &'a str,
    /// `[keystone_authtoken] service_type`.
    pub service_type: Option<&'a str>,
    /// A valid service token with a service role came with the request.
    pub service_chain: bool,
}

/// Whether the user token may make this request; `Err` names why not. Tokens that are not from
/// an application credential, or from one without access rules, always may.
pub(crate) fn check(access: &AccessInfo, req: &RequestScope<'_>) -> Result<(), FailureReason> {
    let Some(rules) = access
        .body()
        .application_credential
        .as_ref()
        .and_then(|c| c.access_rules.as_ref())
    else {
        return Ok(());
    };
    let Some(my_type) = req.service_type else {
        return Err(FailureReason::AccessRulesUnenforceable);
    };
    if my_type == "identity" && req.method == "GET" && req.path.ends_with("/v3/auth/tokens") {
        return Ok(());
    }
    // Without the catalog (`include_service_catalog = false`) the type cannot be checked
    // against it; the rules still apply.
    if let Some(catalog) = access.body().catalog.as_deref() {
        if !catalog.iter().any(|s| s.service_type == my_type) {
            return Err(FailureReason::AccessRulesUnenforceable);
        }
    }
    if req.service_chain {
        return Ok(());
    }
    let allowed = rules.iter().any(|rule| {
        rule.method.as_deref() == Some(req.method)
            && rule.service.as_deref() == Some(my_type)
            && rule
                .path
                .as_deref()
                .is_some_and(|pattern| path_matches(req.path, pattern))
    });
    if allowed {
        Ok(())
    } else {
        Err(FailureReason::AccessRuleDenied)
    }
}

/// One piece of a rule's path pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// A byte that must appear as is.
    Literal(u8),
    /// `*` or `{name}`: one or more bytes, none a `/`.
    Segment,
    /// `**`: any bytes, `/` included, possibly none.
    Any,
}

fn pieces(pattern: &str) -> Vec<Piece> {
    let b = pattern.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'*' if b.get(i + 1) == Some(&b'*') => {
                out.push(Piece::Any);
                i += 2;
            }
            b'*' => {
                out.push(Piece::Segment);
                i += 1;
            }
            b'{' => match b[i..].iter().position(|&c| c == b'}') {
                Some(end) => {
                    out.push(Piece::Segment);
                    i += end + 1;
                }
                // An unclosed brace: keystonemiddleware's pattern drops it; so does this.
                None => i += 1,
            },
            // keystonemiddleware's pattern has no literal for a lone `}` either.
            b'}' => i += 1,
            c => {
                out.push(Piece::Literal(c));
                i += 1;
            }
        }
    }
    out
}

/// Whether `path` matches the access-rule pattern (whole path, anchored at both ends). Runs in
/// O(path × pattern) time whatever the pattern: a table, not backtracking.
pub fn path_matches(path: &str, pattern: &str) -> bool {
    let p = pieces(pattern);
    let s = path.as_bytes();
    // ok[j]: the pieces so far match s[..j].
    let mut ok = vec![false; s.len() + 1];
    ok[0] = true;
    for piece in &p {
        let mut next = vec![false; s.len() + 1];
        match *piece {
            Piece::Literal(c) => {
                for j in 0..s.len() {
                    next[j + 1] = ok[j] && s[j] == c;
                }
            }
            Piece::Any => {
                let mut reach = false;
                for j in 0..=s.len() {
                    reach |= ok[j];
                    next[j] = reach;
                }
            }
            Piece::Segment => {
                // next[j]: some i < j with ok[i] and no `/` in s[i..j].
                let mut open = false;
                for j in 0..s.len() {
                    if s[j] == b'/' {
                        open = false;
                    } else {
                        open |= ok[j];
                        next[j + 1] = open;
                    }
                }
            }
        }
        ok = next;
    }
    ok[s.len()]
}

#[cfg(test)]
mod tests {
    use super::path_matches;

    #[test]
    fn wildcards_follow_keystonemiddleware() {
        // (path, pattern, matches): the cases of keystonemiddleware's own tests, and edges.
        let cases = [
            ("/v2.1/servers", "/v2.1/servers", true),
            ("/v2.1/servers/", "/v2.1/servers", false),
            ("/v2.1/servers/abc", "/v2.1/servers/*", true),
            ("/v2.1/servers/abc/action", "/v2.1/servers/*", false),
            ("/v2.1/servers/", "/v2.1/servers/*", false),
            ("/v2.1/servers/abc/action", "/v2.1/servers/**", true),
            ("/v2.1/servers/", "/v2.1/servers/**", true),
            ("/v2.1/servers", "/v2.1/servers/**", false),
            (
                "/v2.1/servers/abc/action",
                "/v2.1/servers/{server_id}/action",
                true,
            ),
            (
                "/v2.1/servers/a/b/action",
                "/v2.1/servers/{server_id}/action",
                false,
            ),
            ("/v2.1/servers/abc/os-x", "/v2.1/servers/*/os-*", true),
            ("/v3/a/b/c/d", "/v3/**/d", true),
            ("/v3/d", "/v3/**/d", false),
            ("/v3/x/d", "/v3/**d", true),
            ("/anything/at/all", "**", true),
            ("", "**", true),
            ("/v2x1/servers", "/v2.1/servers", false),
        ];
        for (path, pattern, want) in cases {
            assert_eq!(path_matches(path, pattern), want, "{path} ~ {pattern}");
        }
    }

    #[test]
    fn many_wildcards_stay_cheap() {
        let pattern = "/**".repeat(100) + "/x";
        let path = "/a".repeat(4000);
        assert!(!path_matches(&path, &pattern));
    }
}
