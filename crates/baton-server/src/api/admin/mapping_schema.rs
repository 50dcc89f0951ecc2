//! The federation mapping schema (versions 1.0, 2.0 and 3.0) and the part of JSON Schema
//! draft 4 it uses, with jsonschema's messages: Keystone reports every violation at once, one
//! message per line, sorted, so this walks the whole document instead of stopping at the first.

use std::sync::LazyLock;

use serde_json::{json, Value};

use super::schema::{is_type, py_repr};

/// The schema versions Keystone 30 knows; `1.0` is `[federation]
/// attribute_mapping_default_schema_version`'s default.
pub const SCHEMA_VERSIONS: &[&str] = &["1.0", "2.0", "3.0"];
/// The version a mapping without one gets.
pub const DEFAULT_SCHEMA_VERSION: &str = "1.0";

fn domain() -> Value {
    json!({
        "type": "object",
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
        "additionalProperties": false
    })
}

fn remote_kind(key: &str) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["type", key],
        "properties": {
            "type": {"type": "string"},
            key: {"type": "array"},
            "regex": {"type": "boolean"}
        }
    })
}

/// The properties of a rule's `local` entries: 2.0 lets a project name its domain; 3.0 adds
/// `projects_json`.
fn local_properties(version: &str) -> Value {
    let roles = json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}},
            "additionalProperties": false
        }
    });
    let mut project_properties = json!({"name": {"type": "string"}, "roles": roles});
    if version != "1.0" {
        project_properties["domain"] = domain();
    }
    let mut local = json!({
        "user": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "email": {"type": "string"},
                "domain": {"$ref": "#/definitions/domain"},
                "type": {"type": "string", "enum": ["ephemeral", "local"]}
            },
            "additionalProperties": false
        },
        "projects": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "roles"],
                "additionalProperties": false,
                "properties": project_properties
            }
        },
        "group": {
            "type": "object",
            "oneOf": [{"$ref": "#/definitions/group_by_id"}, {"$ref": "#/definitions/group_by_name"}]
        },
        "groups": {"type": "string"},
        "group_ids": {"type": "string"},
        "domain": {"$ref": "#/definitions/domain"}
    });
    if version == "3.0" {
        local["projects_json"] = json!({"type": "string"});
    }
    local
}

/// The schema's `definitions` (the same in every version).
fn definitions() -> Value {
    json!({
        "empty": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"type": "string"}},
            "additionalProperties": false
        },
        "any_one_of": remote_kind("any_one_of"),
        "not_any_of": remote_kind("not_any_of"),
        "blacklist": remote_kind("blacklist"),
        "whitelist": remote_kind("whitelist"),
        "domain": domain(),
        "group_by_id": {
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "additionalProperties": false,
            "required": ["id"]
        },
        "group_by_name": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "domain": {"$ref": "#/definitions/domain"}},
            "additionalProperties": false,
            "required": ["name", "domain"]
        }
    })
}

/// The whole schema of one version.
fn mapping_schema(version: &str) -> Value {
    json!({
        "type": "object",
        "required": ["rules"],
        "properties": {
            "rules": {
                "minItems": 1,
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["local", "remote"],
                    "additionalProperties": false,
                    "properties": {
                        "local": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": false,
                                "properties": local_properties(version)
                            }
                        },
                        "remote": {
                            "minItems": 1,
                            "type": "array",
                            "items": {
                                "type": "object",
                                "oneOf": [
                                    {"$ref": "#/definitions/empty"},
                                    {"$ref": "#/definitions/any_one_of"},
                                    {"$ref": "#/definitions/not_any_of"},
                                    {"$ref": "#/definitions/blacklist"},
                                    {"$ref": "#/definitions/whitelist"}
                                ]
                            }
                        }
                    }
                }
            },
            "schema_version": {"type": "string"}
        },
        "definitions": definitions()
    })
}

static SCHEMAS: LazyLock<Vec<(&'static str, Value)>> = LazyLock::new(|| {
    SCHEMA_VERSIONS
        .iter()
        .map(|v| (*v, mapping_schema(v)))
        .collect()
});

/// Every violation of `mapping` (with its `schema_version` filled in) against that version's
/// schema, as jsonschema words them, sorted as Keystone sorts them; empty when it is valid.
/// `None` when the version is not one Keystone knows.
pub fn violations(mapping: &Value, version: &str) -> Option<Vec<String>> {
    let (_, schema) = SCHEMAS.iter().find(|(v, _)| *v == version)?;
    let mut out = Vec::new();
    check(schema, mapping, schema, &mut out);
    out.sort();
    Some(out)
}

/// Draft 4's `type`, `enum`, `required`, `properties`, `additionalProperties: false`,
/// `items`, `minItems`, `oneOf` and `$ref` (which, in draft 4, hides its siblings).
fn check(schema: &Value, v: &Value, root: &Value, out: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/definitions/");
        check(&root["definitions"][name], v, root, out);
        return;
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        if !is_type(v, t) {
            out.push(format!("{} is not of type '{t}'", py_repr(v)));
        }
    }
    if let Some(Value::Array(choices)) = schema.get("enum") {
        if !choices.contains(v) {
            out.push(format!(
                "{} is not one of {}",
                py_repr(v),
                py_repr(&Value::Array(choices.clone()))
            ));
        }
    }
    if let Value::Array(items) = v {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                let what = if min == 1 {
                    "should be non-empty"
                } else {
                    "is too short"
                };
                out.push(format!("{} {what}", py_repr(v)));
            }
        }
        if let Some(each) = schema.get("items") {
            for item in items {
                check(each, item, root, out);
            }
        }
    }
    if let Value::Object(obj) = v {
        object_keywords(schema, obj, root, out);
    }
    if let Some(Value::Array(choices)) = schema.get("oneOf") {
        let valid = choices
            .iter()
            .filter(|c| {
                let mut errs = Vec::new();
                check(c, v, root, &mut errs);
                errs.is_empty()
            })
            .count();
        if valid == 0 {
            out.push(format!(
                "{} is not valid under any of the given schemas",
                py_repr(v)
            ));
        }
    }
}

fn object_keywords(
    schema: &Value,
    obj: &serde_json::Map<String, Value>,
    root: &Value,
    out: &mut Vec<String>,
) {
    if let Some(Value::Array(required)) = schema.get("required") {
        for key in required.iter().filter_map(Value::as_str) {
            if !obj.contains_key(key) {
                out.push(format!("'{key}' is a required property"));
            }
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    if let Some(props) = properties {
        for (key, sub) in props {
            if let Some(value) = obj.get(key) {
                check(sub, value, root, out);
            }
        }
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        let extra: Vec<String> = obj
            .keys()
            .filter(|k| !properties.is_some_and(|p| p.contains_key(*k)))
            .map(|k| py_repr(&Value::String(k.clone())))
            .collect();
        if !extra.is_empty() {
            let verb = if extra.len() == 1 { "was" } else { "were" };
            out.push(format!(
                "Additional properties are not allowed ({} {verb} unexpected)",
                extra.join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_jsonschemas() {
        // Each expectation is what Keystone 30 answered for the same mapping.
        let ok = json!({"rules": [{"local": [{"user": {"name": "{0}"}}], "remote": [{"type": "UserName"}]}]});
        assert_eq!(violations(&ok, "1.0"), Some(vec![]));
        assert_eq!(violations(&ok, "4.0"), None);
        assert_eq!(
            violations(&json!({"rules": []}), "1.0").unwrap(),
            ["[] should be non-empty"]
        );
        let bad = json!({"rules": [{"local": [{"group": {"id": "g", "name": "n"}}], "remote": [{"type": "a", "any_one_of": "x"}]}]});
        assert_eq!(
            violations(&bad, "1.0").unwrap(),
            [
                "{'any_one_of': 'x', 'type': 'a'} is not valid under any of the given schemas",
                "{'id': 'g', 'name': 'n'} is not valid under any of the given schemas",
            ]
        );
        let project = json!({"rules": [{"local": [{"projects": [{"name": "p", "roles": [], "domain": {"id": "d"}}]}], "remote": [{"type": "a"}]}]});
        assert_eq!(
            violations(&project, "1.0").unwrap(),
            ["Additional properties are not allowed ('domain' was unexpected)"]
        );
        assert_eq!(violations(&project, "2.0"), Some(vec![]));
    }
}
