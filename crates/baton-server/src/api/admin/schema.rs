//! Keystone 30's newer request validator (`keystone.api.validation`), for the resources it checks
//! with it (trusts, credentials, unified limits): its messages and the JSON-schema keywords
//! those schemas use, each checked in the order jsonschema checks them.
//!
//! An error names the last element of its path and the offending value as Python's `str`
//! prints it: `Invalid input for field/attribute <at>. Value: <value>. <jsonschema message>`,
//! or the bare jsonschema message for the body as a whole. The older validator the other admin
//! resources use has its own shape (`invalid` in the parent module).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use serde_json::{Map, Value};

use crate::api::extract::body_rejection;
use crate::error::{ApiError, ApiResult};

/// The body as JSON, anything unreadable as `{}` (Keystone's `get_json(silent=True) or {}`).
pub fn body_json(body: Result<Bytes, BytesRejection>) -> ApiResult<Map<String, Value>> {
    let bytes = body.map_err(body_rejection)?;
    Ok(match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => {
            super::refuse_nul(&m)?;
            m
        }
        _ => Map::new(),
    })
}

/// Python's `repr` of a JSON value, as jsonschema's messages quote instances. Objects come out
/// in key order (the client's order is not kept).
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::from(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
            )
        }
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::String(k.clone())), py_repr(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// Keystone's message for an error at `at` (the last element of the path) on `value`.
pub fn schema_error(at: &str, value: &Value, message: impl std::fmt::Display) -> ApiError {
    let shown = match value {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    };
    ApiError::BadRequest(format!(
        "Invalid input for field/attribute {at}. Value: {shown}. {message}"
    ))
}

/// An error about the body as a whole (an empty path): jsonschema's message alone.
pub fn body_error(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// Whether `v` is of jsonschema type `ty` (a float with no fraction is an integer, as in
/// Draft 2020-12).
pub fn is_type(v: &Value, ty: &str) -> bool {
    match ty {
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => {
            v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0 && v.is_f64())
        }
        "null" => v.is_null(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => false,
    }
}

/// The value of a property that passed an `integer` type check (`5.0` is 5, as in Keystone).
pub fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// `type`: `value` (at `at`) is one of `types`.
pub fn check_type(at: &str, value: &Value, types: &[&str]) -> ApiResult<()> {
    if types.iter().any(|t| is_type(value, t)) {
        return Ok(());
    }
    let names: Vec<String> = types.iter().map(|t| format!("'{t}'")).collect();
    let msg = format!("{} is not of type {}", py_repr(value), names.join(", "));
    Err(schema_error(at, value, msg))
}

/// A `pattern` keyword: its text (for the message) and a check standing in for the regex.
pub type Pattern<'a> = (&'a str, fn(&str) -> bool);

/// A string property's keywords: `minLength`, `maxLength`, then `pattern` (as a check and the
/// pattern's text for the message). Non-strings pass (their type is checked before).
pub fn check_string(
    at: &str,
    value: &Value,
    min: usize,
    max: usize,
    pattern: Option<Pattern<'_>>,
) -> ApiResult<()> {
    let Value::String(s) = value else {
        return Ok(());
    };
    let n = s.chars().count();
    let msg = if n < min {
        if min == 1 {
            format!("{} should be non-empty", py_repr(value))
        } else {
            format!("{} is too short", py_repr(value))
        }
    } else if n > max {
        format!("{} is too long", py_repr(value))
    } else {
        match pattern {
            Some((text, ok)) if !ok(s) => format!(
                "{} does not match {}",
                py_repr(value),
                py_repr(&Value::String(text.into()))
            ),
            _ => return Ok(()),
        }
    };
    Err(schema_error(at, value, msg))
}

/// `minimum` and `maximum` of an integer property.
pub fn check_range(at: &str, value: &Value, min: i64, max: i64) -> ApiResult<()> {
    let Some(n) = value.as_f64() else {
        return Ok(());
    };
    let shown = py_repr(value);
    if n < min as f64 {
        return Err(schema_error(
            at,
            value,
            format!("{shown} is less than the minimum of {min}"),
        ));
    }
    if n > max as f64 {
        return Err(schema_error(
            at,
            value,
            format!("{shown} is greater than the maximum of {max}"),
        ));
    }
    Ok(())
}

/// oslo.utils' `is_uuid_like`: 32 hex digits once `urn:`, `uuid:`, braces and dashes are
/// dropped (what Python's `uuid.UUID` accepts).
pub fn is_uuid_like(s: &str) -> bool {
    let bare = s
        .replace("urn:", "")
        .replace("uuid:", "")
        .trim_matches(|c| c == '{' || c == '}')
        .replace('-', "");
    bare.len() == 32 && bare.chars().all(|c| c.is_ascii_hexdigit())
}

/// `format: uuid` (Keystone's format checker): non-strings pass.
pub fn check_uuid(at: &str, value: &Value) -> ApiResult<()> {
    match value {
        Value::String(s) if !is_uuid_like(s) => Err(schema_error(
            at,
            value,
            format!("{} is not a 'uuid'", py_repr(value)),
        )),
        _ => Ok(()),
    }
}

/// `additionalProperties: false` for the object at `at` (the body itself when `at` is empty).
pub fn check_additional(at: &str, obj: &Map<String, Value>, allowed: &[&str]) -> ApiResult<()> {
    let mut extra: Vec<&String> = obj
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    extra.sort();
    let list = extra
        .iter()
        .map(|k| py_repr(&Value::String((*k).clone())))
        .collect::<Vec<_>>()
        .join(", ");
    let verb = if extra.len() == 1 { "was" } else { "were" };
    let msg = format!("Additional properties are not allowed ({list} {verb} unexpected)");
    if at.is_empty() {
        Err(body_error(msg))
    } else {
        Err(schema_error(at, &Value::Object(obj.clone()), msg))
    }
}

/// `required` for the object at `at` (the body itself when `at` is empty).
pub fn check_required(at: &str, obj: &Map<String, Value>, keys: &[&str]) -> ApiResult<()> {
    let Some(missing) = keys.iter().find(|k| !obj.contains_key(**k)) else {
        return Ok(());
    };
    let msg = format!("'{missing}' is a required property");
    if at.is_empty() {
        Err(body_error(msg))
    } else {
        Err(schema_error(at, &Value::Object(obj.clone()), msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(r: ApiResult<()>) -> String {
        match r {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_are_keystones() {
        // Each expectation is what Keystone 30's validator printed for the same value.
        assert_eq!(
            message(check_type("default_limit", &json!("5"), &["integer"])),
            "Invalid input for field/attribute default_limit. Value: 5. '5' is not of type 'integer'"
        );
        assert_eq!(
            message(check_type("region_id", &json!(5), &["string", "null"])),
            "Invalid input for field/attribute region_id. Value: 5. 5 is not of type 'string', 'null'"
        );
        assert_eq!(
            message(check_string("resource_name", &json!("  "), 1, 255, Some(("[\\S]+", |s| !s.trim().is_empty())))),
            "Invalid input for field/attribute resource_name. Value:   . '  ' does not match '[\\\\S]+'"
        );
        assert_eq!(
            message(check_string("region_id", &json!(""), 1, 255, None)),
            "Invalid input for field/attribute region_id. Value: . '' should be non-empty"
        );
        assert_eq!(
            message(check_range("default_limit", &json!(-2), -1, 0x7FFF_FFFF)),
            "Invalid input for field/attribute default_limit. Value: -2. -2 is less than the minimum of -1"
        );
        assert_eq!(
            message(check_uuid("service_id", &json!("abc"))),
            "Invalid input for field/attribute service_id. Value: abc. 'abc' is not a 'uuid'"
        );
        assert!(is_type(&json!(5.0), "integer") && !is_type(&json!(5.5), "integer"));
        assert!(!is_type(&json!(true), "integer"));
        assert!(is_uuid_like("9FE2FF9E-E438-4B18-94A9-0878D3E92BAB"));
        assert!(is_uuid_like("urn:uuid:9fe2ff9ee4384b1894a90878d3e92bab"));
        assert!(!is_uuid_like("9fe2ff9ee4384b1894a90878d3e92ba"));
    }
}
