//! The `fjord` binary: the server (all components or one target), with the agent and CLI to
//! follow as further subcommands.
//!
//! **Invariant:** only this crate reads flags, environment and config files, and only it sets
//! up logging and signal handling.

#[cfg(feature = "mimalloc")]
mod allocator;
mod config;
mod memory_limit;
mod process_metrics;
mod server;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Fjord: a log aggregation system that speaks Grafana Loki's push and query APIs.
#[derive(Parser, Debug)]
#[command(name = "fjord", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: distributor, ingester and querier in one process by default.
    ///
    /// With no flags it listens on 0.0.0.0:3100 and keeps its data under ./data.
    Server(ServerArgs),
    /// Run the node agent (Promtail's job): tail log files and push them to Fjord or Loki.
    Agent(AgentArgs),
}

#[derive(clap::Args, Debug)]
struct AgentArgs {
    /// Agent config file in Promtail's format (see deploy/agent/agent.yaml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Expand ${VAR} and ${VAR:-default} in the config file from the environment.
    #[arg(long = "config.expand-env", num_args = 0..=1, default_missing_value = "true")]
    expand_env: Option<bool>,
    /// HTTP listen address as HOST:PORT (overrides server.http_listen_address and _port).
    #[arg(long, value_name = "HOST:PORT")]
    http_listen_address: Option<String>,
    /// Check the config (clients, relabel rules, pipeline stages) and exit.
    #[arg(long)]
    check_config: bool,
}

#[derive(clap::Args, Debug)]
struct ServerArgs {
    /// YAML config file (every key is optional; see fjord.example.yaml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Expand ${VAR} and ${VAR:-default} in the config file from the environment.
    #[arg(long = "config.expand-env")]
    expand_env: bool,
    /// HTTP listen address as HOST:PORT (overrides server.http_listen_address and _port).
    #[arg(long, value_name = "HOST:PORT")]
    http_listen_address: Option<String>,
    /// Directory for the WAL and local chunk store (overrides common.path_prefix).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// Components to run: all, distributor, ingester, querier (comma separated).
    #[arg(long, value_name = "TARGET")]
    target: Option<String>,
    /// Override any config key, e.g. --set ingester.wal.fsync=interval (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Print the effective configuration as YAML and exit.
    #[arg(long)]
    print_config: bool,
}

fn main() -> std::process::ExitCode {
    #[cfg(feature = "mimalloc")]
    allocator::tune();
    let cli = Cli::parse();
    match cli.command {
        Command::Agent(a) => fjord_agent::cli::main(fjord_agent::cli::CliOptions {
            config: a.config,
            expand_env: a.expand_env.unwrap_or(false),
            http_listen_address: a.http_listen_address,
            check_config: a.check_config,
        }),
        Command::Server(args) => {
            let cfg = match config::load(
                args.config.as_deref(),
                args.expand_env,
                &args.set,
                args.http_listen_address.as_deref(),
                args.data_dir.as_deref(),
                args.target.as_deref(),
            ) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("fjord: {e:#}");
                    return std::process::ExitCode::from(2);
                }
            };
            if args.print_config {
                if let Err(e) = cfg.validate() {
                    eprintln!("fjord: {e:#}");
                    return std::process::ExitCode::from(2);
                }
                match serde_yaml::to_string(&cfg) {
                    Ok(s) => {
                        print!("{s}");
                        return std::process::ExitCode::SUCCESS;
                    }
                    Err(e) => {
                        eprintln!("fjord: cannot print the config: {e}");
                        return std::process::ExitCode::FAILURE;
                    }
                }
            }
            // Blocking threads (file reads of the store, query evaluation) that wait idle a
            // second rather than tokio's ten end sooner, and with them the allocator's
            // per-thread heaps, which keep buffers read there and freed elsewhere: after a
            // burst of queries RSS falls back within a second or two (BENCHMARKS.md). Worker
            // threads collect their heaps as they go idle (`allocator`).
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("fjord")
                .thread_keep_alive(std::time::Duration::from_secs(1))
                .on_thread_park(|| {
                    #[cfg(feature = "mimalloc")]
                    allocator::collect_parked_thread();
                })
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("fjord: cannot start the runtime: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match rt.block_on(server::run(cfg)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("fjord: {e:#}");
                    tracing::error!(error = format!("{e:#}"), "fjord stopped with an error");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
