use super::*;
use proptest::prelude::*;

const USER: &str = "ee4dfb6e5540447cb3741905149d9b6e";
const PROJECT: &str = "a6944d763bf64ee6a275f1263fae0352";
const AUDIT: &str = "ABEiM0RVZneImaq7zN3u_w";
const EXPIRES: f64 = 1_893_499_200.0;

fn codec() -> PayloadCodec {
    PayloadCodec::keystone_defaults()
}

fn hex(bytes: &[u8]) -> String {
    hex_lower(bytes)
}

fn payload(user: &str, methods: &[&str], scope: Scope) -> TokenPayload {
    TokenPayload {
        user_id: user.to_string(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        expires_at: EXPIRES,
        audit_ids: vec![AUDIT.to_string()],
        scope,
    }
}

fn round_trip(p: &TokenPayload) -> TokenPayload {
    let bytes = codec().encode(p).unwrap();
    codec().decode(&bytes).unwrap()
}

// Test vectors from keystone-wire.md section 2.2.

#[test]
fn vector_v2_project() {
    let p = payload(
        USER,
        &["password"],
        Scope::Project {
            project_id: PROJECT.into(),
        },
    );
    let bytes = codec().encode(&p).unwrap();
    assert_eq!(
        hex(&bytes),
        "960292c3c410ee4dfb6e5540447cb3741905149d9b6e0292c3c410a6944d763bf64ee6a275f1263fae0352cb41dc37205000000091c41000112233445566778899aabbccddeeff"
    );
    assert_eq!(codec().decode(&bytes).unwrap(), p);
}

#[test]
fn vector_v0_unscoped_with_parent_audit_id() {
    let mut p = payload("admin", &["password", "token"], Scope::Unscoped);
    p.audit_ids.push(AUDIT.to_string());
    let bytes = codec().encode(&p).unwrap();
    assert_eq!(
        hex(&bytes),
        "950092c2a561646d696e06cb41dc37205000000092c41000112233445566778899aabbccddeeffc41000112233445566778899aabbccddeeff"
    );
    let back = codec().decode(&bytes).unwrap();
    // Keystone walks the bits from the highest down.
    assert_eq!(back.methods, ["token", "password"]);
    assert_eq!(back.parent_audit_id(), Some(AUDIT));
}

#[test]
fn vector_v1_default_domain() {
    let p = payload(
        USER,
        &["password"],
        Scope::Domain {
            domain_id: "default".into(),
        },
    );
    let bytes = codec().encode(&p).unwrap();
    assert_eq!(
        hex(&bytes),
        "960192c3c410ee4dfb6e5540447cb3741905149d9b6e02a764656661756c74cb41dc37205000000091c41000112233445566778899aabbccddeeff"
    );
    assert_eq!(codec().decode(&bytes).unwrap(), p);
}

#[test]
fn vector_v8_system() {
    let p = payload(
        USER,
        &["password"],
        Scope::System {
            system: "all".into(),
        },
    );
    let bytes = codec().encode(&p).unwrap();
    assert_eq!(
        hex(&bytes),
        "960892c3c410ee4dfb6e5540447cb3741905149d9b6e02a3616c6ccb41dc37205000000091c41000112233445566778899aabbccddeeff"
    );
    assert_eq!(codec().decode(&bytes).unwrap(), p);
}

fn all_scopes(id: &str) -> Vec<Scope> {
    let s = |v: &str| v.to_string();
    vec![
        Scope::Unscoped,
        Scope::Domain {
            domain_id: if python_uuid_bytes(id).is_some() {
                s(id)
            } else {
                s("default")
            },
        },
        Scope::Project { project_id: s(id) },
        Scope::Trust {
            project_id: s(id),
            trust_id: s(PROJECT),
        },
        Scope::FederatedUnscoped {
            group_ids: vec![s(id), s("group-b")],
            idp_id: s(id),
            protocol_id: s("saml2"),
        },
        Scope::FederatedProject {
            project_id: s(id),
            group_ids: vec![],
            idp_id: s("idp"),
            protocol_id: s("openid"),
        },
        Scope::FederatedDomain {
            domain_id: s(id),
            group_ids: vec![s(id)],
            idp_id: s(id),
            protocol_id: s("mapped"),
        },
        Scope::OAuth1 {
            project_id: s(id),
            access_token_id: s(id),
        },
        Scope::System { system: s("all") },
        Scope::ApplicationCredential {
            project_id: s(id),
            app_cred_id: s(id),
        },
        Scope::OAuth2Credential {
            project_id: Some(s(id)),
            domain_id: Some(s(id)),
            thumbprint: s("dGh1bWJwcmludA"),
        },
        Scope::OAuth2Credential {
            project_id: None,
            domain_id: None,
            thumbprint: s("t"),
        },
        Scope::Continuation {
            project_id: s(id),
            actor_id: s(id),
            audience: vec![s("volume"), s("image")],
            operation_expires_at: 1_893_585_600.5,
            subject_audit_id: random_audit_id(),
            delegation: None,
        },
        delegated(ContinuationDelegation::ApplicationCredential(s(id))),
        delegated(ContinuationDelegation::Trust(s(PROJECT))),
    ]
}

/// A continuation of a delegated token.
fn delegated(delegation: ContinuationDelegation) -> Scope {
    Scope::Continuation {
        project_id: PROJECT.to_string(),
        actor_id: PROJECT.to_string(),
        audience: vec!["volume".to_string()],
        operation_expires_at: 1_893_585_600.0,
        subject_audit_id: random_audit_id(),
        delegation: Some(delegation),
    }
}

#[test]
fn every_version_round_trips_with_both_id_forms() {
    for id in [PROJECT, "not-a-uuid", "ldap_user@example.org", ""] {
        let versions: Vec<u8> = all_scopes(id)
            .into_iter()
            .map(|scope| {
                let p = TokenPayload {
                    expires_at: 1_893_499_200.123_456,
                    ..payload(id, &["token", "password"], scope)
                };
                let back = round_trip(&p);
                assert_eq!(back.methods, ["token", "password"]);
                assert_eq!(back.user_id, p.user_id);
                assert_eq!(back.scope, p.scope);
                assert_eq!(back.expires_at.to_bits(), p.expires_at.to_bits());
                back.payload_version()
            })
            .collect();
        assert_eq!(
            versions,
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 200, 200, 200]
        );
    }
}

#[test]
fn continuation_subject_audit_id_is_nil_when_it_is_the_chain_root() {
    let root = random_audit_id();
    let scope = |subject: &str| Scope::Continuation {
        project_id: PROJECT.to_string(),
        actor_id: PROJECT.to_string(),
        audience: vec!["volume".to_string()],
        operation_expires_at: 1_893_585_600.0,
        subject_audit_id: subject.to_string(),
        delegation: None,
    };
    let p = |subject: &str| TokenPayload {
        audit_ids: vec![random_audit_id(), root.clone()],
        ..payload(PROJECT, &["password"], scope(subject))
    };
    let short = codec().encode(&p(&root)).unwrap();
    let long = codec().encode(&p(&random_audit_id())).unwrap();
    assert_eq!(
        long.len() - short.len(),
        17,
        "bin8 of 16 bytes instead of nil"
    );
    for q in [p(&root), p(&random_audit_id())] {
        assert_eq!(round_trip(&q), q);
    }
}

#[test]
fn uuid_forms_are_normalised_to_hex() {
    let dashed = "{EE4DFB6E-5540-447C-B374-1905149D9B6E}";
    let p = payload(
        dashed,
        &["password"],
        Scope::Project {
            project_id: "urn:uuid:a6944d76-3bf6-4ee6-a275-f1263fae0352".into(),
        },
    );
    let back = round_trip(&p);
    assert_eq!(back.user_id, USER);
    assert_eq!(back.project_id(), Some(PROJECT));
}

#[test]
fn python_uuid_parsing_quirks() {
    let cases: &[(&str, Option<&str>)] = &[
        (USER, Some(USER)),
        ("ee4dfb6e-5540-447c-b374-1905149d9b6e", Some(USER)),
        ("e-e-4dfb6e5540447cb3741905149d9b6e-", Some(USER)),
        ("{{ee4dfb6e5540447cb3741905149d9b6e}", Some(USER)),
        (
            " ee4dfb6e5540447cb3741905149d9b6",
            Some("0ee4dfb6e5540447cb3741905149d9b6"),
        ),
        (
            "ee4dfb6e_540447cb3741905149d9b6e",
            Some("0ee4dfb6e540447cb3741905149d9b6e"),
        ),
        ("0x_e4dfb6e5540447cb3741905149d9b6", None),
        ("ee4dfb6e5540447cb3741905149d9b6g", None),
        ("ee4dfb6e5540447cb3741905149d9b6", None),
        ("default", None),
        ("", None),
    ];
    for (input, want) in cases {
        let got = python_uuid_bytes(input).map(|b| hex_lower(&b));
        assert_eq!(got.as_deref(), *want, "{input:?}");
    }
}

#[test]
fn domain_v1_rules() {
    let c = codec();
    let bad = payload(
        USER,
        &["password"],
        Scope::Domain {
            domain_id: "other".into(),
        },
    );
    assert!(matches!(c.encode(&bad), Err(TokenError::InvalidInput(_))));

    // A non-UUID default domain id is written as plain text.
    let custom = PayloadCodec::new(vec!["password".into()], "my_default".into());
    let p = payload(
        USER,
        &["password"],
        Scope::Domain {
            domain_id: "my_default".into(),
        },
    );
    let bytes = custom.encode(&p).unwrap();
    assert_eq!(custom.decode(&bytes).unwrap(), p);
    // Decoding with a different default domain refuses it.
    assert!(matches!(
        codec().decode(&bytes),
        Err(TokenError::InvalidPayload(_))
    ));

    // A UUID domain is stored raw even if it is also the default domain id.
    let uuid_default = PayloadCodec::new(vec!["password".into()], PROJECT.into());
    let p = payload(
        USER,
        &["password"],
        Scope::Domain {
            domain_id: PROJECT.into(),
        },
    );
    let bytes = uuid_default.encode(&p).unwrap();
    assert!(hex(&bytes).contains("c410a6944d76"));
    assert_eq!(uuid_default.decode(&bytes).unwrap(), p);
}

#[test]
fn trust_id_must_be_a_uuid() {
    let p = payload(
        USER,
        &["password"],
        Scope::Trust {
            project_id: PROJECT.into(),
            trust_id: "not-a-uuid".into(),
        },
    );
    assert!(matches!(
        codec().encode(&p),
        Err(TokenError::InvalidInput(_))
    ));
}

#[test]
fn methods_bitmask() {
    let c = codec();
    let bits = |m: &[&str]| c.methods_to_bits(&m.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(bits(&["external"]).unwrap(), 1);
    assert_eq!(bits(&["password"]).unwrap(), 2);
    assert_eq!(bits(&["token"]).unwrap(), 4);
    assert_eq!(bits(&["oauth1"]).unwrap(), 8);
    assert_eq!(bits(&["mapped"]).unwrap(), 16);
    assert_eq!(bits(&["application_credential"]).unwrap(), 32);
    assert_eq!(bits(&["ec2credential"]).unwrap(), 64);
    assert_eq!(bits(&["password", "token"]).unwrap(), 6);
    assert_eq!(bits(&[]).unwrap(), 0);
    assert!(matches!(bits(&["totp"]), Err(TokenError::InvalidInput(_))));

    assert_eq!(c.bits_to_methods(6), ["token", "password"]);
    assert_eq!(
        c.bits_to_methods(63),
        [
            "application_credential",
            "mapped",
            "oauth1",
            "token",
            "password",
            "external"
        ]
    );
    assert!(c.bits_to_methods(0).is_empty());
    // Bits above the configured ones: Keystone's division walk finds nothing at all.
    assert!(c.bits_to_methods(128 + 2).is_empty());
    assert!(c.bits_to_methods(-2).is_empty());
    let six = PayloadCodec::new(
        DEFAULT_AUTH_METHODS[..6]
            .iter()
            .map(|m| m.to_string())
            .collect(),
        "default".into(),
    );
    assert!(six.bits_to_methods(64 + 2).is_empty());
    assert_eq!(c.bits_to_methods(64 + 2), ["ec2credential", "password"]);

    // The order of [auth] methods decides the bits.
    let reordered = PayloadCodec::new(vec!["token".into(), "password".into()], "default".into());
    assert_eq!(reordered.bits_to_methods(6), Vec::<String>::new());
    assert_eq!(reordered.bits_to_methods(3), ["password", "token"]);
}

#[test]
fn sub_second_expiry_is_kept() {
    let p = TokenPayload {
        expires_at: 1_893_499_200.654_321,
        ..payload(USER, &["password"], Scope::Unscoped)
    };
    let back = round_trip(&p);
    assert_eq!(back.expires_at, 1_893_499_200.654_321);
    assert_eq!(back.expires_at_micros(), 1_893_499_200_654_321);
    assert_eq!(
        TokenPayload::expires_at_from_micros(1_893_499_200_654_321),
        1_893_499_200.654_321
    );
    let nan = TokenPayload {
        expires_at: f64::NAN,
        ..p
    };
    assert!(matches!(
        codec().encode(&nan),
        Err(TokenError::InvalidInput(_))
    ));
}

#[test]
fn integer_expiry_is_accepted() {
    // [0, [false, "u"], 2, 1893499200, []]
    let bytes = [
        0x95, 0x00, 0x92, 0xc2, 0xa1, b'u', 0x02, 0xce, 0x70, 0xdc, 0x81, 0x40, 0x90,
    ];
    let p = codec().decode(&bytes).unwrap();
    assert_eq!(p.expires_at, 1_893_499_200.0);
    assert!(p.audit_ids.is_empty());
}

/// The v2 vector as msgpack < 1.0 wrote it: every bytes value uses the raw/str type.
#[test]
fn old_msgpack_raw_strings_decode() {
    let mut raw = Vec::new();
    raw.extend_from_slice(&[0x96, 0x02, 0x92, 0xc3, 0xb0]);
    raw.extend_from_slice(&python_uuid_bytes(USER).unwrap());
    raw.extend_from_slice(&[0x02, 0x92, 0xc3, 0xb0]);
    raw.extend_from_slice(&python_uuid_bytes(PROJECT).unwrap());
    raw.push(0xcb);
    raw.extend_from_slice(&EXPIRES.to_be_bytes());
    raw.extend_from_slice(&[0x91, 0xb0]);
    raw.extend_from_slice(&AUDIT_B64.decode(AUDIT).unwrap());
    let p = codec().decode(&raw).unwrap();
    assert_eq!(
        p,
        payload(
            USER,
            &["password"],
            Scope::Project {
                project_id: PROJECT.into()
            }
        )
    );

    // Text fields as bin (what a raw decoder hands back) are accepted too.
    let bytes = [
        0x96, 0x08, 0x92, 0xc2, 0xc4, 0x01, b'u', 0x02, 0xc4, 0x03, b'a', b'l', b'l', 0xcb, 0x41,
        0xdc, 0x37, 0x20, 0x50, 0, 0, 0, 0x90,
    ];
    let p = codec().decode(&bytes).unwrap();
    assert_eq!(p.user_id, "u");
    assert_eq!(p.system(), Some("all"));

    // A v1 default domain stored as raw str.
    let mut v1 = vec![0x96, 0x01, 0x92, 0xc2, 0xa1, b'u', 0x02, 0xa7];
    v1.extend_from_slice(b"default");
    v1.push(0xcb);
    v1.extend_from_slice(&EXPIRES.to_be_bytes());
    v1.push(0x90);
    assert_eq!(codec().decode(&v1).unwrap().domain_id(), Some("default"));
}

#[test]
fn unsupported_and_invalid_payloads() {
    let c = codec();
    // [11, ...] and [-1]
    assert_eq!(
        c.decode(&[0x95, 0x0b, 0xc0, 0xc0, 0xc0, 0xc0]),
        Err(TokenError::UnsupportedPayloadVersion(11))
    );
    assert_eq!(
        c.decode(&[0x91, 0xff]),
        Err(TokenError::UnsupportedPayloadVersion(-1))
    );
    let good = c
        .encode(&payload(
            USER,
            &["password"],
            Scope::Project {
                project_id: PROJECT.into(),
            },
        ))
        .unwrap();
    for bad in [
        &b""[..],
        &[0x90],
        &[0xa1, b'x'],
        &[0x91, 0xa1, b'x'],
        &[0x80],
        &[0xdd, 0xff, 0xff, 0xff, 0xff],
        &good[..good.len() - 1],
        &[good.as_slice(), &[0x00]].concat(),
    ] {
        assert!(
            matches!(c.decode(bad), Err(TokenError::InvalidPayload(_))),
            "{bad:02x?}"
        );
    }
    // Right version, wrong number of fields.
    assert!(matches!(
        c.decode(&[0x93, 0x02, 0xc0, 0xc0]),
        Err(TokenError::InvalidPayload(_))
    ));
    // Deep nesting is refused without recursing without bound.
    let deep: Vec<u8> = std::iter::repeat_n(0x91, 10_000).chain([0x00]).collect();
    assert!(matches!(
        c.decode(&deep),
        Err(TokenError::InvalidPayload(_))
    ));
}

#[test]
fn audit_ids_are_22_char_uuid4() {
    let id = random_audit_id();
    assert_eq!(id.len(), 22);
    let raw = AUDIT_B64.decode(&id).unwrap();
    assert_eq!(raw[6] >> 4, 4, "UUID version 4");
    assert_ne!(random_audit_id(), id);
    let bad = TokenPayload {
        audit_ids: vec!["not base64!".into()],
        ..payload(USER, &[], Scope::Unscoped)
    };
    assert!(matches!(
        codec().encode(&bad),
        Err(TokenError::InvalidInput(_))
    ));
}

#[test]
fn long_strings_use_str8_like_python() {
    // msgpack-python 1.x writes str8 for 32..=255 bytes.
    let id = "x".repeat(40);
    let bytes = codec().encode(&payload(&id, &[], Scope::Unscoped)).unwrap();
    assert_eq!(&bytes[2..6], &[0x92, 0xc2, 0xd9, 40]);
    // Methods >= 128 need a uint8.
    let many: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let c = PayloadCodec::new(many.clone(), "default".into());
    let bytes = c
        .encode(&TokenPayload {
            methods: vec!["m8".into()],
            ..payload("u", &[], Scope::Unscoped)
        })
        .unwrap();
    assert_eq!(&bytes[6..9], &[0xcd, 0x01, 0x00]);
    assert_eq!(c.decode(&bytes).unwrap().methods, ["m8"]);
}

fn id_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 16]>().prop_map(|b| hex_lower(&b)),
        "[ -~]{0,40}".prop_filter("not a UUID", |s| python_uuid_bytes(s).is_none()),
        "\\PC{0,20}".prop_filter("not a UUID", |s| python_uuid_bytes(s).is_none()),
    ]
}

fn uuid_strategy() -> impl Strategy<Value = String> {
    any::<[u8; 16]>().prop_map(|b| hex_lower(&b))
}

fn scope_strategy() -> impl Strategy<Value = Scope> {
    let groups = || proptest::collection::vec(id_strategy(), 0..4);
    prop_oneof![
        Just(Scope::Unscoped),
        prop_oneof![uuid_strategy(), Just("default".to_string())]
            .prop_map(|domain_id| Scope::Domain { domain_id }),
        id_strategy().prop_map(|project_id| Scope::Project { project_id }),
        (id_strategy(), uuid_strategy()).prop_map(|(project_id, trust_id)| Scope::Trust {
            project_id,
            trust_id
        }),
        (groups(), id_strategy(), "\\PC{0,12}").prop_map(|(group_ids, idp_id, protocol_id)| {
            Scope::FederatedUnscoped {
                group_ids,
                idp_id,
                protocol_id,
            }
        }),
        (id_strategy(), groups(), id_strategy(), "[a-z0-9]{1,12}").prop_map(
            |(project_id, group_ids, idp_id, protocol_id)| Scope::FederatedProject {
                project_id,
                group_ids,
                idp_id,
                protocol_id
            }
        ),
        (id_strategy(), groups(), id_strategy(), "[a-z0-9]{1,12}").prop_map(
            |(domain_id, group_ids, idp_id, protocol_id)| Scope::FederatedDomain {
                domain_id,
                group_ids,
                idp_id,
                protocol_id
            }
        ),
        (id_strategy(), id_strategy()).prop_map(|(project_id, access_token_id)| {
            Scope::OAuth1 {
                project_id,
                access_token_id,
            }
        }),
        "\\PC{0,10}".prop_map(|system| Scope::System { system }),
        (id_strategy(), id_strategy()).prop_map(|(project_id, app_cred_id)| {
            Scope::ApplicationCredential {
                project_id,
                app_cred_id,
            }
        }),
        (
            proptest::option::of(id_strategy()),
            proptest::option::of(id_strategy()),
            "[A-Za-z0-9_-]{1,64}"
        )
            .prop_map(
                |(project_id, domain_id, thumbprint)| Scope::OAuth2Credential {
                    project_id,
                    domain_id,
                    thumbprint
                }
            ),
        continuation_strategy(),
    ]
}

/// Baton's continuation scope, with and without a delegation.
fn continuation_strategy() -> impl Strategy<Value = Scope> {
    (
        id_strategy(),
        id_strategy(),
        proptest::collection::vec("[a-z-]{1,16}", 0..4),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        any::<[u8; 16]>(),
        proptest::option::of(prop_oneof![
            id_strategy().prop_map(ContinuationDelegation::ApplicationCredential),
            uuid_strategy().prop_map(ContinuationDelegation::Trust),
        ]),
    )
        .prop_map(
            |(project_id, actor_id, audience, operation_expires_at, subject, delegation)| {
                Scope::Continuation {
                    project_id,
                    actor_id,
                    audience,
                    operation_expires_at,
                    subject_audit_id: AUDIT_B64.encode(subject),
                    delegation,
                }
            },
        )
}

fn payload_strategy() -> impl Strategy<Value = TokenPayload> {
    (
        id_strategy(),
        proptest::sample::subsequence(DEFAULT_AUTH_METHODS.to_vec(), 0..=7),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        proptest::collection::vec(any::<[u8; 16]>(), 0..3),
        scope_strategy(),
    )
        .prop_map(
            |(user_id, methods, expires_at, audit, scope)| TokenPayload {
                user_id,
                // Decoding yields the highest bit first.
                methods: methods.iter().rev().map(|m| m.to_string()).collect(),
                expires_at,
                audit_ids: audit.iter().map(|a| AUDIT_B64.encode(a)).collect(),
                scope,
            },
        )
}

proptest! {
    #[test]
    fn arbitrary_payloads_round_trip(p in payload_strategy()) {
        let bytes = codec().encode(&p).unwrap();
        let back = codec().decode(&bytes).unwrap();
        prop_assert_eq!(back.expires_at.to_bits(), p.expires_at.to_bits());
        prop_assert_eq!(&back, &p);
        // Re-encoding is stable.
        prop_assert_eq!(codec().encode(&back).unwrap(), bytes);
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = codec().decode(&bytes);
    }

    #[test]
    fn decoder_survives_mutations(p in payload_strategy(), pos in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = codec().encode(&p).unwrap();
        let i = pos % bytes.len();
        bytes[i] = byte;
        let _ = codec().decode(&bytes);
    }
}
