//! What the HTTP layer holds: the components this process runs (any may be absent when the
//! process runs a single target) and the operational state.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use fjord_compactor::Compactor;
use fjord_distributor::Distributor;
use fjord_ingester::Ingester;
use fjord_model::TenantId;
use fjord_model::limits::Limits;
use fjord_querier::Querier;
use prometheus_client::registry::Registry;

use crate::push::PushLimits;

/// Version facts served at `/loki/api/v1/status/buildinfo`.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    /// The Loki version whose API Fjord implements; Grafana gates features on it.
    pub loki_compatible_version: String,
    pub fjord_version: String,
    pub revision: String,
    pub branch: String,
    pub build_date: String,
}

pub struct ApiState {
    pub auth_enabled: bool,
    /// The tenant of every request when auth is off (`fake`, like Loki).
    pub default_tenant: TenantId,
    pub distributor: Option<Arc<Distributor>>,
    pub querier: Option<Arc<Querier>>,
    pub ingester: Option<Arc<Ingester>>,
    pub compactor: Option<Arc<Compactor>>,
    pub limits: Arc<Limits>,
    pub registry: Registry,
    /// The effective configuration as YAML, for `/config`.
    pub config_yaml: String,
    pub build: BuildInfo,
    /// Names of the components running here, for `/services`.
    pub services: Vec<String>,
    /// Set when shutdown begins; `/ready` then answers 503.
    pub stopping: AtomicBool,
    /// What a push may take: body sizes and the memory of pushes in flight.
    pub push: PushLimits,
}
