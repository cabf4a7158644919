//! Kubernetes pod discovery against an API server double that speaks the real list + watch
//! protocol over HTTP: `GET /api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&limit=500`
//! answers a `PodList` with a `resourceVersion`, and `…&watch=true&resourceVersion=N…` streams
//! newline-delimited watch events (`{"type":"ADDED","object":{…Pod…}}`), exactly as
//! kube-apiserver does. No real API server can be installed here, so the double replays the
//! wire format kube-rs and Promtail's client-go consume.
//!
//! The agent runs in-process with the Helm chart's `kubernetes-pods` relabel rules (log root
//! pointed at a temp dir) and pushes to a fake push endpoint; the test checks the targets
//! (`/api/v1/targets`) and the pushed streams as pods are added, updated and deleted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Default)]
struct ApiState {
    pods: Mutex<BTreeMap<String, Value>>,
    version: Mutex<u64>,
    watchers: Mutex<Vec<mpsc::UnboundedSender<String>>>,
    requests: Mutex<Vec<String>>,
}

impl ApiState {
    fn event(&self, kind: &str, pod: Value) {
        let mut v = self.version.lock();
        *v += 1;
        let mut pod = pod;
        pod["metadata"]["resourceVersion"] = json!(v.to_string());
        let key = format!(
            "{}/{}",
            pod["metadata"]["namespace"].as_str().unwrap_or(""),
            pod["metadata"]["name"].as_str().unwrap_or("")
        );
        if kind == "DELETED" {
            self.pods.lock().remove(&key);
        } else {
            self.pods.lock().insert(key, pod.clone());
        }
        // The API server applies the field selector to watch events too.
        if pod["spec"]["nodeName"] != "node-1" {
            return;
        }
        let line = json!({"type": kind, "object": pod}).to_string() + "\n";
        self.watchers
            .lock()
            .retain(|w| w.send(line.clone()).is_ok());
    }
}

async fn pods(
    State(s): State<Arc<ApiState>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    s.requests.lock().push(format!("{q:?}"));
    if q.get("fieldSelector").map(String::as_str) != Some("spec.nodeName=node-1") {
        return (StatusCode::BAD_REQUEST, "expected the node field selector").into_response();
    }
    if q.get("watch").map(String::as_str) == Some("true") {
        let (tx, rx) = mpsc::unbounded_channel::<String>();
        s.watchers.lock().push(tx);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|l| (Ok::<_, std::io::Error>(Bytes::from(l)), rx))
        });
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    let items: Vec<Value> = s
        .pods
        .lock()
        .values()
        .filter(|p| p["spec"]["nodeName"] == "node-1")
        .cloned()
        .collect();
    let rv = s.version.lock().to_string();
    axum::Json(json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": rv}, "items": items})).into_response()
}

#[derive(Default)]
struct Pushed {
    streams: Mutex<Vec<(String, String)>>,
}

async fn push(State(p): State<Arc<Pushed>>, body: Bytes) -> StatusCode {
    match fjord_model::push::decode_protobuf_snappy(
        &body,
        64 << 20,
        &mut fjord_model::memory_budget::Reservation::unbounded(),
    ) {
        Ok(req) => {
            let mut s = p.streams.lock();
            for st in req.streams {
                for e in st.entries {
                    s.push((
                        st.labels.clone(),
                        String::from_utf8_lossy(&e.line).into_owned(),
                    ));
                }
            }
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn pod(name: &str, uid: &str, labels: Value, node: &str) -> Value {
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "shop", "uid": uid, "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-rs"), "uid": "x", "controller": true}]},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "img"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.9", "hostIP": "192.168.1.1", "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

async fn serve(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}")
}

async fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn targets(agent: &str) -> Vec<Value> {
    let body = reqwest::get(format!("{agent}/api/v1/targets"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"][0]["active"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_added_updated_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pods");
    let api = Arc::new(ApiState::default());
    // One pod exists before the agent starts (comes through the initial list).
    api.event(
        "ADDED",
        pod(
            "web-5d8f7c9b6d-abcde",
            "uid-web",
            json!({"app.kubernetes.io/name": "web"}),
            "node-1",
        ),
    );
    let api_url = serve(
        Router::new()
            .route("/api/v1/pods", get(pods))
            .with_state(api.clone()),
    )
    .await;
    let pushed = Arc::new(Pushed::default());
    let push_url = serve(
        Router::new()
            .route("/loki/api/v1/push", post(push))
            .with_state(pushed.clone()),
    )
    .await;

    let chart = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/agent/agent.yaml"
    ))
    .unwrap();
    let cfg_text = chart
        .replace("/var/log/pods", &root.to_string_lossy())
        .replace(
            "node_name_env: HOSTNAME",
            &format!("node_name: node-1\n        api_server: {api_url}"),
        )
        .replace(
            "/run/fjord-agent/positions.yaml",
            &dir.path().join("positions.yaml").to_string_lossy(),
        )
        .replace("sync_period: 10s", "sync_period: 200ms")
        .replace("batchwait: 1s", "batchwait: 50ms");
    let mut cfg =
        fjord_agent::Config::parse(&cfg_text, true, std::path::Path::new("agent.yaml")).unwrap();
    cfg.clients[0].url = format!("{push_url}/loki/api/v1/push");
    cfg.global.file_watch_config.min_poll_frequency = Duration::from_millis(50);

    // The web pod's log file, in kubelet's layout.
    let web_dir = root.join("shop_web-5d8f7c9b6d-abcde_uid-web/app");
    std::fs::create_dir_all(&web_dir).unwrap();
    std::fs::write(
        web_dir.join("0.log"),
        "2024-01-01T00:00:00.000000001Z stdout F hello from web\n",
    )
    .unwrap();

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let agent_url = format!("http://127.0.0.1:{port}");
    let agent = tokio::spawn(fjord_agent::run(
        cfg,
        fjord_agent::RunOptions {
            http_listen_address: Some(format!("127.0.0.1:{port}")),
        },
        async move {
            let _ = stop_rx.await;
        },
    ));

    // Initial list: one target with the chart's labels and path.
    let t = loop {
        if let Ok(r) = reqwest::get(format!("{agent_url}/api/v1/targets")).await
            && r.status().is_success()
        {
            let ts = targets(&agent_url).await;
            if ts.len() == 1 && ts[0]["ready"] == json!(true) {
                break ts[0].clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let labels = &t["labels"];
    assert_eq!(labels["namespace"], "shop");
    assert_eq!(labels["pod"], "web-5d8f7c9b6d-abcde");
    assert_eq!(labels["container"], "app");
    assert_eq!(labels["app"], "web");
    assert_eq!(labels["job"], "shop/web");
    assert_eq!(labels["node_name"], "node-1");
    assert_eq!(t["path"], format!("{}/*uid-web/app/*.log", root.display()));
    assert_eq!(
        t["discovered_labels"]["__meta_kubernetes_pod_controller_kind"],
        "ReplicaSet"
    );
    assert_eq!(
        t["discovered_labels"]["__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name"],
        "true"
    );
    let line = wait_until("web line pushed", || pushed.streams.lock().first().cloned()).await;
    assert_eq!(line.1, "hello from web");
    for want in [
        r#"app="web""#,
        r#"container="app""#,
        r#"job="shop/web""#,
        r#"namespace="shop""#,
        r#"pod="web-5d8f7c9b6d-abcde""#,
        r#"stream="stdout""#,
    ] {
        assert!(line.0.contains(want), "{} lacks {want}", line.0);
    }

    // ADDED through the watch: a second pod with only an `app` label and a controller name
    // whose hash the chart's rule strips.
    let api_dir = root.join("shop_api-7d9c8b5f4d-zzzzz_uid-api/app");
    std::fs::create_dir_all(&api_dir).unwrap();
    std::fs::write(
        api_dir.join("0.log"),
        "2024-01-01T00:00:01Z stderr F api started\n",
    )
    .unwrap();
    let mut p = pod("api-7d9c8b5f4d-zzzzz", "uid-api", json!({}), "node-1");
    p["metadata"]["ownerReferences"][0]["name"] = json!("api-7d9c8b5f4d");
    api.event("ADDED", p.clone());
    let api_t = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let ts = targets(&agent_url).await;
            if let Some(t) = ts
                .into_iter()
                .find(|t| t["labels"]["pod"] == "api-7d9c8b5f4d-zzzzz" && t["ready"] == json!(true))
            {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("api target never appeared"));
    assert_eq!(
        api_t["labels"]["app"], "api",
        "controller name with the hash stripped"
    );
    assert_eq!(api_t["labels"]["job"], "shop/api");
    wait_until("api line pushed", || {
        pushed
            .streams
            .lock()
            .iter()
            .find(|(_, l)| l == "api started")
            .cloned()
    })
    .await;

    // MODIFIED: new labels change the stream labels of the same file.
    p["metadata"]["labels"] = json!({"app": "api-v2", "component": "backend"});
    api.event("MODIFIED", p.clone());
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let ts = targets(&agent_url).await;
            if ts
                .iter()
                .any(|t| t["labels"]["app"] == "api-v2" && t["labels"]["component"] == "backend")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("updated labels never appeared"));
    // A pod on another node never reaches the agent: the field selector filters it.
    api.event("ADDED", pod("other-node", "uid-other", json!({}), "node-2"));

    // DELETED: the target goes away.
    api.event("DELETED", p);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let ts = targets(&agent_url).await;
            if ts.len() == 1 && ts[0]["labels"]["pod"] == "web-5d8f7c9b6d-abcde" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("deleted pod's target never went away"));

    // The HTML targets page lists the remaining target.
    let page = reqwest::get(format!("{agent_url}/targets"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("web-5d8f7c9b6d-abcde") && page.contains("<table>"),
        "{page}"
    );
    let metrics = reqwest::get(format!("{agent_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("promtail_targets_active_total 1"),
        "{metrics}"
    );

    // The watch used the node field selector and kube-rs' list-then-watch protocol.
    let reqs = api.requests.lock().clone();
    assert!(
        reqs.iter()
            .any(|r| r.contains("\"watch\": \"true\"") && r.contains("resourceVersion")),
        "{reqs:?}"
    );
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(30), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
