//! AWS request signatures as Keystone checks them for `POST /v3/ec2tokens`
//! (python-keystoneclient's `Ec2Signer`): versions 0, 1 and 2 from the request parameters, and
//! version 4 (`AWS4-HMAC-SHA256`) from the `Authorization` header or the `X-Amz-*` parameters.
//!
//! The input is the `credentials` object of the request, as the EC2 front end (nova's ec2 API,
//! swift3, ...) forwards it: `access`, `signature`, `host`, `verb`, `path`, `params`, and for
//! version 4 `headers` and `body_hash`. Values that are not strings are read as Python's `str`
//! reads them. Comparison is constant-time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

/// Why no signature could be computed from a request (Keystone fails such a request with a
/// 500; Baton answers 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

type Result<T> = std::result::Result<T, Malformed>;

/// Python's `str()` of a JSON value, which `Ec2Signer` applies to what it signs.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

fn missing(what: &str) -> Malformed {
    Malformed(format!("missing {what}"))
}

/// The signed request as the credentials object describes it.
pub struct SignedRequest<'a> {
    creds: &'a Map<String, Value>,
    params: &'a Map<String, Value>,
}

impl<'a> SignedRequest<'a> {
    /// Reads `credentials`; its `params` object is required, as `Ec2Signer` requires it.
    pub fn new(creds: &'a Map<String, Value>) -> Result<SignedRequest<'a>> {
        let params = creds
            .get("params")
            .and_then(Value::as_object)
            .ok_or_else(|| missing("params"))?;
        Ok(SignedRequest { creds, params })
    }

    fn field(&self, key: &str) -> Result<String> {
        self.creds.get(key).map(py_str).ok_or_else(|| missing(key))
    }

    fn param(&self, key: &str) -> Option<String> {
        self.params.get(key).map(py_str)
    }

    fn headers(&self) -> Option<&'a Map<String, Value>> {
        self.creds.get("headers").and_then(Value::as_object)
    }

    /// `Ec2Signer.generate`: the signature the request should carry, `host` standing for the
    /// `host` of the credentials (Keystone retries without the port).
    pub fn expected(&self, secret: &str, host: &str) -> Result<String> {
        match self.params.get("SignatureVersion") {
            Some(Value::String(v)) if v == "0" => self.v0(secret),
            Some(Value::String(v)) if v == "1" => Ok(self.v1(secret)),
            Some(Value::String(v)) if v == "2" => self.v2(secret, host),
            other => {
                if self.is_v4() {
                    self.v4(secret)
                } else if let Some(v) = other {
                    Err(Malformed(format!(
                        "Unknown signature version: {}",
                        py_str(v)
                    )))
                } else {
                    Err(Malformed("Unexpected signature format".into()))
                }
            }
        }
    }

    fn v0(&self, secret: &str) -> Result<String> {
        let mut mac = hmac_sha1(secret.as_bytes());
        for key in ["Action", "Timestamp"] {
            match self.params.get(key) {
                Some(Value::String(s)) => mac.update(s.as_bytes()),
                _ => return Err(missing(key)),
            }
        }
        Ok(b64(&mac.finalize().into_bytes()))
    }

    fn v1(&self, secret: &str) -> String {
        let mut keys: Vec<&String> = self.params.keys().collect();
        // Python's stable sort by the lowercased key.
        keys.sort_by_key(|k| k.to_lowercase());
        let mut mac = hmac_sha1(secret.as_bytes());
        for k in keys {
            mac.update(k.as_bytes());
            mac.update(py_str(&self.params[k.as_str()]).as_bytes());
        }
        b64(&mac.finalize().into_bytes())
    }

    fn v2(&self, secret: &str, host: &str) -> Result<String> {
        let verb = self.field("verb")?;
        let path = self.field("path")?;
        // Ec2Signer signs with SHA-256 and says so, whatever the request named.
        let mut params = self.params.clone();
        params.insert("SignatureMethod".into(), Value::String("HmacSHA256".into()));
        let text = format!("{verb}\n{host}\n{path}\n{}", canonical_qs(&params));
        Ok(b64(&hmac_sha256(secret.as_bytes(), text.as_bytes())))
    }

    fn is_v4(&self) -> bool {
        match self.headers().and_then(|h| h.get("Authorization")) {
            Some(auth) => py_str(auth).starts_with("AWS4-HMAC-SHA256"),
            None => self.param("X-Amz-Algorithm").as_deref() == Some("AWS4-HMAC-SHA256"),
        }
    }

    /// A parameter of the `Authorization` header (`Credential=...`), or else `X-Amz-<name>`.
    fn auth_param(&self, name: &str) -> Option<String> {
        match self.headers().and_then(|h| h.get("Authorization")) {
            Some(auth) => {
                let auth = py_str(auth);
                let after = auth
                    .split_once(&format!("{name}="))
                    .map_or("", |(_, rest)| rest);
                Some(after.split(',').next().unwrap_or("").to_string())
            }
            None => self.param(&format!("X-Amz-{name}")),
        }
    }

    fn canonical_headers(&self, headers: &Map<String, Value>, signed: &str) -> String {
        let lower: Map<String, Value> = headers
            .iter()
            .map(|(k, v)| {
                let v = py_str(v).trim().to_string();
                (k.trim().to_lowercase(), Value::String(v))
            })
            .collect();
        // Boto before 2.9.3 signed the host without its port.
        let old_boto = lower
            .get("user-agent")
            .map(py_str)
            .is_some_and(|ua| is_old_boto(&ua));
        let mut out = String::new();
        for h in signed.split(';') {
            let Some(v) = lower.get(h) else { continue };
            let mut v = py_str(v);
            if h == "host" && old_boto {
                v = v.split(':').next().unwrap_or("").to_string();
            }
            out.push_str(&format!("{h}:{v}\n"));
        }
        out
    }

    fn v4(&self, secret: &str) -> Result<String> {
        let headers = self.headers().ok_or_else(|| missing("headers"))?;
        let verb = self.field("verb")?.to_uppercase();
        let path = self.field("path")?;
        let body_hash = self.field("body_hash")?;
        let signed = self
            .auth_param("SignedHeaders")
            .ok_or_else(|| missing("SignedHeaders"))?;
        // POST requests carry their parameters in the body.
        let qs = if verb == "POST" {
            String::new()
        } else {
            canonical_qs(self.params)
        };
        let request = [
            verb.as_str(),
            path.as_str(),
            qs.as_str(),
            self.canonical_headers(headers, &signed).as_str(),
            signed.as_str(),
            body_hash.as_str(),
        ]
        .join("\n");
        let credential = self
            .auth_param("Credential")
            .ok_or_else(|| missing("Credential"))?;
        let parts: Vec<&str> = credential.split('/').collect();
        if parts.len() < 4 {
            return Err(Malformed("malformed Credential scope".into()));
        }
        let date = headers
            .get("X-Amz-Date")
            .map(py_str)
            .or_else(|| self.param("X-Amz-Date"))
            .ok_or_else(|| missing("X-Amz-Date"))?;
        if !date.starts_with(parts[1]) {
            return Err(Malformed("Request date mismatch error".into()));
        }
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{}\n{}",
            parts[1..].join("/"),
            hex(&sha2::Sha256::digest(request.as_bytes()))
        );
        let mut key = hmac_sha256(format!("AWS4{secret}").as_bytes(), parts[1].as_bytes());
        for step in [parts[2], parts[3], "aws4_request"] {
            key = hmac_sha256(&key, step.as_bytes());
        }
        Ok(hex(&hmac_sha256(&key, to_sign.as_bytes())))
    }
}

use sha2::Digest as _;

fn is_old_boto(user_agent: &str) -> bool {
    // re.match(r'Boto/2\.[0-9]\.[0-2]', ...)
    let b = user_agent.as_bytes();
    b.len() >= 10
        && b.starts_with(b"Boto/2.")
        && b[7].is_ascii_digit()
        && b[8] == b'.'
        && (b'0'..=b'2').contains(&b[9])
}

/// Keystone's `_canonical_qs`: keys sorted, both sides percent-encoded except `A-Za-z0-9-_.~`.
pub fn canonical_qs(params: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = params.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| format!("{}={}", quote(k), quote(&py_str(&params[k.as_str()]))))
        .collect::<Vec<_>>()
        .join("&")
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac_sha1(key: &[u8]) -> Hmac<sha1::Sha1> {
    // HMAC takes keys of any length.
    <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Python's `urlsplit('//' + host).hostname`: the host without its port, lowercased, an IPv6
/// literal without brackets.
pub fn hostname(host: &str) -> String {
    let netloc = host.split(['/', '?', '#']).next().unwrap_or("");
    let netloc = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let name = if let Some(rest) = netloc.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        netloc.split(':').next().unwrap_or("")
    };
    name.to_lowercase()
}

/// Keystone's `_check_signature`: the request's `signature` must equal the expected one, or,
/// when the host has a port, the one computed for the host without it (some clients sign
/// without the port). `Ok(false)` for a wrong signature; `Err` when none could be computed.
pub fn verify(creds: &Map<String, Value>, secret: &str) -> Result<bool> {
    let Some(given) = creds.get("signature").map(py_str).filter(|s| !s.is_empty()) else {
        return Err(Malformed("EC2 signature not supplied.".into()));
    };
    let req = SignedRequest::new(creds)?;
    let host = creds.get("host").map(py_str);
    let expected = req.expected(secret, host.as_deref().unwrap_or("None"))?;
    if equal(&given, &expected) {
        return Ok(true);
    }
    let host = host.ok_or_else(|| missing("host"))?;
    if host.contains(':') {
        let expected = req.expected(secret, &hostname(&host))?;
        return Ok(equal(&given, &expected));
    }
    Ok(false)
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests;
