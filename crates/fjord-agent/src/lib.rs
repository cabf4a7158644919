//! `fjord agent`: the node agent, Promtail's job. It reads Promtail's configuration format,
//! discovers log files (static globs, Kubernetes pods through the API server), tails them
//! across rotation and truncation, relabels with Prometheus rules, runs Promtail's pipeline
//! stages, and pushes batches of protobuf+snappy to Fjord or Loki with retries, keeping a
//! positions file so restarts neither lose nor repeat lines.
//!
//! Module map (one concept each): [`config`] (the YAML), [`relabel`], [`stages`] (one module
//! per stage), [`discovery`] (`static_sd`, `kubernetes`), [`glob`] (`__path__`), [`targets`]
//! (discovered targets → tailers), [`tail`] (one file), [`positions`], [`client`] (batching
//! and retries), [`metrics`], [`server`] (`/metrics`, `/ready`, `/targets`), [`agent`] (wiring
//! and shutdown order), [`cli`] (the `fjord agent` entry point).
//!
//! **Invariants:** a file position is only saved past a line once that line was pushed
//! successfully or deliberately dropped ([`positions`]); every queue between stages is bounded,
//! so a slow server slows reading instead of growing memory; no host path is built in — every
//! path comes from the configuration.

pub mod agent;
pub mod cli;
pub mod client;
pub mod config;
pub mod discovery;
pub mod glob;
pub mod metrics;
pub mod positions;
pub mod relabel;
pub mod server;
pub mod stages;
pub mod tail;
pub mod targets;

pub use agent::{RunOptions, run};
pub use config::Config;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Positions(#[from] positions::PositionsError),
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("scrape_configs job {job:?}: {message}")]
    Job { job: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a pipeline thread: {0}")]
    Thread(std::io::Error),
}
