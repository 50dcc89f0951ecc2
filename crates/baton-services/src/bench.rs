//! The figures the Nova spec planned to measure with Rally, for each scenario with and without
//! `[service_user]`: calls to the identity server, the latency of each inter-service call (and so
//! what the service token adds), and the identity server's CPU time, with the receivers'
//! validation caches cold and warm.
//!
//! Method. Tokens live long enough (10 min by default) that every run completes either way, so
//! the numbers compare the cost of sending service tokens, not a failure. For each iteration the
//! identity server and all four services are restarted (empty caches everywhere, no tokens of
//! their own yet), alice gets a token, then the scenario runs twice with that token: *cold*
//! (first run) and *warm* (second run: the receivers have the user token, the service token and
//! their own tokens cached). Counts and CPU time are taken around each run only; alice's own
//! authentication is not counted. Medians over the iterations are reported. Everything runs in
//! one process on loopback; the identity server's threads are its own, so its CPU time is read
//! from `/proc/self/task/*/schedstat` of the threads named `baton-identity`.

use std::path::PathBuf;
use std::time::Duration;

use crate::cloud::{Cloud, CloudOptions, Mode};
use crate::identity::IdentityCounts;
use crate::scenario::{self, Scenario};

/// How the scenario benchmark runs: how many times, how long each operation, which scenarios.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Parent of the run directory.
    pub dir: PathBuf,
    /// Runs of each scenario in each mode (the first is cold, the rest warm).
    pub iterations: u32,
    /// Length of the long phase of each operation (short: it does not touch the identity server).
    pub operation: Duration,
    /// `[token] expiration`, seconds.
    pub token_expiration: u32,
    /// The scenarios to measure.
    pub scenarios: Vec<Scenario>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            dir: std::env::temp_dir().join("baton-bench-scenarios"),
            iterations: 5,
            operation: Duration::from_millis(200),
            token_expiration: 600,
            scenarios: Scenario::ALL.to_vec(),
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Calls the identity server served during the run, by kind.
    pub identity: IdentityCounts,
    /// Calls compute made to the other services.
    pub calls: usize,
    /// Mean duration of those calls, milliseconds.
    pub mean_call_ms: f64,
    /// Identity server CPU time, milliseconds.
    pub cpu_ms: f64,
    /// `completed`, or `failed (<status>)`.
    pub result: String,
}

/// Medians of the samples of one scenario and mode.
#[derive(Debug, Clone)]
pub struct BenchRow {
    /// The scenario measured.
    pub scenario: Scenario,
    /// How compute sent service tokens.
    pub mode: Mode,
    /// The first run, with empty validation caches.
    pub cold: Sample,
    /// The median of the later runs, with warm caches.
    pub warm: Sample,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn median_sample(samples: &[Sample]) -> Sample {
    let m = |f: &dyn Fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    Sample {
        identity: IdentityCounts {
            issue: m(&|s| s.identity.issue as f64).round() as u64,
            validate: m(&|s| s.identity.validate as f64).round() as u64,
            validate_allow_expired: m(&|s| s.identity.validate_allow_expired as f64).round() as u64,
            other: m(&|s| s.identity.other as f64).round() as u64,
        },
        calls: m(&|s| s.calls as f64).round() as usize,
        mean_call_ms: m(&|s| s.mean_call_ms),
        cpu_ms: m(&|s| s.cpu_ms),
        result: {
            let mut r: Vec<&str> = samples.iter().map(|s| s.result.as_str()).collect();
            r.sort_unstable();
            r.dedup();
            r.join(" / ")
        },
    }
}

async fn measure(
    cloud: &Cloud,
    scenario: Scenario,
    mode: Mode,
    token: std::sync::Arc<baton_client::AccessInfo>,
) -> anyhow::Result<Sample> {
    let before = cloud.identity.stats.snapshot();
    let cpu_before = cloud.identity.cpu_time();
    let report = scenario::run_with_token(cloud, scenario, mode, None, token).await?;
    let cpu = cloud.identity.cpu_time().saturating_sub(cpu_before);
    let counts = cloud.identity.stats.snapshot().since(&before);
    let calls: Vec<f64> = report
        .task
        .as_ref()
        .map(|t| t.calls.iter().map(|c| c.duration_ms).collect())
        .unwrap_or_default();
    Ok(Sample {
        identity: counts,
        calls: calls.len(),
        mean_call_ms: if calls.is_empty() {
            0.0
        } else {
            calls.iter().sum::<f64>() / calls.len() as f64
        },
        cpu_ms: cpu.as_secs_f64() * 1000.0,
        result: match report.task.as_ref().and_then(|t| t.error.as_ref()) {
            Some(e) => format!("failed ({})", e.status),
            None => report.result.clone(),
        },
    })
}

/// Runs the benchmark; `progress` receives one line per finished measurement.
pub async fn run_bench(
    opts: &BenchOptions,
    progress: impl Fn(&str),
) -> anyhow::Result<Vec<BenchRow>> {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let mut copts = CloudOptions::new(
        opts.dir.join(format!("bench-{stamp}")),
        opts.token_expiration,
    );
    copts.operation = opts.operation;
    let cloud = Cloud::start(copts, Mode::NoServiceUser).await?;
    let mut rows = Vec::new();
    for mode in [Mode::NoServiceUser, Mode::ServiceUser] {
        cloud.set_mode(mode).await?;
        for &sc in &opts.scenarios {
            let mut cold = Vec::new();
            let mut warm = Vec::new();
            for i in 0..opts.iterations {
                tokio::task::block_in_place(|| cloud.identity.restart())?;
                cloud.restart_services().await?;
                let token = cloud.user_token().await?;
                let c = measure(&cloud, sc, mode, token.clone()).await?;
                let w = measure(&cloud, sc, mode, token).await?;
                progress(&format!(
                    "{} · {} · #{}: cold {} identity calls {:.2} ms/call {:.1} ms CPU; warm {} calls {:.2} ms/call {:.1} ms CPU",
                    sc.label(),
                    mode.label(),
                    i + 1,
                    c.identity.total(),
                    c.mean_call_ms,
                    c.cpu_ms,
                    w.identity.total(),
                    w.mean_call_ms,
                    w.cpu_ms
                ));
                cold.push(c);
                warm.push(w);
            }
            rows.push(BenchRow {
                scenario: sc,
                mode,
                cold: median_sample(&cold),
                warm: median_sample(&warm),
            });
        }
    }
    cloud.stop().await;
    Ok(rows)
}

fn calls_text(c: &IdentityCounts) -> String {
    format!(
        "{} ({} issue, {} validate, {} allow_expired)",
        c.total(),
        c.issue,
        c.validate,
        c.validate_allow_expired
    )
}

/// The Markdown table of the results.
pub fn render_markdown(rows: &[BenchRow], opts: &BenchOptions) -> String {
    let mut out = format!(
        "Medians of {} iterations; tokens live {} s; operations {} ms long. Identity calls are those \
         the services made (their own and service-user authentications, token validations), not alice's. \
         The CVE-2023-2088 detach without [service_user] is refused (409) by design.\n\n\
         | scenario | [service_user] | result | calls to identity, cold | calls to identity, warm | inter-service calls | ms per call, cold | ms per call, warm | added ms per call, cold | added ms per call, warm | identity CPU ms, cold | identity CPU ms, warm |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        opts.iterations, opts.token_expiration, opts.operation.as_millis()
    );
    for r in rows {
        let base = rows
            .iter()
            .find(|b| b.scenario == r.scenario && b.mode == Mode::NoServiceUser);
        let added = |f: fn(&BenchRow) -> f64| match (r.mode, base) {
            (Mode::NoServiceUser, _) | (_, None) => "—".to_string(),
            (_, Some(b)) => format!("{:+.2}", f(r) - f(b)),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {} | {} | {:.1} | {:.1} |\n",
            r.scenario.label(),
            r.mode.label(),
            r.cold.result,
            calls_text(&r.cold.identity),
            calls_text(&r.warm.identity),
            r.cold.calls,
            r.cold.mean_call_ms,
            r.warm.mean_call_ms,
            added(|x| x.cold.mean_call_ms),
            added(|x| x.warm.mean_call_ms),
            r.cold.cpu_ms,
            r.warm.cpu_ms,
        ));
    }
    out
}
