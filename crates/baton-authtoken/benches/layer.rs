//! The cached path of the auth_token middleware, without HTTP or a load generator: a valid user
//! token + service token pair that the in-process cache already holds.
//!
//! * `authtoken/authenticate_cached_pair`: [`Authenticator::authenticate`] alone;
//! * `authtoken/layer_cached_pair`: a whole request through [`AuthTokenLayer`] (strip the
//!   incoming identity headers, authenticate, write keystonemiddleware's ~30 headers, put the
//!   `IdentityContext` in the extensions) to an inner service answering 200;
//! * `authtoken/no_layer`: the same request straight to that inner service (subtract it).
//!
//! It needs a running identity server and a pair of tokens, which `scripts/bench-authtoken.sh`
//! provides:
//!
//! ```text
//! BENCH_AUTHTOKEN_INI=authtoken.ini BENCH_USER_TOKEN=... BENCH_SERVICE_TOKEN=... \
//!     cargo bench -p baton-authtoken --bench layer
//! ```
//!
//! Without these variables it prints a note and measures nothing.

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does
#![allow(missing_docs)] // criterion_group! defines an undocumented pub fn

use std::hint::black_box;
use std::time::Duration;

use baton_authtoken::{AuthTokenConfig, AuthTokenLayer, Authenticator, Decision};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt};

struct Setup {
    auth: Authenticator,
    headers: HeaderMap,
}

fn setup(rt: &tokio::runtime::Runtime) -> Option<Setup> {
    let (Ok(ini), Ok(user), Ok(service)) = (
        std::env::var("BENCH_AUTHTOKEN_INI"),
        std::env::var("BENCH_USER_TOKEN"),
        std::env::var("BENCH_SERVICE_TOKEN"),
    ) else {
        eprintln!(
            "layer bench: set BENCH_AUTHTOKEN_INI, BENCH_USER_TOKEN and BENCH_SERVICE_TOKEN \
             (scripts/bench-authtoken.sh does); nothing measured"
        );
        return None;
    };
    let ini = baton_config::IniFile::load(&ini).expect("BENCH_AUTHTOKEN_INI");
    let cfg = AuthTokenConfig::from_ini(&ini, baton_authtoken::DEFAULT_SECTION)
        .expect("[keystone_authtoken]");
    let auth = Authenticator::new(cfg).expect("authenticator");
    let mut headers = HeaderMap::new();
    headers.insert("x-auth-token", HeaderValue::from_str(&user).expect("token"));
    headers.insert(
        "x-service-token",
        HeaderValue::from_str(&service).expect("token"),
    );
    // The first call validates both tokens against the identity server and fills the cache.
    let first = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(30),
            auth.authenticate(&Method::GET, "/", &headers),
        )
        .await
    });
    match first {
        Ok(Decision::Forward(ctx)) if ctx.is_service_request() => {}
        other => panic!("the token pair is not accepted as a service request: {other:?}"),
    }
    Some(Setup { auth, headers })
}

fn request(headers: &HeaderMap) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .uri("/servers")
        .body(Full::new(Bytes::new()))
        .expect("request");
    for (k, v) in headers {
        req.headers_mut().insert(k.clone(), v.clone());
    }
    // A client trying to spoof its roles: the layer strips these.
    req.headers_mut()
        .insert("x-roles", HeaderValue::from_static("admin"));
    req
}

fn cached(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let Some(Setup { auth, headers }) = setup(&rt) else {
        return;
    };
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let layered = AuthTokenLayer::new(auth.clone()).layer(inner);

    let mut group = c.benchmark_group("authtoken");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("authenticate_cached_pair", |b| {
        b.to_async(&rt).iter(|| async {
            match auth
                .authenticate(&Method::GET, "/", black_box(&headers))
                .await
            {
                Decision::Forward(ctx) => ctx,
                Decision::Reject(r) => panic!("rejected: {r:?}"),
            }
        })
    });
    group.bench_function("layer_cached_pair", |b| {
        b.to_async(&rt).iter(|| async {
            let resp = layered
                .clone()
                .oneshot(request(black_box(&headers)))
                .await
                .expect("infallible");
            assert_eq!(resp.status(), 200);
            resp
        })
    });
    group.bench_function("no_layer", |b| {
        b.to_async(&rt).iter(|| async {
            let mut svc = inner;
            let resp = svc
                .call(request(black_box(&headers)))
                .await
                .expect("infallible");
            assert_eq!(resp.status(), 200);
            resp
        })
    });
    group.finish();
}

criterion_group!(benches, cached);
criterion_main!(benches);
