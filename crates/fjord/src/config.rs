//! The server's configuration file: one YAML document whose sections belong to the components.
//! Every key has a default, so no file is needed; `fjord.example.yaml` in the repository shows
//! and explains every key, and `docs/configuration.md` is the reference.
//!
//! Precedence, lowest to highest: defaults, the file (`--config`), `--set section.key=value`
//! overrides, then the dedicated flags (`--http-listen-address`, `--data-dir`, `--target`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use fjord_compactor::CompactorConfig;
use fjord_ingester::IngesterConfig;
use fjord_model::duration::serde_duration;
use fjord_model::limits::{ByteSize, Limits, MemoryLimitSetting};
use fjord_querier::QuerierConfig;
use fjord_store::StorageConfig;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    /// Which components this process runs: `all` (default), or one of `distributor`,
    /// `ingester`, `querier`, `compactor` — several separated by commas.
    pub(crate) target: String,
    /// Require `X-Scope-OrgID` on every request (multi-tenancy). When false every request is
    /// tenant `fake`, as in Loki.
    pub(crate) auth_enabled: bool,
    pub(crate) server: ServerConfig,
    pub(crate) common: CommonConfig,
    pub(crate) distributor: DistributorConfig,
    pub(crate) ingester: IngesterConfig,
    pub(crate) querier: QuerierConfig,
    pub(crate) compactor: CompactorConfig,
    pub(crate) storage: StorageConfig,
    pub(crate) limits_config: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            target: "all".into(),
            auth_enabled: false,
            server: ServerConfig::default(),
            common: CommonConfig::default(),
            distributor: DistributorConfig::default(),
            ingester: IngesterConfig::default(),
            querier: QuerierConfig::default(),
            compactor: CompactorConfig::default(),
            storage: StorageConfig::default(),
            limits_config: Limits::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerConfig {
    /// Address the HTTP server binds.
    pub(crate) http_listen_address: String,
    pub(crate) http_listen_port: u16,
    /// `error`, `warn`, `info` or `debug` (overridden by `RUST_LOG` when set).
    pub(crate) log_level: String,
    /// `logfmt` or `json`.
    pub(crate) log_format: String,
    /// How long a SIGTERM waits for in-flight requests before flushing and exiting.
    #[serde(with = "serde_duration")]
    pub(crate) graceful_shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_listen_address: "0.0.0.0".into(),
            http_listen_port: 3100,
            log_level: "info".into(),
            log_format: "logfmt".into(),
            graceful_shutdown_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CommonConfig {
    /// Directory for local state: the WAL, and the chunk store when the filesystem backend is
    /// used. Loki's key name.
    pub(crate) path_prefix: String,
    /// This process's name in segment ids and (later) the ring; defaults to the host name.
    pub(crate) instance_id: String,
}

impl Default for CommonConfig {
    fn default() -> Self {
        CommonConfig {
            path_prefix: "./data".into(),
            instance_id: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DistributorConfig {
    /// Largest push body accepted (as sent, before decompression): 413 beyond it.
    pub(crate) max_recv_msg_size: ByteSize,
    /// Largest push body after decompression: 413 beyond it. Checked before inflating.
    pub(crate) max_decompressed_size: ByteSize,
    /// Memory all pushes in flight may take together: bodies, decompressed bodies, decoded
    /// requests. A push that finds it full gets 429.
    pub(crate) max_inflight_push_bytes: MemoryLimitSetting,
}

impl Default for DistributorConfig {
    fn default() -> Self {
        DistributorConfig {
            max_recv_msg_size: ByteSize(100 << 20),
            max_decompressed_size: ByteSize(5000 << 20),
            max_inflight_push_bytes: MemoryLimitSetting::Auto,
        }
    }
}

impl DistributorConfig {
    fn validate(&self) -> Result<(), String> {
        if self.max_inflight_push_bytes == MemoryLimitSetting::Bytes(ByteSize(0)) {
            return Err("distributor.max_inflight_push_bytes must be above 0 (or auto)".into());
        }
        Ok(())
    }
}

/// The `auto` of `distributor.max_inflight_push_bytes`: a quarter of the memory the process
/// may use (`memory_limit`: its cgroup's limit, else physical memory), at least 32 MiB; 1 GiB
/// where that memory cannot be read.
pub(crate) fn auto_push_memory(memory_limit: Option<u64>) -> u64 {
    memory_limit.map_or(1 << 30, |l| (l / 4).max(32 << 20))
}

/// The components a target runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Targets {
    pub(crate) distributor: bool,
    pub(crate) ingester: bool,
    pub(crate) querier: bool,
    pub(crate) compactor: bool,
}

impl Config {
    pub(crate) fn data_dir(&self) -> PathBuf {
        PathBuf::from(&self.common.path_prefix)
    }

    pub(crate) fn targets(&self) -> anyhow::Result<Targets> {
        let mut t = Targets::default();
        for part in self.target.split(',').map(str::trim) {
            match part {
                "all" => {
                    t = Targets {
                        distributor: true,
                        ingester: true,
                        querier: true,
                        compactor: true,
                    }
                }
                "distributor" => t.distributor = true,
                "ingester" => t.ingester = true,
                "querier" => t.querier = true,
                "compactor" => t.compactor = true,
                other => {
                    bail!(
                        "unknown target `{other}`: use all, distributor, ingester, querier or compactor"
                    )
                }
            }
        }
        if t.distributor && !t.ingester {
            bail!(
                "target `distributor` needs an ingester in the same process until the ring is available; use `all` or `distributor,ingester`"
            );
        }
        Ok(t)
    }

    /// Checks values that serde cannot; returns warnings to log.
    pub(crate) fn validate(&self) -> anyhow::Result<Vec<String>> {
        self.targets()?;
        self.distributor.validate().map_err(anyhow::Error::msg)?;
        self.ingester.validate().map_err(anyhow::Error::msg)?;
        self.compactor.validate().map_err(anyhow::Error::msg)?;
        self.querier.validate().map_err(anyhow::Error::msg)?;
        let inert = self.limits_config.validate().map_err(anyhow::Error::msg)?;
        if !matches!(self.server.log_format.as_str(), "logfmt" | "json") {
            bail!(
                "server.log_format must be logfmt or json, not `{}`",
                self.server.log_format
            );
        }
        Ok(inert
            .into_iter()
            .map(|k| format!("limits_config.{k} is a Loki setting Fjord accepts but does not use"))
            .collect())
    }
}

/// Builds the effective config from a file, `--set` overrides and the dedicated flags.
pub(crate) fn load(
    file: Option<&std::path::Path>,
    expand_env: bool,
    sets: &[String],
    http_listen_address: Option<&str>,
    data_dir: Option<&str>,
    target: Option<&str>,
) -> anyhow::Result<Config> {
    let mut tree = match file {
        Some(path) => {
            let mut text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            if expand_env {
                text = expand_env_vars(&text);
            }
            let v: Value = serde_yaml::from_str(&text)
                .with_context(|| format!("parsing config file {}", path.display()))?;
            if v.is_null() {
                Value::Mapping(Default::default())
            } else {
                v
            }
        }
        None => Value::Mapping(Default::default()),
    };
    for s in sets {
        let (key, value) = s
            .split_once('=')
            .with_context(|| format!("--set {s:?}: expected section.key=value"))?;
        let value: Value =
            serde_yaml::from_str(value).with_context(|| format!("--set {s:?}: bad value"))?;
        set_path(&mut tree, key, value).with_context(|| format!("--set {s:?}"))?;
    }
    if let Some(addr) = http_listen_address {
        let (host, port) = addr
            .rsplit_once(':')
            .with_context(|| format!("--http-listen-address {addr:?}: expected HOST:PORT"))?;
        let port: u16 = port
            .parse()
            .with_context(|| format!("--http-listen-address {addr:?}: bad port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        set_path(
            &mut tree,
            "server.http_listen_address",
            Value::String(host.to_string()),
        )?;
        set_path(
            &mut tree,
            "server.http_listen_port",
            Value::Number(port.into()),
        )?;
    }
    if let Some(dir) = data_dir {
        set_path(
            &mut tree,
            "common.path_prefix",
            Value::String(dir.to_string()),
        )?;
    }
    if let Some(t) = target {
        set_path(&mut tree, "target", Value::String(t.to_string()))?;
    }
    let cfg: Config =
        serde_yaml::from_value(tree).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    Ok(cfg)
}

/// Sets `a.b.c` in a YAML tree, creating mappings on the way.
fn set_path(tree: &mut Value, path: &str, value: Value) -> anyhow::Result<()> {
    let mut cur = tree;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() {
            bail!("empty key in {path:?}");
        }
        let map = match cur {
            Value::Mapping(m) => m,
            _ => bail!("{path:?}: {} is not a section", parts[..i].join(".")),
        };
        let key = Value::String(p.to_string());
        if i == parts.len() - 1 {
            map.insert(key, value);
            return Ok(());
        }
        cur = map
            .entry(key)
            .or_insert_with(|| Value::Mapping(Default::default()));
    }
    Ok(())
}

/// Replaces `${VAR}` and `${VAR:-default}` with environment values (Loki's
/// `-config.expand-env`). An unset variable without a default becomes empty.
pub(crate) fn expand_env_vars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let inner = &after[..end];
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (inner, None),
                };
                let val = std::env::var(name)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .or(default.map(str::to_string))
                    .unwrap_or_default();
                out.push_str(&val);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let c = load(None, false, &[], None, None, None).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.http_listen_port, 3100);
        assert_eq!(c.common.path_prefix, "./data");
        assert!(c.validate().unwrap().is_empty());
    }

    #[test]
    fn limits_only_file_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.yaml");
        std::fs::write(&p, "limits_config: {reject_old_samples: false}\n").unwrap();
        let c = load(Some(&p), false, &[], None, None, None).unwrap();
        assert!(!c.limits_config.reject_old_samples);
    }

    #[test]
    fn flags_and_sets_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.yaml");
        std::fs::write(
            &p,
            "server:\n  http_listen_port: 9999\ningester:\n  chunk_idle_period: 1m\n",
        )
        .unwrap();
        let c = load(
            Some(&p),
            false,
            &[
                "ingester.wal.fsync=interval".into(),
                "limits_config.max_line_size=1MB".into(),
            ],
            Some("127.0.0.1:4100"),
            Some("/tmp/x"),
            None,
        )
        .unwrap();
        assert_eq!(c.server.http_listen_port, 4100);
        assert_eq!(c.server.http_listen_address, "127.0.0.1");
        assert_eq!(c.common.path_prefix, "/tmp/x");
        assert_eq!(c.ingester.chunk_idle_period, Duration::from_secs(60));
        assert_eq!(c.ingester.wal.fsync, "interval");
        assert_eq!(c.limits_config.max_line_size, ByteSize(1 << 20));
    }

    #[test]
    fn memory_limits_read_a_size_or_auto_and_refuse_zero() {
        let set = |kv: &str| load(None, false, &[kv.into()], None, None, None);
        let c = set("querier.max_inflight_series_bytes=512MB").unwrap();
        assert_eq!(
            c.querier.max_inflight_series_bytes,
            MemoryLimitSetting::Bytes(ByteSize(512 << 20))
        );
        let c = set("distributor.max_inflight_push_bytes=auto").unwrap();
        assert_eq!(
            c.distributor.max_inflight_push_bytes,
            MemoryLimitSetting::Auto
        );
        let err = format!(
            "{:#}",
            set("querier.max_inflight_series_bytes=lots").unwrap_err()
        );
        assert!(
            err.contains("a byte size (examples: 512MB, 2GB) or auto"),
            "{err}"
        );
        let c = set("querier.read_slice_bytes=64MB").unwrap();
        assert_eq!(
            c.querier.read_slice_bytes,
            MemoryLimitSetting::Bytes(ByteSize(64 << 20))
        );
        for key in [
            "querier.max_inflight_series_bytes",
            "querier.read_slice_bytes",
            "distributor.max_inflight_push_bytes",
        ] {
            let err = set(&format!("{key}=0")).unwrap().validate().unwrap_err();
            assert_eq!(err.to_string(), format!("{key} must be above 0 (or auto)"));
        }
        assert_eq!(auto_push_memory(Some(16 << 30)), 4 << 30);
        assert_eq!(auto_push_memory(Some(64 << 20)), 32 << 20);
        assert_eq!(auto_push_memory(None), 1 << 30);
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.yaml");
        std::fs::write(&p, "server:\n  http_listen_prot: 1\n").unwrap();
        let err = load(Some(&p), false, &[], None, None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("http_listen_prot"), "{err}");
        std::fs::write(&p, "limits_config:\n  reject_old_sample: false\n").unwrap();
        let c = load(Some(&p), false, &[], None, None, None).unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("reject_old_sample")
        );
    }

    #[test]
    fn printed_config_loads_back_identically() {
        let c = Config::default();
        let text = serde_yaml::to_string(&c).unwrap();
        let back: Config = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, c);
    }

    /// Every leaf key path of a YAML tree, dotted.
    fn leaf_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            Value::Mapping(m) if !m.is_empty() => {
                for (k, v) in m {
                    let k = k.as_str().unwrap_or_default();
                    let p = if prefix.is_empty() {
                        k.to_string()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaf_paths(v, &p, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }

    #[test]
    fn example_file_is_the_defaults_and_every_key_is_documented() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let example = std::path::Path::new(root).join("fjord.example.yaml");
        let c = load(Some(&example), false, &[], None, None, None).unwrap();
        assert_eq!(
            c,
            Config::default(),
            "fjord.example.yaml must show exactly the defaults"
        );
        let docs =
            std::fs::read_to_string(std::path::Path::new(root).join("docs/configuration.md"))
                .unwrap();
        let example_text = std::fs::read_to_string(&example).unwrap();
        let mut paths = Vec::new();
        leaf_paths(
            &serde_yaml::to_value(Config::default()).unwrap(),
            "",
            &mut paths,
        );
        for p in paths {
            assert!(
                docs.contains(&format!("`{p}`")),
                "docs/configuration.md does not document `{p}`"
            );
            let leaf = p.rsplit('.').next().unwrap();
            assert!(
                example_text.contains(&format!("{leaf}:")),
                "fjord.example.yaml does not show `{p}`"
            );
        }
    }

    #[test]
    fn env_expansion() {
        // A variable no environment sets (setting one is unsafe in edition 2024).
        assert_eq!(
            expand_env_vars("a: ${FJORD_SURELY_UNSET_VAR:-dflt} b: ${FJORD_SURELY_UNSET_VAR}"),
            "a: dflt b: "
        );
    }
}
