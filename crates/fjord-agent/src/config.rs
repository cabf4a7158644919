//! The agent's configuration file, in Promtail's format.
//!
//! Every section mirrors Promtail's YAML keys and defaults (`server`, `clients`, `positions`,
//! `scrape_configs`, `target_config`, `limits_config`, `global.file_watch_config`), so an
//! existing Promtail config for file tailing and Kubernetes discovery loads unchanged. Sections
//! that only concern features Fjord's agent does not have (`tracing`, `options`) are accepted
//! and ignored. Any other key is an error naming the key and its line.
//!
//! `${VAR}` and `${VAR:-default}` are expanded from the environment before parsing when
//! `-config.expand-env=true` is given, as in Promtail.
//!
//! Durations are Go duration strings (`500ms`, `5m`); byte sizes are integers or strings with
//! a unit (`1MB`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fjord_model::duration::serde_duration;
use fjord_model::limits::ByteSize;
use serde::Deserialize;

use crate::relabel::RelabelConfig;
use crate::stages::StageConfig;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole agent configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub clients: Vec<ClientConfig>,
    /// Promtail's older single-client form.
    pub client: Option<ClientConfig>,
    pub positions: PositionsConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
    pub target_config: TargetConfig,
    pub limits_config: LimitsConfig,
    pub global: GlobalConfig,
    /// Accepted for compatibility; Fjord's agent has no tracing exporter.
    pub tracing: Option<serde_yaml::Value>,
    /// Accepted for compatibility (`stream_lag_labels`); has no effect.
    pub options: Option<serde_yaml::Value>,
}

/// `server`: the agent's own HTTP endpoint (`/metrics`, `/ready`, `/targets`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub http_listen_address: String,
    pub http_listen_port: u16,
    /// Accepted for compatibility: the agent serves no gRPC.
    pub grpc_listen_address: String,
    pub grpc_listen_port: u16,
    pub log_level: String,
    pub log_format: String,
    pub http_path_prefix: String,
    pub health_check_target: bool,
    pub disable: bool,
    pub enable_runtime_reload: bool,
    pub register_instrumentation: bool,
    #[serde(with = "serde_duration")]
    pub graceful_shutdown_timeout: Duration,
    #[serde(with = "serde_duration")]
    pub http_server_read_timeout: Duration,
    #[serde(with = "serde_duration")]
    pub http_server_write_timeout: Duration,
    #[serde(with = "serde_duration")]
    pub http_server_idle_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_listen_address: String::new(),
            http_listen_port: 80,
            grpc_listen_address: String::new(),
            grpc_listen_port: 9095,
            log_level: "info".into(),
            log_format: "logfmt".into(),
            http_path_prefix: String::new(),
            health_check_target: true,
            disable: false,
            enable_runtime_reload: false,
            register_instrumentation: true,
            graceful_shutdown_timeout: Duration::from_secs(30),
            http_server_read_timeout: Duration::from_secs(30),
            http_server_write_timeout: Duration::from_secs(30),
            http_server_idle_timeout: Duration::from_secs(120),
        }
    }
}

/// `clients[]`: one push endpoint with its own batching and retry loop.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    pub url: String,
    pub tenant_id: String,
    #[serde(with = "serde_duration")]
    pub batchwait: Duration,
    pub batchsize: ByteSize,
    pub backoff_config: BackoffConfig,
    #[serde(with = "serde_duration")]
    pub timeout: Duration,
    pub external_labels: BTreeMap<String, String>,
    pub basic_auth: Option<BasicAuth>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub tls_config: TlsConfig,
    pub headers: BTreeMap<String, String>,
    pub proxy_url: Option<String>,
    pub drop_rate_limited_batches: bool,
    /// Accepted for compatibility; HTTP/2 is negotiated by TLS ALPN.
    pub enable_http2: Option<bool>,
    pub follow_redirects: Option<bool>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            url: String::new(),
            tenant_id: String::new(),
            batchwait: Duration::from_secs(1),
            batchsize: ByteSize(1024 * 1024),
            backoff_config: BackoffConfig::default(),
            timeout: Duration::from_secs(10),
            external_labels: BTreeMap::new(),
            basic_auth: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: TlsConfig::default(),
            headers: BTreeMap::new(),
            proxy_url: None,
            drop_rate_limited_batches: false,
            enable_http2: None,
            follow_redirects: None,
        }
    }
}

/// `backoff_config`: exponential backoff between retries of one batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffConfig {
    #[serde(with = "serde_duration")]
    pub min_period: Duration,
    #[serde(with = "serde_duration")]
    pub max_period: Duration,
    /// Attempts before a batch is dropped; 0 retries forever.
    pub max_retries: u32,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            min_period: Duration::from_millis(500),
            max_period: Duration::from_secs(300),
            max_retries: 10,
        }
    }
}

/// `basic_auth`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// `tls_config` (Prometheus common config).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub ca_file: Option<PathBuf>,
    pub ca: Option<String>,
    pub cert_file: Option<PathBuf>,
    pub cert: Option<String>,
    pub key_file: Option<PathBuf>,
    pub key: Option<String>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    pub min_version: Option<String>,
}

/// `positions`: where read offsets are kept across restarts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PositionsConfig {
    pub filename: PathBuf,
    #[serde(with = "serde_duration")]
    pub sync_period: Duration,
    pub ignore_invalid_yaml: bool,
}

impl Default for PositionsConfig {
    fn default() -> Self {
        PositionsConfig {
            filename: PathBuf::from("/var/log/positions.yaml"),
            sync_period: Duration::from_secs(10),
            ignore_invalid_yaml: false,
        }
    }
}

/// `target_config`: how often globs are re-evaluated for new files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetConfig {
    #[serde(with = "serde_duration")]
    pub sync_period: Duration,
    pub stdin: bool,
}

impl Default for TargetConfig {
    fn default() -> Self {
        TargetConfig {
            sync_period: Duration::from_secs(10),
            stdin: false,
        }
    }
}

/// `limits_config`: agent-wide limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub readline_rate_enabled: bool,
    pub readline_rate: f64,
    pub readline_burst: u64,
    pub readline_rate_drop: bool,
    /// Lines longer than this are truncated (when `max_line_size_truncate`) or dropped; 0 = no limit.
    pub max_line_size: ByteSize,
    pub max_line_size_truncate: bool,
    pub max_streams: u64,
}

/// `global`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    pub file_watch_config: FileWatchConfig,
}

/// `global.file_watch_config`: how often open files are polled for new data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileWatchConfig {
    #[serde(with = "serde_duration")]
    pub min_poll_frequency: Duration,
    #[serde(with = "serde_duration")]
    pub max_poll_frequency: Duration,
}

impl Default for FileWatchConfig {
    fn default() -> Self {
        FileWatchConfig {
            min_poll_frequency: Duration::from_millis(250),
            max_poll_frequency: Duration::from_millis(250),
        }
    }
}

/// `scrape_configs[]`: one job — where targets come from, how they are relabeled and which
/// pipeline their lines run through.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub pipeline_stages: Vec<StageConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub static_configs: Vec<StaticConfig>,
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    /// Encoding of the files (only UTF-8 is supported; other values are rejected).
    pub encoding: Option<String>,
    /// Promtail's `decompression` block; not supported (rejected when enabled).
    pub decompression: Option<serde_yaml::Value>,
}

/// `static_configs[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// `kubernetes_sd_configs[]` (role `pod` only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSdConfig {
    pub role: String,
    /// API server URL; empty means in-cluster (service account), then `kubeconfig_file`, then
    /// the default kubeconfig.
    pub api_server: Option<String>,
    pub kubeconfig_file: Option<PathBuf>,
    pub namespaces: NamespaceDiscovery,
    pub selectors: Vec<SelectorConfig>,
    /// Fjord extension: only watch pods scheduled on this node (`spec.nodeName=<node>`). When
    /// unset, the node name is read from the environment variable named by `node_name_env`.
    pub node_name: Option<String>,
    /// Fjord extension: environment variable holding this node's name (default `HOSTNAME`, which
    /// the DaemonSet sets from `spec.nodeName`). Set it to an empty string to watch every pod.
    pub node_name_env: Option<String>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub basic_auth: Option<BasicAuth>,
    pub tls_config: TlsConfig,
    pub attach_metadata: Option<serde_yaml::Value>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
}

impl Default for KubernetesSdConfig {
    fn default() -> Self {
        KubernetesSdConfig {
            role: "pod".into(),
            api_server: None,
            kubeconfig_file: None,
            namespaces: NamespaceDiscovery::default(),
            selectors: Vec::new(),
            node_name: None,
            node_name_env: None,
            bearer_token: None,
            bearer_token_file: None,
            basic_auth: None,
            tls_config: TlsConfig::default(),
            attach_metadata: None,
            follow_redirects: None,
            enable_http2: None,
        }
    }
}

/// `namespaces`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceDiscovery {
    pub names: Vec<String>,
    pub own_namespace: bool,
}

/// `selectors[]`: label and field selectors passed to the API server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectorConfig {
    pub role: String,
    pub label: Option<String>,
    pub field: Option<String>,
}

/// Expands `${VAR}` and `${VAR:-default}` from `lookup`; `$$` is a literal `$`. Like Promtail
/// (which uses drone/envsubst), an unset variable without a default expands to "".
pub fn expand_env(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            match body.find('}') {
                Some(end) => {
                    let expr = &body[..end];
                    let (name, default) = match expr.find(":-") {
                        Some(p) => (&expr[..p], Some(&expr[p + 2..])),
                        None => match expr.find('-') {
                            Some(p) => (&expr[..p], Some(&expr[p + 1..])),
                            None => (expr, None),
                        },
                    };
                    let value = lookup(name).filter(|v| !v.is_empty() || default.is_none());
                    match (value, default) {
                        (Some(v), _) => out.push_str(&v),
                        (None, Some(d)) => out.push_str(d),
                        (None, None) => {}
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if name_len == 0 || after.as_bytes()[0].is_ascii_digit() {
                out.push('$');
                rest = after;
            } else {
                out.push_str(&lookup(&after[..name_len]).unwrap_or_default());
                rest = &after[name_len..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path, expand: bool) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, expand, path)
    }

    /// Parses and validates config text; `path` only names the file in errors.
    pub fn parse(text: &str, expand: bool, path: &Path) -> Result<Config, ConfigError> {
        let text = if expand {
            expand_env(text, |k| std::env::var(k).ok())
        } else {
            text.to_string()
        };
        let mut cfg: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?
        };
        if let Some(c) = cfg.client.take() {
            cfg.clients.insert(0, c);
        }
        cfg.validate().map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if self.clients.is_empty() {
            return Err("at least one entry in clients is required (url: http://loki:3100/loki/api/v1/push)".into());
        }
        for (i, c) in self.clients.iter().enumerate() {
            if c.url.is_empty() {
                return Err(format!("clients[{i}].url is required"));
            }
            if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
                return Err(format!(
                    "clients[{i}].url {:?} must start with http:// or https://",
                    c.url
                ));
            }
            if c.batchsize.0 == 0 {
                return Err(format!("clients[{i}].batchsize must be greater than 0"));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, sc) in self.scrape_configs.iter().enumerate() {
            if sc.job_name.is_empty() {
                return Err(format!("scrape_configs[{i}].job_name is required"));
            }
            if !names.insert(sc.job_name.clone()) {
                return Err(format!(
                    "scrape_configs[{i}]: duplicate job_name {:?}",
                    sc.job_name
                ));
            }
            if let Some(enc) = &sc.encoding
                && !enc.is_empty()
                && !enc.eq_ignore_ascii_case("utf-8")
                && !enc.eq_ignore_ascii_case("utf8")
            {
                return Err(format!(
                    "scrape_configs[{i}].encoding {enc:?} is not supported: the agent reads files as UTF-8"
                ));
            }
            if let Some(d) = &sc.decompression
                && d.get("enabled").and_then(|v| v.as_bool()).unwrap_or(false)
            {
                return Err(format!(
                    "scrape_configs[{i}].decompression is not supported by fjord agent"
                ));
            }
            for (k, kc) in sc.kubernetes_sd_configs.iter().enumerate() {
                if kc.role != "pod" {
                    return Err(format!(
                        "scrape_configs[{i}].kubernetes_sd_configs[{k}].role {:?} is not supported: only role pod discovers log files",
                        kc.role
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "HOST" => Some("node-1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_env_like_promtail() {
        assert_eq!(expand_env("a ${HOST} b", env), "a node-1 b");
        assert_eq!(expand_env("${MISSING:-x}", env), "x");
        assert_eq!(expand_env("${EMPTY:-x}", env), "x");
        assert_eq!(expand_env("${MISSING}", env), "");
        assert_eq!(expand_env("$HOST/x", env), "node-1/x");
        assert_eq!(expand_env("cost $$5 $1", env), "cost $5 $1");
        assert_eq!(expand_env("regex: (.*)$", env), "regex: (.*)$");
    }

    #[test]
    fn defaults_are_promtails() {
        let cfg = Config::parse(
            "clients: [{url: 'http://x:3100/loki/api/v1/push'}]",
            false,
            Path::new("a.yaml"),
        )
        .unwrap();
        let c = &cfg.clients[0];
        assert_eq!(c.batchwait, Duration::from_secs(1));
        assert_eq!(c.batchsize.0, 1 << 20);
        assert_eq!(c.backoff_config.min_period, Duration::from_millis(500));
        assert_eq!(c.backoff_config.max_period, Duration::from_secs(300));
        assert_eq!(c.backoff_config.max_retries, 10);
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(cfg.positions.sync_period, Duration::from_secs(10));
        assert_eq!(
            cfg.positions.filename,
            PathBuf::from("/var/log/positions.yaml")
        );
        assert_eq!(cfg.server.http_listen_port, 80);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = "clients:\n  - url: http://x/loki/api/v1/push\nscrape_configs:\n  - job_name: a\n    static_configz: []\n";
        let err = Config::parse(text, false, Path::new("agent.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("static_configz"), "{err}");
        assert!(err.contains("line 5"), "{err}");
    }

    #[test]
    fn unknown_stage_names_stage_and_line() {
        let text = "clients:\n  - url: http://x/loki/api/v1/push\nscrape_configs:\n  - job_name: a\n    pipeline_stages:\n      - docker: {}\n      - jsn: {}\n";
        let err = Config::parse(text, false, Path::new("agent.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("jsn"), "{err}");
        assert!(err.contains("line 7"), "{err}");
    }

    #[test]
    fn loads_a_promtail_helm_config() {
        let text = r#"
server:
  log_level: info
  http_listen_port: 3101
clients:
  - url: http://loki-gateway/loki/api/v1/push
    tenant_id: team-a
    external_labels: {cluster: prod}
    backoff_config: {min_period: 100ms, max_period: 10s, max_retries: 5}
positions:
  filename: /run/promtail/positions.yaml
scrape_configs:
  - job_name: kubernetes-pods
    pipeline_stages:
      - cri: {}
    kubernetes_sd_configs:
      - role: pod
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_controller_name]
        regex: ([0-9a-z-.]+?)(-[0-9a-f]{8,10})?
        action: replace
        target_label: __tmp_controller_name
      - action: replace
        replacement: /var/log/pods/*$1/*.log
        separator: /
        source_labels: [__meta_kubernetes_pod_uid, __meta_kubernetes_pod_container_name]
        target_label: __path__
"#;
        let cfg = Config::parse(text, false, Path::new("a.yaml")).unwrap();
        assert_eq!(cfg.server.http_listen_port, 3101);
        assert_eq!(cfg.clients[0].backoff_config.max_retries, 5);
        assert_eq!(cfg.scrape_configs[0].relabel_configs.len(), 2);
        assert_eq!(cfg.scrape_configs[0].pipeline_stages.len(), 1);
    }
}
