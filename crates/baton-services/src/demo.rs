//! `baton demo`: the whole story in one command. Starts a deployment ([`crate::cloud`]), runs
//! every scenario under each `[service_user]` set-up with a progress bar per running operation,
//! prints the table, and writes the timelines (text and HTML) into the run directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cloud::{Cloud, CloudOptions, Mode};
use crate::progress::{Output, ProgressBoard};
use crate::scenario::{self, RunReport, Scenario};
use crate::timeline;

/// What `baton demo` runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Parent of the run directory (`<dir>/run-<UTC time>`).
    pub dir: PathBuf,
    /// `[token] expiration` of the demo's identity server, seconds.
    pub token_expiration: u32,
    /// Length of the long phase of each operation (default: 1.5 × the token lifetime).
    pub operation: Option<Duration>,
    /// The operations to run.
    pub scenarios: Vec<Scenario>,
    /// The `[service_user]` configurations of compute to run them under.
    pub modes: Vec<Mode>,
    /// Leave everything running afterwards (until Ctrl-C) and say how to call it.
    pub keep_running: bool,
    /// `[token] allow_expired_window` of the identity server (Keystone's two days when
    /// `None`); with 0 the service-token mode fails as security teams see it, and the
    /// continuation mode still completes.
    pub allow_expired_window: Option<u32>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            dir: PathBuf::from("baton-demo"),
            token_expiration: 3,
            operation: None,
            scenarios: Scenario::ALL.to_vec(),
            modes: Mode::ALL.to_vec(),
            keep_running: false,
            allow_expired_window: None,
        }
    }
}

/// What a demo run produced.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The directory of this run.
    pub run_dir: PathBuf,
    /// One report per scenario and mode.
    pub runs: Vec<RunReport>,
    /// The results table as printed.
    pub table: String,
    /// The timelines as text.
    pub timeline_text: PathBuf,
    /// The timelines as an HTML page with charts.
    pub timeline_html: PathBuf,
}

impl DemoReport {
    /// Whether every run ended the way its scenario expects.
    pub fn all_as_expected(&self) -> bool {
        self.runs.iter().all(|r| r.as_expected)
    }
}

/// The table of results: one row per scenario and `[service_user]` set-up.
pub fn render_table(runs: &[RunReport]) -> String {
    let headers = [
        "scenario",
        "[service_user]",
        "result",
        "as expected",
        "where / why",
    ];
    let rows: Vec<[String; 5]> = runs
        .iter()
        .map(|r| {
            [
                r.scenario.label().to_string(),
                r.mode.label().to_string(),
                r.result.clone(),
                if r.as_expected {
                    "yes".to_string()
                } else {
                    format!("NO: {}", r.mismatch.clone().unwrap_or_default())
                },
                r.detail.clone(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (i, cell) in row.iter().enumerate().take(4) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i < 4 {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            } else {
                s.push_str(c);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers);
    out.push_str(&line([
        &"-".repeat(widths[0]),
        &"-".repeat(widths[1]),
        &"-".repeat(widths[2]),
        &"-".repeat(widths[3]),
        "-----------",
    ]));
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

/// Runs the demo, writing to `out`.
pub async fn run_demo(opts: DemoOptions, out: &Output) -> anyhow::Result<DemoReport> {
    if opts.token_expiration == 0 {
        anyhow::bail!("--token-expiration must be at least 1 second");
    }
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f");
    let run_dir = opts.dir.join(format!("run-{stamp}"));
    let mut cloud_opts = CloudOptions::new(&run_dir, opts.token_expiration);
    if let Some(op) = opts.operation {
        cloud_opts.operation = op;
    }
    cloud_opts.allow_expired_window = opts.allow_expired_window;
    let first_mode = opts.modes.first().copied().unwrap_or(Mode::ServiceUser);
    out.line(&format!(
        "Baton demo: an identity server (SQLite, tokens live {} s) and reference compute, volume, image and network services on 127.0.0.1.",
        opts.token_expiration
    ));
    let cloud = Arc::new(Cloud::start(cloud_opts, first_mode).await?);
    out.line(&format!(
        "Run directory: {}\n  identity {}   compute {}   volume {}   image {}   network {}\n  operations take about {:.1} s, so each outlives the user token it started with.",
        cloud.dir.display(),
        cloud.identity_url(),
        cloud.compute_url,
        cloud.volume_url,
        cloud.image_url,
        cloud.network_url,
        cloud.options.operation.as_secs_f64()
    ));

    let mut runs: Vec<RunReport> = Vec::new();
    for &mode in &opts.modes {
        cloud.set_mode(mode).await?;
        out.line(&format!(
            "\n== compute's [service_user]: {} ({}) ==",
            mode.label(),
            match mode {
                Mode::NoServiceUser => "send_service_user_token = false",
                Mode::ServiceUser => "send_service_user_token = true, user holds `service`",
                Mode::ServiceUserWithoutRole =>
                    "send_service_user_token = true, user lacks `service`; receivers require it",
                Mode::Continuation =>
                    "as nova, and each operation asks for a continuation token when it starts",
            }
        ));
        runs.extend(run_mode(&cloud, mode, &opts.scenarios, out).await?);
    }

    let table = render_table(&runs);
    out.line("");
    out.write_str(&table);
    let (text_path, html_path) = write_timelines(&cloud.dir, &runs)?;
    let all_ok = runs.iter().all(|r| r.as_expected);
    out.line(&format!(
        "\n{} of {} runs as expected. Timelines: {} and {}",
        runs.iter().filter(|r| r.as_expected).count(),
        runs.len(),
        text_path.display(),
        html_path.display()
    ));
    let report = DemoReport {
        run_dir: cloud.dir.clone(),
        runs,
        table,
        timeline_text: text_path,
        timeline_html: html_path,
    };
    if opts.keep_running {
        cloud.set_mode(Mode::ServiceUser).await?;
        out.line("");
        out.write_str(&cloud.manual_instructions());
        tokio::signal::ctrl_c().await?;
        out.line("stopping");
    }
    if let Ok(cloud) = Arc::try_unwrap(cloud) {
        cloud.stop().await;
    }
    if !all_ok {
        tracing::warn!("some demo runs did not go as expected");
    }
    Ok(report)
}

/// Every scenario at once under one `[service_user]` mode of compute, with a progress bar
/// each; the reports in the scenarios' order.
async fn run_mode(
    cloud: &Arc<Cloud>,
    mode: Mode,
    scenarios: &[Scenario],
    out: &Output,
) -> anyhow::Result<Vec<RunReport>> {
    let board = ProgressBoard::new(out.clone());
    let mut set = tokio::task::JoinSet::new();
    for (i, &sc) in scenarios.iter().enumerate() {
        let bar = board.add(&format!("{} · {}", sc.label(), mode.label()));
        let cloud = cloud.clone();
        set.spawn(async move {
            let r = scenario::run(&cloud, sc, mode, Some(&bar)).await;
            if let Err(e) = &r {
                bar.finish(&format!("error: {e}"));
            }
            (i, r)
        });
    }
    let drawing = {
        let board = board.clone();
        tokio::spawn(async move { board.draw_until_done().await })
    };
    let mut results: Vec<(usize, RunReport)> = Vec::new();
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, Ok(r))) => results.push((i, r)),
            Ok((_, Err(e))) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(anyhow::anyhow!("scenario task panicked: {e}"));
            }
        }
    }
    let _ = drawing.await;
    if let Some(e) = first_error {
        return Err(e.context(format!("a scenario could not run ([service_user] {mode})")));
    }
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

/// The runs' timelines as text and as HTML in the run directory; gives both paths.
fn write_timelines(dir: &Path, runs: &[RunReport]) -> anyhow::Result<(PathBuf, PathBuf)> {
    let timelines: Vec<_> = runs.iter().map(|r| r.timeline.clone()).collect();
    let text_path = dir.join("timeline.txt");
    let html_path = dir.join("timeline.html");
    std::fs::write(&text_path, timeline::render_text(&timelines))?;
    std::fs::write(
        &html_path,
        timeline::render_html("Baton demo: who carried which token", &timelines),
    )?;
    Ok((text_path, html_path))
}
