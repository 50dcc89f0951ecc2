//! Query strings, decoded one way (`form_urlencoded`: `+` and `%XX`, pairs in order, repeated
//! keys kept) and read with Keystone's three boolean readings side by side.

use crate::error::ApiResult;

/// A decoded query string, in order, repeated keys kept.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    /// `(key, value)` pairs, decoded.
    pub pairs: Vec<(String, String)>,
    raw: Option<String>,
}

impl ListQuery {
    /// Decodes a raw query string (`None`: no query).
    pub fn parse(raw: Option<&str>) -> ListQuery {
        ListQuery {
            pairs: pairs(raw),
            raw: raw.map(str::to_string),
        }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is present, with or without a value.
    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// A list filter: present without a value means true; see [`false_unless_listed_false`].
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key).map(false_unless_listed_false)
    }

    /// The role-assignment switches (`effective`, `include_names`, `include_subtree`) as
    /// Keystone reads them: present and not `0`.
    pub fn switch(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v != "0")
    }

    /// The query string as received, for the `self` links of listings.
    pub fn raw(&self) -> Option<&str> {
        self.raw.as_deref()
    }
}

fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Query flags of the token API as Keystone reads them: `nocatalog` counts when present at all;
/// `allow_expired` follows oslo's bool_from_string; `cascade` is true unless clearly false.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokenQuery {
    /// Leave the service catalog out of the token body.
    pub nocatalog: bool,
    /// Validate a token up to `[token] allow_expired_window` past its expiry (services ask for
    /// this when a valid service token vouches for the user's token).
    pub allow_expired: bool,
    /// `DELETE`: also revoke tokens rescoped from this one (default true, as in Keystone 30).
    pub cascade: bool,
}

impl TokenQuery {
    /// Reads the token API's flags (`nocatalog`, `allow_expired`, `cascade`); unknown keys are
    /// ignored.
    pub fn parse(raw: Option<&str>) -> ApiResult<Self> {
        let mut q = TokenQuery {
            cascade: true,
            ..TokenQuery::default()
        };
        for (k, v) in pairs(raw) {
            match k.as_str() {
                "nocatalog" => q.nocatalog = true,
                "allow_expired" => q.allow_expired = bool_from_string(&v),
                // Keystone falls back to true for values it cannot read.
                "cascade" => q.cascade = false_unless_listed_false(&v),
                _ => {}
            }
        }
        Ok(q)
    }
}

/// oslo's `bool_from_string`: true only for the listed spellings of true.
pub fn bool_from_string(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// Keystone's list filters and `cascade`: false only for the listed spellings of false.
pub fn false_unless_listed_false(v: &str) -> bool {
    !matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "0" | "f" | "false" | "off" | "n" | "no"
    )
}

/// Percent-encodes a value for a link's query string (RFC 3986 unreserved characters kept).
pub fn encode(s: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, KEEP).to_string()
}

/// `Some(value)` when the query's `key` filter is absent or equal to `value`.
pub fn matches(query: &ListQuery, key: &str, value: Option<&str>) -> bool {
    // Keystone makes a filter of every pair, a repeated key included: all must hold.
    let exact = query
        .pairs
        .iter()
        .filter(|(k, _)| k == key)
        .all(|(_, want)| value == Some(want.as_str()));
    exact && matches_inexact(query, key, value, true)
}

/// [`matches`] for an attribute Keystone keeps in `extra` (a service's `name`): no SQL column
/// to filter on, so Keystone applies every comparator in Python, the case-insensitive ones as
/// plain substring tests too (`%` and `_` are characters there).
pub fn matches_extra(query: &ListQuery, key: &str, value: Option<&str>) -> bool {
    let exact = query
        .pairs
        .iter()
        .filter(|(k, _)| k == key)
        .all(|(_, want)| value == Some(want.as_str()));
    exact && matches_inexact(query, key, value, false)
}

/// Keystone's inexact filters on `key` (`key__contains`, `__startswith`, `__endswith`, each
/// also with an `i` for case-insensitive), every pair of them (a repeated one included).
/// Keystone runs the case-insensitive ones in SQL as `ILIKE`, so `%` and `_` in the value are
/// wildcards there, and the case-sensitive ones in Python as plain substring tests. A
/// comparator it does not know is ignored; an attribute without a value never matches.
fn matches_inexact(query: &ListQuery, key: &str, value: Option<&str>, in_sql: bool) -> bool {
    let prefix = format!("{key}__");
    for (k, want) in &query.pairs {
        let Some(comparator) = k.strip_prefix(&prefix) else {
            continue;
        };
        let want = want.as_str();
        let (insensitive, comparator) = match comparator.strip_prefix('i') {
            Some(rest) => (true, rest),
            None => (false, comparator),
        };
        let pattern = match comparator {
            "contains" => format!("%{want}%"),
            "startswith" => format!("{want}%"),
            "endswith" => format!("%{want}"),
            _ => continue,
        };
        let Some(value) = value else {
            return false;
        };
        let hit = if insensitive && in_sql {
            like(&value.to_lowercase(), &pattern.to_lowercase())
        } else {
            let (value, want) = if insensitive {
                (value.to_lowercase(), want.to_lowercase())
            } else {
                (value.to_string(), want.to_string())
            };
            match comparator {
                "contains" => value.contains(&want),
                "startswith" => value.starts_with(&want),
                _ => value.ends_with(&want),
            }
        };
        if !hit {
            return false;
        }
    }
    true
}

/// SQL `LIKE` without an escape character (SQLite's): `%` is any run of characters, `_` any
/// one character.
fn like(value: &str, pattern: &str) -> bool {
    let v: Vec<char> = value.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // reach[j]: the pattern's first j characters can match the value read so far.
    let mut reach = vec![false; p.len() + 1];
    reach[0] = true;
    for j in 1..=p.len() {
        reach[j] = reach[j - 1] && p[j - 1] == '%';
    }
    for c in v {
        let mut next = vec![false; p.len() + 1];
        for j in 1..=p.len() {
            next[j] = match p[j - 1] {
                '%' => next[j - 1] || reach[j],
                '_' => reach[j - 1],
                pc => reach[j - 1] && pc == c,
            };
        }
        reach = next;
    }
    reach[p.len()]
}

/// A boolean attribute against a boolean filter (`enabled=false`).
pub fn matches_flag(query: &ListQuery, key: &str, value: bool) -> bool {
    query
        .pairs
        .iter()
        .filter(|(k, _)| k == key)
        .all(|(_, want)| false_unless_listed_false(want) == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inexact_filters_as_keystone_reads_them() {
        let q = |text: &str| ListQuery::parse(Some(text));
        let m = |text: &str, v: Option<&str>| matches(&q(text), "name", v);
        assert!(m("name__contains=ob", Some("Bob")));
        assert!(!m("name__contains=OB", Some("Bob")));
        assert!(m("name__icontains=OB", Some("Bob")));
        assert!(m("name__startswith=B", Some("Bob")) && !m("name__startswith=b", Some("Bob")));
        assert!(m("name__istartswith=b", Some("Bob")));
        assert!(m("name__endswith=ob", Some("Bob")) && m("name__iendswith=OB", Some("Bob")));
        // ILIKE's wildcards in the case-insensitive forms only.
        assert!(m("name__icontains=b_b", Some("Bob")));
        assert!(!m("name__contains=b_b", Some("Bob")));
        assert!(m("name__istartswith=%25b", Some("Bob")));
        // Unknown comparators are ignored; a missing value never matches; every value of a
        // repeated key applies (Keystone: `name=a&name=b` lists nothing); exact and inexact
        // filters both apply.
        assert!(m("name__like=zzz", Some("Bob")));
        assert!(!m("name__contains=o", None));
        assert!(!m("name__contains=o&name__contains=zzz", Some("Bob")));
        assert!(!m("name=Bob&name=Eve", Some("Bob")));
        assert!(!matches_flag(
            &q("enabled=true&enabled=false"),
            "enabled",
            true
        ));
        assert!(!m("name=Bob&name__contains=x", Some("Bob")));
        assert!(matches(&q("domain_id__contains=x"), "name", Some("Bob")));
        // An attribute kept in `extra` is filtered in Python: no wildcards.
        let e = |text: &str, v: Option<&str>| matches_extra(&q(text), "name", v);
        assert!(e("name__icontains=OB", Some("Bob")) && !e("name__icontains=b_b", Some("Bob")));
        assert!(!e("name__icontains=%25", Some("Bob")) && e("name__icontains=%25", Some("a%")));
        assert!(!e("name=Bob&name__contains=x", Some("Bob")));
    }

    #[test]
    fn like_patterns() {
        assert!(like("abc", "a%") && like("abc", "%c") && like("abc", "%b%") && like("", "%"));
        assert!(like("abc", "a_c") && !like("abc", "a_") && !like("ab", "a_c"));
        assert!(like("a%c", "a%%c") && !like("abd", "a%c"));
    }

    #[test]
    fn query_decoding_and_flags() {
        let q = ListQuery::parse(Some("name=a%20b&enabled=false&x&y=1&name=c+d"));
        assert_eq!(q.get("name"), Some("a b"));
        assert_eq!(q.flag("enabled"), Some(false));
        assert_eq!(q.flag("x"), Some(true));
        assert_eq!(q.flag("y"), Some(true));
        assert_eq!(q.flag("z"), None);
        assert_eq!(q.pairs.len(), 5);
        assert_eq!(ListQuery::parse(Some("a=%zz%4")).get("a"), Some("%zz%4"));
        assert_eq!(encode("a b/é~"), "a%20b%2F%C3%A9~");
    }

    #[test]
    fn token_query_readings() {
        let q = TokenQuery::parse(Some("nocatalog&allow_expired=True&cascade=nonsense")).unwrap();
        assert!(q.nocatalog && q.allow_expired && q.cascade);
        let q = TokenQuery::parse(Some("allow_expired=maybe&cascade=No")).unwrap();
        assert!(!q.nocatalog && !q.allow_expired && !q.cascade);
    }
}
