//! `kubernetes_sd_configs` with `role: pod`: watches pods through the API server (kube-rs
//! list + watch) and turns each pod into a target group with the `__meta_kubernetes_*` labels
//! Prometheus' (and so Promtail's) pod discovery produces.
//!
//! One target per container (init containers included, `…_container_init="true"`), or one per
//! declared port of a container, with `__address__` the pod IP (and port). Pods without an IP
//! yield no targets, as in Prometheus. Pod labels and annotations appear as
//! `__meta_kubernetes_pod_label_<name>` / `…_labelpresent_<name>` and
//! `…_annotation_<name>` / `…_annotationpresent_<name>`, names sanitized to `[a-zA-Z0-9_]`.
//!
//! The watch is restricted to this node with the field selector `spec.nodeName=<node>` when
//! the node is known: `node_name` in the config, else the environment variable named by
//! `node_name_env` (default `HOSTNAME`, which the DaemonSet sets from `spec.nodeName`).
//!
//! The API server is `api_server` when set, else `kubeconfig_file`, else the in-cluster
//! service account, else the default kubeconfig.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::mpsc;

use super::{Group, Update};
use crate::config::KubernetesSdConfig;
use crate::relabel::LabelMap;

const META: &str = "__meta_kubernetes_";

/// Discovery could not start.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesError {
    #[error("kubernetes_sd_configs: {0}")]
    Config(String),
}

/// Replaces every character that is not valid in a label name with `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The node this agent runs on, if known.
pub fn node_name(cfg: &KubernetesSdConfig) -> Option<String> {
    if let Some(n) = cfg.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let var = cfg
        .node_name_env
        .clone()
        .unwrap_or_else(|| "HOSTNAME".into());
    if var.is_empty() {
        return None;
    }
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// The field selector sent to the API server.
pub fn field_selector(cfg: &KubernetesSdConfig) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(n) = node_name(cfg) {
        parts.push(format!("spec.nodeName={n}"));
    }
    for s in &cfg.selectors {
        if s.role == "pod"
            && let Some(f) = s.field.as_ref().filter(|f| !f.is_empty())
        {
            parts.push(f.clone());
        }
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

fn label_selector(cfg: &KubernetesSdConfig) -> Option<String> {
    let parts: Vec<String> = cfg
        .selectors
        .iter()
        .filter(|s| s.role == "pod")
        .filter_map(|s| s.label.clone())
        .filter(|l| !l.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

/// The target group of one pod.
pub fn pod_group(pod: &Pod) -> Group {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let source = format!("pod/{ns}/{name}");
    let status = pod.status.clone().unwrap_or_default();
    let pod_ip = status.pod_ip.clone().unwrap_or_default();
    if pod_ip.is_empty() {
        return Group {
            source,
            targets: Vec::new(),
        };
    }
    let mut common = LabelMap::new();
    let mut put = |k: String, v: String| {
        common.insert(k, v);
    };
    put(format!("{META}namespace"), ns);
    put(format!("{META}pod_name"), name);
    put(format!("{META}pod_ip"), pod_ip.clone());
    let ready = status
        .conditions
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.to_lowercase())
        .unwrap_or_else(|| "unknown".into());
    put(format!("{META}pod_ready"), ready);
    put(
        format!("{META}pod_phase"),
        status.phase.clone().unwrap_or_default(),
    );
    let spec = pod.spec.clone().unwrap_or_default();
    put(
        format!("{META}pod_node_name"),
        spec.node_name.clone().unwrap_or_default(),
    );
    put(
        format!("{META}pod_host_ip"),
        status.host_ip.clone().unwrap_or_default(),
    );
    put(
        format!("{META}pod_uid"),
        pod.metadata.uid.clone().unwrap_or_default(),
    );
    for (k, v) in pod.metadata.labels.iter().flatten() {
        let n = sanitize(k);
        put(format!("{META}pod_label_{n}"), v.clone());
        put(format!("{META}pod_labelpresent_{n}"), "true".into());
    }
    for (k, v) in pod.metadata.annotations.iter().flatten() {
        let n = sanitize(k);
        put(format!("{META}pod_annotation_{n}"), v.clone());
        put(format!("{META}pod_annotationpresent_{n}"), "true".into());
    }
    if let Some(owner) = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        if !owner.kind.is_empty() {
            put(format!("{META}pod_controller_kind"), owner.kind.clone());
        }
        if !owner.name.is_empty() {
            put(format!("{META}pod_controller_name"), owner.name.clone());
        }
    }
    let container_id = |statuses: &Option<Vec<k8s_openapi::api::core::v1::ContainerStatus>>,
                        name: &str|
     -> String {
        statuses
            .iter()
            .flatten()
            .find(|s| s.name == name)
            .and_then(|s| s.container_id.clone())
            .unwrap_or_default()
    };
    let mut targets = Vec::new();
    let init = spec.init_containers.clone().unwrap_or_default();
    let all = spec
        .containers
        .iter()
        .map(|c| (c, false))
        .chain(init.iter().map(|c| (c, true)));
    for (c, is_init) in all {
        let statuses = if is_init {
            &status.init_container_statuses
        } else {
            &status.container_statuses
        };
        let mut base = common.clone();
        base.insert(format!("{META}pod_container_name"), c.name.clone());
        base.insert(
            format!("{META}pod_container_id"),
            container_id(statuses, &c.name),
        );
        base.insert(
            format!("{META}pod_container_image"),
            c.image.clone().unwrap_or_default(),
        );
        base.insert(format!("{META}pod_container_init"), is_init.to_string());
        let ports = c.ports.clone().unwrap_or_default();
        if ports.is_empty() {
            base.insert("__address__".into(), pod_ip.clone());
            targets.push(base);
            continue;
        }
        for p in ports {
            let mut t = base.clone();
            let port = p.container_port.to_string();
            let addr = if pod_ip.contains(':') {
                format!("[{pod_ip}]:{port}")
            } else {
                format!("{pod_ip}:{port}")
            };
            t.insert("__address__".into(), addr);
            t.insert(format!("{META}pod_container_port_number"), port);
            t.insert(
                format!("{META}pod_container_port_name"),
                p.name.clone().unwrap_or_default(),
            );
            t.insert(
                format!("{META}pod_container_port_protocol"),
                p.protocol.clone().unwrap_or_default(),
            );
            targets.push(t);
        }
    }
    Group { source, targets }
}

async fn client(cfg: &KubernetesSdConfig) -> Result<Client, KubernetesError> {
    let err = |m: String| KubernetesError::Config(m);
    let mut config = if let Some(url) = cfg.api_server.as_ref().filter(|u| !u.is_empty()) {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| err(format!("invalid api_server {url:?}: {e}")))?;
        kube::Config::new(uri)
    } else if let Some(path) = &cfg.kubeconfig_file {
        let kc = kube::config::Kubeconfig::read_from(path)
            .map_err(|e| err(format!("cannot read kubeconfig {}: {e}", path.display())))?;
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| err(format!("invalid kubeconfig {}: {e}", path.display())))?
    } else {
        kube::Config::infer().await.map_err(|e| {
            err(format!("no API server: not in a cluster and no usable kubeconfig ({e}); set api_server or kubeconfig_file"))
        })?
    };
    let token = match (&cfg.bearer_token, &cfg.bearer_token_file) {
        (Some(t), _) if !t.is_empty() => Some(t.clone()),
        (_, Some(f)) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| {
                    err(format!(
                        "cannot read bearer_token_file {}: {e}",
                        f.display()
                    ))
                })?
                .trim()
                .to_string(),
        ),
        _ => None,
    };
    if let Some(t) = token {
        let v = http::HeaderValue::from_str(&format!("Bearer {t}"))
            .map_err(|e| err(format!("invalid bearer token: {e}")))?;
        config.headers.push((http::header::AUTHORIZATION, v));
    }
    if cfg.tls_config.insecure_skip_verify {
        config.accept_invalid_certs = true;
    }
    if let Some(name) = &cfg.tls_config.server_name {
        config.tls_server_name = Some(name.clone());
    }
    Client::try_from(config).map_err(|e| err(format!("cannot create a Kubernetes client: {e}")))
}

/// Runs discovery for one `kubernetes_sd_configs` entry of job `job`, sending updates until
/// the receiver is gone. Watch errors are retried with backoff.
pub async fn run(
    job: usize,
    index: usize,
    cfg: KubernetesSdConfig,
    tx: mpsc::Sender<Update>,
) -> Result<(), KubernetesError> {
    let client = client(&cfg).await?;
    let mut wc = watcher::Config::default();
    let fields = field_selector(&cfg);
    if let Some(f) = &fields {
        wc = wc.fields(f);
    }
    if let Some(l) = label_selector(&cfg) {
        wc = wc.labels(&l);
    }
    tracing::info!(
        field_selector = fields.as_deref().unwrap_or(""),
        "watching pods"
    );
    let namespaces: Vec<Option<String>> = if cfg.namespaces.names.is_empty() {
        vec![None]
    } else {
        cfg.namespaces.names.iter().cloned().map(Some).collect()
    };
    let mut tasks = Vec::new();
    for ns in namespaces {
        let api: Api<Pod> = match &ns {
            Some(n) => Api::namespaced(client.clone(), n),
            None => Api::all(client.clone()),
        };
        let provider = format!("kubernetes/{index}/{}", ns.as_deref().unwrap_or("*"));
        let tx = tx.clone();
        let wc = wc.clone();
        tasks.push(tokio::spawn(watch(job, provider, api, wc, tx)));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

async fn watch(
    job: usize,
    provider: String,
    api: Api<Pod>,
    wc: watcher::Config,
    tx: mpsc::Sender<Update>,
) {
    let mut stream = watcher::watcher(api, wc).default_backoff().boxed();
    let mut init: BTreeMap<String, Group> = BTreeMap::new();
    while let Some(ev) = stream.next().await {
        let update = match ev {
            Ok(Event::Init) => {
                init.clear();
                continue;
            }
            Ok(Event::InitApply(pod)) => {
                let g = pod_group(&pod);
                init.insert(g.source.clone(), g);
                continue;
            }
            Ok(Event::InitDone) => Update {
                job,
                provider: provider.clone(),
                groups: std::mem::take(&mut init).into_values().collect(),
                full: true,
            },
            Ok(Event::Apply(pod)) => Update {
                job,
                provider: provider.clone(),
                groups: vec![pod_group(&pod)],
                full: false,
            },
            Ok(Event::Delete(pod)) => {
                let g = pod_group(&pod);
                Update {
                    job,
                    provider: provider.clone(),
                    groups: vec![Group {
                        source: g.source,
                        targets: Vec::new(),
                    }],
                    full: false,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "pod watch failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if tx.send(update).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_labels_like_prometheus() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "api-7d9c8b5f4d-x2x9z", "namespace": "prod", "uid": "1f2e-33",
                "labels": {"app.kubernetes.io/name": "api", "pod-template-hash": "7d9c8b5f4d"},
                "annotations": {"kubernetes.io/config.hash": "abc"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d9c8b5f4d", "uid": "u", "controller": true}]
            },
            "spec": {
                "nodeName": "node-1",
                "containers": [{"name": "app", "image": "api:1", "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}]}, {"name": "sidecar", "image": "s:1"}],
                "initContainers": [{"name": "init", "image": "i:1"}]
            },
            "status": {
                "phase": "Running", "podIP": "10.1.2.3", "hostIP": "192.168.0.1",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "containerID": "containerd://c1", "image": "api:1", "imageID": "", "ready": true, "restartCount": 0}]
            }
        }))
        .unwrap();
        let g = pod_group(&pod);
        assert_eq!(g.source, "pod/prod/api-7d9c8b5f4d-x2x9z");
        assert_eq!(g.targets.len(), 3);
        let app = &g.targets[0];
        let get = |t: &LabelMap, k: &str| t.get(k).cloned().unwrap_or_default();
        assert_eq!(get(app, "__address__"), "10.1.2.3:8080");
        assert_eq!(get(app, "__meta_kubernetes_namespace"), "prod");
        assert_eq!(get(app, "__meta_kubernetes_pod_ready"), "true");
        assert_eq!(get(app, "__meta_kubernetes_pod_phase"), "Running");
        assert_eq!(get(app, "__meta_kubernetes_pod_uid"), "1f2e-33");
        assert_eq!(get(app, "__meta_kubernetes_pod_node_name"), "node-1");
        assert_eq!(get(app, "__meta_kubernetes_pod_host_ip"), "192.168.0.1");
        assert_eq!(
            get(app, "__meta_kubernetes_pod_container_id"),
            "containerd://c1"
        );
        assert_eq!(
            get(app, "__meta_kubernetes_pod_container_port_name"),
            "http"
        );
        assert_eq!(
            get(app, "__meta_kubernetes_pod_label_app_kubernetes_io_name"),
            "api"
        );
        assert_eq!(
            get(app, "__meta_kubernetes_pod_labelpresent_pod_template_hash"),
            "true"
        );
        assert_eq!(
            get(
                app,
                "__meta_kubernetes_pod_annotation_kubernetes_io_config_hash"
            ),
            "abc"
        );
        assert_eq!(
            get(app, "__meta_kubernetes_pod_controller_kind"),
            "ReplicaSet"
        );
        assert_eq!(
            get(app, "__meta_kubernetes_pod_controller_name"),
            "api-7d9c8b5f4d"
        );
        assert_eq!(get(&g.targets[1], "__address__"), "10.1.2.3");
        assert_eq!(
            get(&g.targets[1], "__meta_kubernetes_pod_container_init"),
            "false"
        );
        assert_eq!(
            get(&g.targets[2], "__meta_kubernetes_pod_container_name"),
            "init"
        );
        assert_eq!(
            get(&g.targets[2], "__meta_kubernetes_pod_container_init"),
            "true"
        );
    }

    #[test]
    fn pod_without_ip_has_no_targets() {
        let pod: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "p", "namespace": "n"}, "spec": {"containers": [{"name": "c"}]}})).unwrap();
        assert!(pod_group(&pod).targets.is_empty());
    }

    #[test]
    fn node_restriction() {
        let cfg: KubernetesSdConfig = serde_yaml::from_str("{role: pod, node_name: node-7, selectors: [{role: pod, field: 'status.phase=Running'}]}").unwrap();
        assert_eq!(
            field_selector(&cfg).as_deref(),
            Some("spec.nodeName=node-7,status.phase=Running")
        );
        let cfg: KubernetesSdConfig =
            serde_yaml::from_str("{role: pod, node_name_env: ''}").unwrap();
        assert_eq!(field_selector(&cfg), None);
    }
}
