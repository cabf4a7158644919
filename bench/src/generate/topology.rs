//! The simulated cluster: namespaces, the apps deployed in them (deployments, statefulsets,
//! daemonsets), their pods, and each pod's stdout and stderr streams with a relative volume.
//!
//! Replica counts are scaled so the cluster has exactly the requested number of streams (two per
//! pod; an odd count drops the last pod's stderr). One production deployment is rolled out part
//! way through the time range, so its old pods stop logging and new pods (new names, so new
//! streams) take over, as in a real cluster.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Every app the generator knows; each has its own log format(s) in `formats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum App {
    Nginx,
    ApiGateway,
    Checkout,
    Payments,
    Auth,
    Search,
    Inventory,
    Notifications,
    Worker,
    Postgres,
    Redis,
    Coredns,
    KubeProxy,
    Prometheus,
    Grafana,
    Promtail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    Deployment,
    StatefulSet,
    DaemonSet,
}

/// Static description of an app: where it runs and how much it logs.
pub(crate) struct AppSpec {
    pub(crate) app: App,
    pub(crate) name: &'static str,
    pub(crate) container: &'static str,
    pub(crate) workload: Workload,
    /// Relative bytes per second one pod writes (both streams together).
    pub(crate) volume: f64,
    /// Fraction of that volume written to stderr.
    pub(crate) stderr_share: f64,
    /// Base replicas per namespace (daemonsets: one pod per node, the count is ignored).
    pub(crate) placement: &'static [(&'static str, u32)],
}

const APP_TIERS: &[(&str, u32)] = &[("prod", 4), ("staging", 2), ("dev", 1)];

pub(crate) const APPS: &[AppSpec] = &[
    AppSpec {
        app: App::Nginx,
        name: "nginx",
        container: "nginx",
        workload: Workload::Deployment,
        volume: 9.0,
        stderr_share: 0.04,
        placement: &[("prod", 6), ("staging", 2), ("dev", 1)],
    },
    AppSpec {
        app: App::ApiGateway,
        name: "api-gateway",
        container: "gateway",
        workload: Workload::Deployment,
        volume: 6.0,
        stderr_share: 0.06,
        placement: &[("prod", 8), ("staging", 2), ("dev", 1)],
    },
    AppSpec {
        app: App::Checkout,
        name: "checkout",
        container: "checkout",
        workload: Workload::Deployment,
        volume: 4.0,
        stderr_share: 0.03,
        placement: &[("prod", 6), ("staging", 2), ("dev", 1)],
    },
    AppSpec {
        app: App::Payments,
        name: "payments",
        container: "payments",
        workload: Workload::Deployment,
        volume: 3.0,
        stderr_share: 0.04,
        placement: &[("prod", 4), ("staging", 2), ("dev", 1)],
    },
    AppSpec {
        app: App::Auth,
        name: "auth",
        container: "auth",
        workload: Workload::Deployment,
        volume: 2.5,
        stderr_share: 0.05,
        placement: &[("prod", 4), ("staging", 1), ("dev", 1)],
    },
    AppSpec {
        app: App::Search,
        name: "search",
        container: "search",
        workload: Workload::Deployment,
        volume: 5.0,
        stderr_share: 0.03,
        placement: &[("prod", 6), ("staging", 2), ("dev", 1)],
    },
    AppSpec {
        app: App::Inventory,
        name: "inventory",
        container: "inventory",
        workload: Workload::Deployment,
        volume: 3.0,
        stderr_share: 0.05,
        placement: APP_TIERS,
    },
    AppSpec {
        app: App::Notifications,
        name: "notifications",
        container: "notifications",
        workload: Workload::Deployment,
        volume: 2.0,
        stderr_share: 0.8,
        placement: &[("prod", 3), ("staging", 1), ("dev", 1)],
    },
    AppSpec {
        app: App::Worker,
        name: "worker",
        container: "worker",
        workload: Workload::Deployment,
        volume: 2.5,
        stderr_share: 0.05,
        placement: &[("prod", 6), ("staging", 2), ("dev", 1)],
    },
    AppSpec {
        app: App::Postgres,
        name: "postgres",
        container: "postgres",
        workload: Workload::StatefulSet,
        volume: 3.0,
        stderr_share: 0.9,
        placement: &[("prod", 3), ("staging", 1), ("dev", 1)],
    },
    AppSpec {
        app: App::Redis,
        name: "redis",
        container: "redis",
        workload: Workload::StatefulSet,
        volume: 0.6,
        stderr_share: 0.02,
        placement: &[("prod", 3), ("staging", 1), ("dev", 1)],
    },
    AppSpec {
        app: App::Coredns,
        name: "coredns",
        container: "coredns",
        workload: Workload::Deployment,
        volume: 8.0,
        stderr_share: 0.01,
        placement: &[("kube-system", 2)],
    },
    AppSpec {
        app: App::KubeProxy,
        name: "kube-proxy",
        container: "kube-proxy",
        workload: Workload::DaemonSet,
        volume: 0.4,
        stderr_share: 0.97,
        placement: &[("kube-system", 0)],
    },
    AppSpec {
        app: App::Prometheus,
        name: "prometheus",
        container: "prometheus",
        workload: Workload::StatefulSet,
        volume: 1.0,
        stderr_share: 0.95,
        placement: &[("monitoring", 2)],
    },
    AppSpec {
        app: App::Grafana,
        name: "grafana",
        container: "grafana",
        workload: Workload::Deployment,
        volume: 1.5,
        stderr_share: 0.02,
        placement: &[("monitoring", 1)],
    },
    AppSpec {
        app: App::Promtail,
        name: "promtail",
        container: "promtail",
        workload: Workload::DaemonSet,
        volume: 0.4,
        stderr_share: 0.97,
        placement: &[("monitoring", 0)],
    },
];

/// Nodes at the base scale (daemonset pods per daemonset).
const BASE_NODES: u32 = 6;
/// The deployment rolled out during the time range.
const ROLLOUT: (App, &str) = (App::ApiGateway, "prod");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StdStream {
    Stdout,
    Stderr,
}

impl StdStream {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StdStream::Stdout => "stdout",
            StdStream::Stderr => "stderr",
        }
    }
}

/// One pod.
#[derive(Debug, Clone)]
pub(crate) struct Pod {
    pub(crate) app: usize,
    pub(crate) namespace: &'static str,
    pub(crate) name: String,
    /// Pod IP; the third octet is the node it runs on.
    pub(crate) ip: [u8; 4],
    /// Part of the time range the pod is alive, as fractions `[from, to)` of the range.
    pub(crate) live: (f64, f64),
    /// Per-pod load factor (load balancing is never perfectly even).
    pub(crate) load: f64,
}

/// One stream: a pod's stdout or stderr.
#[derive(Debug, Clone)]
pub(crate) struct StreamSpec {
    pub(crate) pod: usize,
    pub(crate) kind: StdStream,
    pub(crate) labels: String,
    /// Relative bytes over the whole range.
    pub(crate) weight: f64,
}

/// The whole cluster.
pub(crate) struct Cluster {
    pub(crate) pods: Vec<Pod>,
    pub(crate) streams: Vec<StreamSpec>,
    pub(crate) nodes: u32,
    /// Fraction of the range at which the rollout happens.
    pub(crate) rollout_at: f64,
}

/// Characters Kubernetes uses in generated name suffixes.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn suffix(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect()
}

/// One (app, namespace) placement with its scaled replica count.
struct Placement {
    app: usize,
    namespace: &'static str,
    replicas: u32,
}

/// Builds a cluster with exactly `streams` streams (at least 1).
pub(crate) fn build(streams: usize, rng: &mut ChaCha8Rng) -> Cluster {
    let target_pods = streams.div_ceil(2).max(1);
    let base_pods: u32 = APPS
        .iter()
        .flat_map(|a| {
            a.placement.iter().map(move |p| {
                if a.workload == Workload::DaemonSet {
                    BASE_NODES
                } else {
                    p.1
                }
            })
        })
        .sum();
    let scale = target_pods as f64 / base_pods as f64;
    let nodes = ((BASE_NODES as f64 * scale).round() as u32).max(1);
    let mut placements: Vec<Placement> = Vec::new();
    for (ai, a) in APPS.iter().enumerate() {
        for &(ns, base) in a.placement {
            let replicas = if a.workload == Workload::DaemonSet {
                nodes
            } else {
                ((base as f64 * scale).round() as u32).max(1)
            };
            placements.push(Placement {
                app: ai,
                namespace: ns,
                replicas,
            });
        }
    }
    fit_to(&mut placements, target_pods);

    let rollout_at = rng.random_range(0.4..0.7);
    let mut pods = Vec::new();
    for p in &placements {
        let spec = &APPS[p.app];
        let rollout = spec.app == ROLLOUT.0 && p.namespace == ROLLOUT.1 && p.replicas >= 2;
        let mut rs_hash = suffix(rng, 10);
        let ds_nodes: Vec<u32> = (0..p.replicas).collect();
        for i in 0..p.replicas {
            let mut live = (0.0, 1.0);
            if rollout {
                if i < p.replicas / 2 {
                    live = (0.0, rollout_at);
                } else {
                    if i == p.replicas / 2 {
                        rs_hash = suffix(rng, 10);
                    }
                    live = (rollout_at, 1.0);
                }
            }
            let name = match spec.workload {
                Workload::Deployment => format!("{}-{}-{}", spec.name, rs_hash, suffix(rng, 5)),
                Workload::StatefulSet => format!("{}-{}", spec.name, i),
                Workload::DaemonSet => format!("{}-{}", spec.name, suffix(rng, 5)),
            };
            let node = if spec.workload == Workload::DaemonSet {
                ds_nodes[i as usize]
            } else {
                rng.random_range(0..nodes)
            };
            let ip = [10, 244, node as u8, rng.random_range(2..=254)];
            pods.push(Pod {
                app: p.app,
                namespace: p.namespace,
                name,
                ip,
                live,
                load: rng.random_range(0.7..1.3),
            });
        }
    }

    let mut out = Vec::with_capacity(pods.len() * 2);
    for (pi, pod) in pods.iter().enumerate() {
        let spec = &APPS[pod.app];
        for kind in [StdStream::Stdout, StdStream::Stderr] {
            let share = if kind == StdStream::Stderr {
                spec.stderr_share
            } else {
                1.0 - spec.stderr_share
            };
            let labels = format!(
                "{{app=\"{}\", container=\"{}\", namespace=\"{}\", pod=\"{}\", stream=\"{}\"}}",
                spec.name,
                spec.container,
                pod.namespace,
                pod.name,
                kind.as_str()
            );
            let weight = spec.volume * pod.load * share * (pod.live.1 - pod.live.0);
            out.push(StreamSpec {
                pod: pi,
                kind,
                labels,
                weight,
            });
        }
    }
    out.truncate(streams.max(1));
    Cluster {
        pods,
        streams: out,
        nodes,
        rollout_at,
    }
}

/// Adjusts replica counts so they sum to `target`: grows the production deployments in turn,
/// or shrinks the largest placements, and for very small targets drops whole placements from
/// the end of the list (development namespaces and cluster services go first).
fn fit_to(placements: &mut Vec<Placement>, target: usize) {
    let total = |p: &Vec<Placement>| p.iter().map(|x| x.replicas as usize).sum::<usize>();
    let growable: Vec<usize> = placements
        .iter()
        .enumerate()
        .filter(|(_, p)| p.namespace == "prod" && APPS[p.app].workload == Workload::Deployment)
        .map(|(i, _)| i)
        .collect();
    let mut turn = 0;
    while total(placements) < target {
        let i = growable[turn % growable.len()];
        placements[i].replicas += 1;
        turn += 1;
    }
    while total(placements) > target {
        // Largest first, ties to the earliest placement.
        let (i, max) = placements
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.replicas))
            .fold((0, 0), |acc, x| if x.1 > acc.1 { x } else { acc });
        if max > 1 {
            placements[i].replicas -= 1;
        } else {
            placements.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn exact_stream_counts() {
        for n in [1, 2, 7, 40, 76, 199, 500, 501, 2000] {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let c = build(n, &mut rng);
            assert_eq!(c.streams.len(), n, "target {n}");
            let mut labels: Vec<&str> = c.streams.iter().map(|s| s.labels.as_str()).collect();
            labels.sort();
            labels.dedup();
            assert_eq!(labels.len(), n, "label sets are distinct");
        }
    }

    #[test]
    fn default_cluster_shape() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let c = build(500, &mut rng);
        let apps: std::collections::BTreeSet<usize> = c.pods.iter().map(|p| p.app).collect();
        assert_eq!(apps.len(), APPS.len(), "every app is present");
        let namespaces: std::collections::BTreeSet<&str> =
            c.pods.iter().map(|p| p.namespace).collect();
        assert_eq!(namespaces.len(), 5);
        assert!(
            c.pods.iter().any(|p| p.live.1 < 1.0) && c.pods.iter().any(|p| p.live.0 > 0.0),
            "a rollout happens"
        );
        let stderr = c
            .streams
            .iter()
            .filter(|s| s.kind == StdStream::Stderr)
            .count();
        assert_eq!(stderr, 250);
    }
}
