//! `fjord server`: builds the components a target asks for, wires them in process, serves the
//! HTTP API, and shuts down cleanly on SIGTERM/SIGINT (stop accepting, finish requests, flush
//! the ingester).

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use fjord_api::{ApiState, BuildInfo, HttpMetrics, PushLimits};
use fjord_compactor::Compactor;
use fjord_distributor::Distributor;
use fjord_ingester::Ingester;
use fjord_model::TenantId;
use fjord_model::memory_budget::MemoryBudget;
use fjord_model::service::IngesterService;
use fjord_querier::Querier;
use fjord_store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::config::{Config, ServerConfig};

/// The Loki release whose API this build implements (reported to Grafana).
const LOKI_COMPATIBLE_VERSION: &str = "3.7.0";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    revision: String,
    branch: String,
    goversion: String,
}

fn init_logging(server: &ServerConfig) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&server.log_level))
        .with_context(|| {
            format!(
                "server.log_level {:?} is not a valid level",
                server.log_level
            )
        })?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    let res = if server.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
    res.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "fjord".into())
}

/// Holds an exclusive lock on the data directory for the life of the process.
fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    let path = dir.join("fjord.lock");
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            anyhow::bail!(
                "data directory {} is in use by another fjord process",
                dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

async fn shutdown_signal(state: Arc<ApiState>, notify: tokio::sync::watch::Sender<bool>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; draining requests");
    state.stopping.store(true, Ordering::Release);
    let _ = notify.send(true);
}

pub(crate) async fn run(cfg: Config) -> anyhow::Result<()> {
    init_logging(&cfg.server)?;
    for w in cfg.validate()? {
        tracing::warn!("{w}");
    }
    let targets = cfg.targets()?;
    let data_dir = cfg.data_dir();
    let _lock = lock_data_dir(&data_dir)?;
    let instance = if cfg.common.instance_id.is_empty() {
        hostname()
    } else {
        cfg.common.instance_id.clone()
    };
    let mut registry = Registry::default();
    let memory_limit = crate::memory_limit::memory_limit();
    let limits = Arc::new(cfg.limits_config.clone());

    let store =
        Arc::new(Store::open(&cfg.storage, &data_dir, &instance).context("opening the store")?);
    store.register_metrics(&mut registry);
    let ingester = if targets.ingester {
        let ing = Ingester::open(
            cfg.ingester.clone(),
            limits.clone(),
            store.clone(),
            &data_dir,
            &mut registry,
        )
        .await
        .context("starting the ingester")?;
        Some(ing)
    } else {
        None
    };
    let ingester_service: Option<Arc<dyn IngesterService>> =
        ingester.clone().map(|i| i as Arc<dyn IngesterService>);
    let distributor = match (&ingester_service, targets.distributor) {
        (Some(ing), true) => Some(Arc::new(Distributor::new(
            limits.clone(),
            ing.clone(),
            &mut registry,
        ))),
        _ => None,
    };
    let querier = targets.querier.then(|| {
        Arc::new(Querier::new(
            cfg.querier.clone(),
            memory_limit,
            ingester_service.clone(),
            store.clone(),
            &mut registry,
        ))
    });

    let compactor = if targets.compactor {
        Some(
            Compactor::new(store.clone(), cfg.compactor.clone(), &mut registry)
                .map_err(anyhow::Error::msg)?,
        )
    } else {
        None
    };

    let build = BuildInfo {
        loki_compatible_version: LOKI_COMPATIBLE_VERSION.into(),
        fjord_version: env!("CARGO_PKG_VERSION").into(),
        revision: format!("fjord-{}", env!("CARGO_PKG_VERSION")),
        branch: "fjord".into(),
        build_date: String::new(),
    };
    let build_info = Family::<BuildLabels, Gauge>::default();
    build_info
        .get_or_create(&BuildLabels {
            version: build.loki_compatible_version.clone(),
            revision: build.revision.clone(),
            branch: build.branch.clone(),
            goversion: format!("fjord {}", build.fjord_version),
        })
        .set(1);
    registry.register(
        "loki_build_info",
        "Build facts; the version is the Loki API level implemented",
        build_info,
    );
    crate::process_metrics::register(&mut registry);
    let http_metrics = HttpMetrics::register(&mut registry);

    let mut services = Vec::new();
    if distributor.is_some() {
        services.push("distributor".to_string());
    }
    if ingester.is_some() {
        services.push("ingester".to_string());
    }
    if querier.is_some() {
        services.push("querier".to_string());
    }
    if compactor.is_some() {
        services.push("compactor".to_string());
    }
    let push = PushLimits {
        max_recv_msg_size: cfg.distributor.max_recv_msg_size.0,
        max_decompressed_size: cfg.distributor.max_decompressed_size.0,
        memory: MemoryBudget::new(
            cfg.distributor
                .max_inflight_push_bytes
                .bytes(|| crate::config::auto_push_memory(memory_limit)),
        ),
    };
    if distributor.is_some() {
        tracing::info!(
            limit_mib = push.memory.limit() >> 20,
            setting = ?cfg.distributor.max_inflight_push_bytes,
            "memory of pushes in flight"
        );
        push.register_metrics(&mut registry);
    }
    let state = Arc::new(ApiState {
        auth_enabled: cfg.auth_enabled,
        default_tenant: TenantId::new(fjord_model::tenant::DEFAULT_TENANT)?,
        distributor,
        querier,
        ingester: ingester.clone(),
        compactor: compactor.clone(),
        limits,
        registry,
        config_yaml: serde_yaml::to_string(&cfg)?,
        build,
        services,
        stopping: std::sync::atomic::AtomicBool::new(false),
        push,
    });
    let app = fjord_api::router(state.clone(), http_metrics);
    let addr = (
        cfg.server.http_listen_address.as_str(),
        cfg.server.http_listen_port,
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {}:{}", addr.0, addr.1))?;
    let local = listener.local_addr()?;
    if let Some(ing) = &ingester {
        let r = ing.recovery_stats();
        tracing::info!(
            entries = r.entries,
            streams = r.streams,
            elapsed_ms = r.elapsed.as_millis() as u64,
            "ingester recovered"
        );
        ing.start();
    }
    let compaction_loop = compactor.as_ref().map(|c| c.start());
    tracing::info!(address = %local, data_dir = %data_dir.display(), target = %cfg.target, "fjord is listening on http://{local}");

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server =
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal(state.clone(), stop_tx));
    let grace = cfg.server.graceful_shutdown_timeout;
    // The server finishes in-flight requests after the signal, for at most the grace period.
    tokio::select! {
        r = server.into_future() => r?,
        _ = async {
            let _ = stop_rx.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("requests still running after {grace:?}; shutting down anyway"),
    }
    if let Some(task) = compaction_loop {
        // A round stopped half-way leaves only unreferenced segments, deleted by a later one.
        task.abort();
    }
    if let Some(ing) = &ingester {
        let stats = ing.shutdown().await;
        tracing::info!(
            chunks = stats.chunks,
            bytes = stats.bytes,
            failures = stats.failures,
            "ingester flushed"
        );
    }
    tracing::info!("fjord stopped");
    Ok(())
}
