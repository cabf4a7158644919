//! Wiring: builds the pipelines, clients, discovery, target manager, positions saver and HTTP
//! server from a [`Config`], runs them, and shuts them down in the order that loses nothing.
//!
//! Data flow: tailers → (bounded channel) → one pipeline thread per job → (bounded channel per
//! client) → clients → server. Pipelines run on their own OS threads so that regex/JSON work
//! and the `limit` stage's waiting never hold up the async reactor.
//!
//! Shutdown: stop discovery and tailers; each pipeline flushes what its stages hold and closes;
//! clients send what they have (up to `server.graceful_shutdown_timeout`); then positions are
//! frozen (saved one last time, no later writes) *before* anything still unsent is discarded,
//! so unsent lines are read again after a restart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};

use crate::AgentError;
use crate::client::Client;
use crate::config::Config;
use crate::discovery::{kubernetes, static_sd};
use crate::metrics::Metrics;
use crate::positions::Positions;
use crate::relabel::Relabeler;
use crate::server::{ServerState, router};
use crate::stages::{BuildContext, Entry, Pipeline};
use crate::targets::{self, JobSpec, TailSettings, TargetsView};

/// Runtime options that are not in the config file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides `server.http_listen_address`/`http_listen_port` (`HOST:PORT`, port 0 picks one).
    pub http_listen_address: Option<String>,
}

const PIPELINE_QUEUE: usize = 16;
const CLIENT_QUEUE: usize = 4;

fn pipeline_thread(
    name: String,
    mut p: Pipeline,
    mut rx: mpsc::Receiver<Vec<Entry>>,
    outs: Vec<mpsc::Sender<Vec<Entry>>>,
    rt: tokio::runtime::Handle,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("pipeline-{name}"))
        .spawn(move || {
            let tick = Duration::from_millis(100);
            let mut last_tick = Instant::now();
            let send = |out: Vec<Entry>| -> bool {
                if out.is_empty() {
                    return true;
                }
                let n = outs.len();
                let mut out = Some(out);
                for (i, tx) in outs.iter().enumerate() {
                    let batch = if i + 1 == n {
                        out.take().unwrap_or_default()
                    } else {
                        out.clone().unwrap_or_default()
                    };
                    if tx.blocking_send(batch).is_err() {
                        return false;
                    }
                }
                true
            };
            loop {
                let msg = rt.block_on(async { tokio::time::timeout(tick, rx.recv()).await });
                let out = match msg {
                    Ok(Some(batch)) => p.process(batch),
                    Ok(None) => {
                        send(p.flush());
                        return;
                    }
                    Err(_) => Vec::new(),
                };
                if !send(out) {
                    return;
                }
                if last_tick.elapsed() >= tick {
                    last_tick = Instant::now();
                    if !send(p.tick(last_tick)) {
                        return;
                    }
                }
            }
        })
}

fn listen_addr(cfg: &Config, opts: &RunOptions) -> String {
    if let Some(a) = &opts.http_listen_address {
        return a.clone();
    }
    let host = if cfg.server.http_listen_address.is_empty() {
        "0.0.0.0"
    } else {
        &cfg.server.http_listen_address
    };
    format!("{host}:{}", cfg.server.http_listen_port)
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    cfg: Config,
    opts: RunOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    if cfg.limits_config.readline_rate_enabled || cfg.limits_config.max_streams > 0 {
        tracing::warn!(
            "limits_config.readline_rate and max_streams are not enforced by fjord agent; use a `limit` pipeline stage"
        );
    }
    let metrics = Arc::new(Metrics::new());
    let positions = Arc::new(Positions::load(
        &cfg.positions.filename,
        cfg.positions.ignore_invalid_yaml,
    )?);
    let acked = Arc::new(Notify::new());

    // Clients.
    let mut client_txs = Vec::new();
    let mut client_tasks = Vec::new();
    for c in &cfg.clients {
        let client = Client::new(c, metrics.clone(), acked.clone())?;
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        client_txs.push(tx);
        client_tasks.push(tokio::spawn(client.run(rx)));
    }

    // Pipelines and jobs.
    let rt = tokio::runtime::Handle::current();
    let mut specs = Vec::new();
    let mut threads = Vec::new();
    for sc in &cfg.scrape_configs {
        let relabeler = Relabeler::new(&sc.relabel_configs).map_err(|e| AgentError::Job {
            job: sc.job_name.clone(),
            message: e.to_string(),
        })?;
        let ctx = BuildContext {
            metrics: metrics.clone(),
            job: sc.job_name.clone(),
        };
        let pipeline = Pipeline::new(&sc.pipeline_stages, &ctx).map_err(|e| AgentError::Job {
            job: sc.job_name.clone(),
            message: format!("pipeline_stages: {e}"),
        })?;
        let (tx, rx) = mpsc::channel(PIPELINE_QUEUE);
        threads.push(
            pipeline_thread(
                sc.job_name.clone(),
                pipeline,
                rx,
                client_txs.clone(),
                rt.clone(),
            )
            .map_err(AgentError::Thread)?,
        );
        specs.push(JobSpec {
            name: sc.job_name.clone(),
            relabeler,
            out: tx,
        });
    }
    drop(client_txs);

    // Discovery.
    let (upd_tx, upd_rx) = mpsc::channel(64);
    let mut discovery = Vec::new();
    for (i, sc) in cfg.scrape_configs.iter().enumerate() {
        if !sc.static_configs.is_empty() {
            let _ = upd_tx.send(static_sd::update(i, &sc.static_configs)).await;
        }
        for (k, kc) in sc.kubernetes_sd_configs.iter().enumerate() {
            let tx = upd_tx.clone();
            let kc = kc.clone();
            let job = sc.job_name.clone();
            discovery.push(tokio::spawn(async move {
                if let Err(e) = kubernetes::run(i, k, kc, tx).await {
                    tracing::error!(job, error = %e, "kubernetes discovery failed");
                }
            }));
        }
    }
    drop(upd_tx);

    // Target manager.
    let view = Arc::new(TargetsView::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let settings = TailSettings {
        poll: cfg
            .global
            .file_watch_config
            .min_poll_frequency
            .max(Duration::from_millis(10)),
        sync_period: cfg
            .target_config
            .sync_period
            .max(Duration::from_millis(100)),
        max_line_size: cfg.limits_config.max_line_size.0 as usize,
        truncate_long_lines: cfg.limits_config.max_line_size_truncate,
    };
    let manager = tokio::spawn(targets::run(
        specs,
        upd_rx,
        positions.clone(),
        metrics.clone(),
        view.clone(),
        settings,
        stop_rx.clone(),
    ));

    // Positions saver: periodically, and right after acknowledged pushes.
    let saver = {
        let positions = positions.clone();
        let acked = acked.clone();
        let period = cfg.positions.sync_period.max(Duration::from_millis(10));
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = acked.notified() => {}
                    _ = stop.changed() => return,
                }
                if let Err(e) = positions.save() {
                    tracing::error!(error = %e, "saving positions failed");
                }
            }
        })
    };

    // HTTP server.
    let addr = listen_addr(&cfg, &opts);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| AgentError::Listen {
            addr: addr.clone(),
            source: e,
        })?;
    let local: SocketAddr = listener.local_addr().map_err(|e| AgentError::Listen {
        addr: addr.clone(),
        source: e,
    })?;
    tracing::info!("fjord agent listening on http://{local}");
    let state = Arc::new(ServerState {
        metrics: metrics.clone(),
        targets: view.clone(),
        health_check_target: cfg.server.health_check_target,
    });
    let app = router(state, &cfg.server.http_path_prefix);
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.changed().await;
            })
            .await;
    });

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for d in &discovery {
        d.abort();
    }
    let _ = manager.await;
    let _ = saver.await;
    // Pipelines close once their tailers are gone; clients once their pipelines are.
    let deadline = tokio::time::Instant::now() + cfg.server.graceful_shutdown_timeout;
    let mut timed_out = false;
    for t in &mut client_tasks {
        if tokio::time::timeout_at(deadline, &mut *t).await.is_err() {
            timed_out = true;
        }
    }
    if let Err(e) = positions.freeze() {
        tracing::error!(error = %e, "saving positions failed");
    }
    if timed_out {
        tracing::warn!(
            "some entries could not be sent before the shutdown deadline; they will be read again after a restart"
        );
        for t in &client_tasks {
            t.abort();
        }
    }
    for t in threads {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    let _ = http.await;
    Ok(())
}
