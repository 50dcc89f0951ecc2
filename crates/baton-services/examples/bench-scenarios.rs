//! `cargo run --release -p baton-services --example bench-scenarios -- [--iterations N] [--out FILE]`:
//! the scenario benchmark (see `baton_services::bench`), printed as Markdown and optionally
//! written to FILE.

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does

use baton_services::bench::{render_markdown, run_bench, BenchOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut opts = BenchOptions::default();
    let mut out: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--iterations" => opts.iterations = value()?.parse()?,
            "--operation-ms" => {
                opts.operation = std::time::Duration::from_millis(value()?.parse()?)
            }
            "--out" => out = Some(value()?.into()),
            "--dir" => opts.dir = value()?.into(),
            other => anyhow::bail!(
                "unknown argument {other}; use --iterations N, --operation-ms MS, --out FILE, --dir DIR"
            ),
        }
    }
    let rows = run_bench(&opts, |line| eprintln!("{line}")).await?;
    let table = render_markdown(&rows, &opts);
    println!("{table}");
    if let Some(path) = out {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, table)?;
        eprintln!("written to {}", path.display());
    }
    Ok(())
}
