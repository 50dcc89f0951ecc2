//! Vectors computed by python-keystoneclient 6.0.0's `Ec2Signer` (the signer Keystone uses).

use serde_json::{json, Map, Value};

use super::*;

const SECRET: &str = "s3cr3t-key";

fn creds(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn expected(v: Value) -> String {
    let c = creds(v);
    let host = c.get("host").map(py_str).unwrap_or_default();
    SignedRequest::new(&c)
        .unwrap()
        .expected(SECRET, &host)
        .unwrap()
}

fn v2_request(signature: &str) -> Value {
    json!({
        "params": {"Action": "Describe Instances/é", "AWSAccessKeyId": "ak",
                   "SignatureMethod": "HmacSHA1", "SignatureVersion": "2",
                   "Timestamp": "2024-01-02T03:04:05Z", "Ä": "~x y"},
        "verb": "GET", "host": "ec2.example.com:8773", "path": "/services/Cloud/",
        "signature": signature,
    })
}

#[test]
fn version_0_and_1() {
    let v0 = json!({"params": {"Action": "DescribeInstances",
        "Timestamp": "2024-01-02T03:04:05Z", "SignatureVersion": "0"}});
    assert_eq!(expected(v0), "meKVfo1OuNqf6uuSFcfRqxYAodE=");
    let v1 = json!({"params": {"Action": "DescribeInstances", "AWSAccessKeyId": "ak",
        "timestamp": "x", "Version": "2010", "SignatureVersion": "1", "b": 2}});
    assert_eq!(expected(v1), "AAvUvf5KE+P+IzmHxGmZQdLAd9E=");
}

#[test]
fn version_2_with_and_without_the_port() {
    assert_eq!(
        expected(v2_request("")),
        "kpjJ1FBLxbjyADuHv4Ti5M4zK64iDysZ67nScFcUNUo="
    );
    let with_port = creds(v2_request("kpjJ1FBLxbjyADuHv4Ti5M4zK64iDysZ67nScFcUNUo="));
    assert_eq!(verify(&with_port, SECRET), Ok(true));
    // Signed for the host without its port: Keystone's retry accepts it.
    let without = creds(v2_request("QUhPeuxM0U19NrFW/JpYTtUzUmywx1IUF+TA+K2lMq4="));
    assert_eq!(verify(&without, SECRET), Ok(true));
    let wrong = creds(v2_request("QUhPeuxM0U19NrFW/JpYTtUzUmywx1IUF+TA+K2lMq5="));
    assert_eq!(verify(&wrong, SECRET), Ok(false));
    assert_eq!(verify(&wrong, "other"), Ok(false));
    assert!(verify(&creds(v2_request("")), SECRET).is_err());
}

#[test]
fn version_4_header_and_query() {
    let header = json!({
        "params": {}, "verb": "POST", "host": "x", "path": "/",
        "body_hash": "2ad3e4f11f3975e1ef682287b4839c82b39f57edd29defdc12f4e97608481030",
        "headers": {
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=abc",
            "Host": "ec2.example.com:8773", "X-Amz-Date": "20240102T030405Z",
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": "Boto/2.9.1 Python"}});
    assert_eq!(
        expected(header),
        "f8a362fc291087ca7a53b8bfaacbd3f97828df4f17f533a24dcaa1ceba61db34"
    );
    let query = json!({
        "params": {"X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                   "X-Amz-Credential": "AKID/20240102/RegionOne/s3/aws4_request",
                   "X-Amz-Date": "20240102T030405Z", "X-Amz-SignedHeaders": "host",
                   "Action": "List"},
        "verb": "get", "host": "x", "path": "/b/k", "body_hash": "UNSIGNED-PAYLOAD",
        "headers": {"host": "s3.example.com"}});
    assert_eq!(
        expected(query),
        "545f50b96914a59da8ebfe93692bc25c3a331620d3164191b8fc02516452fcd9"
    );
}

#[test]
fn malformed_requests_are_errors() {
    assert!(SignedRequest::new(&creds(json!({}))).is_err());
    let unknown = creds(json!({"params": {"SignatureVersion": "3"}}));
    assert!(SignedRequest::new(&unknown)
        .unwrap()
        .expected(SECRET, "h")
        .is_err());
    let date_mismatch = creds(json!({
        "params": {}, "verb": "GET", "path": "/", "body_hash": "x",
        "headers": {"Authorization": "AWS4-HMAC-SHA256 Credential=A/20240101/r/s/aws4_request, SignedHeaders=host", "X-Amz-Date": "20240102T000000Z"}}));
    assert!(SignedRequest::new(&date_mismatch)
        .unwrap()
        .expected(SECRET, "h")
        .is_err());
}

#[test]
fn python_hostname() {
    assert_eq!(hostname("Example.COM:8773"), "example.com");
    assert_eq!(hostname("[::1]:80"), "::1");
    assert_eq!(hostname("h"), "h");
    assert_eq!(
        canonical_qs(&creds(json!({"b": "a b", "a": "~/é"}))),
        "a=~%2F%C3%A9&b=a%20b"
    );
}
