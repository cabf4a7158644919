//! The `fjord agent` entry point the `fjord` binary calls: loads the config, sets up logging
//! from `server.log_level`/`log_format` (or `RUST_LOG`), runs the agent on a Tokio runtime
//! and stops it on SIGTERM/SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::agent::RunOptions;
use crate::config::Config;

/// Command-line options of `fjord agent`.
#[derive(Debug, Clone, Default)]
pub struct CliOptions {
    pub config: PathBuf,
    pub expand_env: bool,
    pub http_listen_address: Option<String>,
    /// Check the configuration (pipelines, relabel rules, clients) and exit.
    pub check_config: bool,
}

fn init_logging(cfg: &Config) {
    let level = match cfg.server.log_level.as_str() {
        "" => "info",
        l => l,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = if cfg.server.log_format == "json" {
        b.json().try_init()
    } else {
        b.compact().try_init()
    };
}

async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Runs `fjord agent`; returns the process exit code (2 for a bad config).
pub fn main(opts: CliOptions) -> ExitCode {
    let cfg = match Config::load(&opts.config, opts.expand_env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fjord agent: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&cfg);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fjord-agent")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fjord agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if opts.check_config {
        let ctx = crate::stages::BuildContext {
            metrics: std::sync::Arc::new(crate::metrics::Metrics::new()),
            job: String::new(),
        };
        for sc in &cfg.scrape_configs {
            if let Err(e) = crate::relabel::Relabeler::new(&sc.relabel_configs) {
                eprintln!("fjord agent: job {:?}: {e}", sc.job_name);
                return ExitCode::from(2);
            }
            if let Err(e) = crate::stages::Pipeline::new(&sc.pipeline_stages, &ctx) {
                eprintln!("fjord agent: job {:?}: pipeline_stages: {e}", sc.job_name);
                return ExitCode::from(2);
            }
        }
        println!("config OK");
        return ExitCode::SUCCESS;
    }
    let run = crate::agent::run(
        cfg,
        RunOptions {
            http_listen_address: opts.http_listen_address,
        },
        signal(),
    );
    match rt.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fjord agent: {e}");
            tracing::error!(error = %e, "fjord agent stopped with an error");
            ExitCode::FAILURE
        }
    }
}
