//! One push client (`clients[]` entry): batches entries per tenant and pushes them as
//! protobuf+snappy with retries, like Promtail's client.
//!
//! A batch is sent when adding an entry would take it past `batchsize` bytes or when it is
//! `batchwait` old. While a batch is being sent (and retried) the client takes no new entries,
//! so its bounded input channel fills and the pipeline and tailers wait: back-pressure instead
//! of unbounded memory. Retries follow `backoff_config` (doubling from `min_period` up to
//! `max_period`, with jitter) on connection errors, 429 and 5xx; other 4xx answers drop the
//! batch at once. A batch is dropped after `max_retries` attempts (0 = retry forever), counted
//! in `promtail_dropped_entries_total{reason}`. Dropping a batch — sent or not — releases its
//! entries' position acknowledgements.
//!
//! Labels starting with `__` are removed before sending; `__tenant_id__` picks the tenant
//! (default `tenant_id`). `external_labels` are added to every stream; an entry's own label of
//! the same name wins.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fjord_model::labels::{Label, write_label_string};
use fjord_model::{PushRequest, PushStream};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{Notify, mpsc};

use crate::config::ClientConfig;
use crate::metrics::{DropLabels, HostLabel, Metrics, RequestLabels};
use crate::positions::Ack;
use crate::stages::{Entry, TENANT_LABEL};

/// A client that could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("client {url}: {message}")]
    Config { url: String, message: String },
}

/// Entries of one tenant waiting to be sent.
#[derive(Default)]
struct Batch {
    streams: HashMap<String, Vec<fjord_model::Entry>>,
    order: Vec<String>,
    acks: Vec<Ack>,
    bytes: usize,
    entries: usize,
    created: Option<Instant>,
}

impl Batch {
    fn add(&mut self, labels: String, e: fjord_model::Entry, acks: impl IntoIterator<Item = Ack>) {
        self.bytes += e.line.len();
        self.entries += 1;
        self.acks.extend(acks);
        self.created.get_or_insert_with(Instant::now);
        match self.streams.get_mut(&labels) {
            Some(v) => v.push(e),
            None => {
                self.order.push(labels.clone());
                self.streams.insert(labels, vec![e]);
            }
        }
    }

    fn encode(&mut self) -> Vec<u8> {
        let mut req = PushRequest::default();
        for labels in &self.order {
            if let Some(entries) = self.streams.get_mut(labels) {
                req.streams.push(PushStream {
                    labels: labels.clone(),
                    entries: std::mem::take(entries),
                });
            }
        }
        req.encode_protobuf_snappy()
    }
}

/// A configured client, ready to run.
pub struct Client {
    cfg: ClientConfig,
    http: reqwest::Client,
    host: String,
    metrics: Arc<Metrics>,
    /// Woken after every acknowledged push so positions are saved promptly.
    acked: Arc<Notify>,
    external: Vec<(String, String)>,
    label_cache: parking_lot::Mutex<HashMap<u64, (crate::relabel::LabelMap, String)>>,
}

fn read_secret(path: &std::path::Path, what: &str, url: &str) -> Result<String, ClientError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| ClientError::Config {
            url: url.into(),
            message: format!("cannot read {what} {}: {e}", path.display()),
        })
}

impl Client {
    pub fn new(
        cfg: &ClientConfig,
        metrics: Arc<Metrics>,
        acked: Arc<Notify>,
    ) -> Result<Client, ClientError> {
        let url = cfg.url.clone();
        let err = |message: String| ClientError::Config {
            url: url.clone(),
            message,
        };
        let parsed = url::Url::parse(&cfg.url).map_err(|e| err(format!("invalid url: {e}")))?;
        let host = match parsed.port() {
            Some(p) => format!("{}:{p}", parsed.host_str().unwrap_or("")),
            None => parsed.host_str().unwrap_or("").to_string(),
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| err(format!("invalid header name {k:?}: {e}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| err(format!("invalid value for header {k}: {e}")))?;
            headers.insert(name, value);
        }
        let bearer = match (&cfg.bearer_token, &cfg.bearer_token_file) {
            (Some(t), _) if !t.is_empty() => Some(t.clone()),
            (_, Some(f)) => Some(read_secret(f, "bearer_token_file", &cfg.url)?),
            _ => None,
        };
        if let Some(t) = bearer {
            let v = HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|e| err(format!("invalid bearer token: {e}")))?;
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let mut b = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .user_agent(concat!("fjord-agent/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers);
        let tls = &cfg.tls_config;
        let ca = match (&tls.ca, &tls.ca_file) {
            (Some(pem), _) => Some(pem.clone().into_bytes()),
            (None, Some(f)) => Some(
                std::fs::read(f)
                    .map_err(|e| err(format!("cannot read ca_file {}: {e}", f.display())))?,
            ),
            _ => None,
        };
        if let Some(pem) = ca {
            for c in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| err(format!("invalid CA certificate: {e}")))?
            {
                b = b.add_root_certificate(c);
            }
        }
        let cert = match (&tls.cert, &tls.cert_file) {
            (Some(p), _) => Some(p.clone().into_bytes()),
            (None, Some(f)) => Some(
                std::fs::read(f)
                    .map_err(|e| err(format!("cannot read cert_file {}: {e}", f.display())))?,
            ),
            _ => None,
        };
        let key = match (&tls.key, &tls.key_file) {
            (Some(p), _) => Some(p.clone().into_bytes()),
            (None, Some(f)) => Some(
                std::fs::read(f)
                    .map_err(|e| err(format!("cannot read key_file {}: {e}", f.display())))?,
            ),
            _ => None,
        };
        match (cert, key) {
            (Some(mut c), Some(k)) => {
                c.push(b'\n');
                c.extend_from_slice(&k);
                b = b.identity(
                    reqwest::Identity::from_pem(&c)
                        .map_err(|e| err(format!("invalid client certificate: {e}")))?,
                );
            }
            (None, None) => {}
            _ => {
                return Err(err(
                    "tls_config needs both cert and key for a client certificate".into(),
                ));
            }
        }
        if tls.insecure_skip_verify {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        if let Some(p) = &cfg.proxy_url
            && !p.is_empty()
        {
            b = b
                .proxy(reqwest::Proxy::all(p).map_err(|e| err(format!("invalid proxy_url: {e}")))?);
        }
        let http = b
            .build()
            .map_err(|e| err(format!("cannot build HTTP client: {e}")))?;
        let external = cfg
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Client {
            cfg: cfg.clone(),
            http,
            host,
            metrics,
            acked,
            external,
            label_cache: Default::default(),
        })
    }

    fn basic_auth(&self) -> Option<(String, String)> {
        let ba = self.cfg.basic_auth.as_ref()?;
        let pw = match (&ba.password, &ba.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            _ => String::new(),
        };
        Some((ba.username.clone(), pw))
    }

    /// Runs until `rx` is closed and everything received has been sent or dropped.
    pub async fn run(self, mut rx: mpsc::Receiver<Vec<Entry>>) {
        let mut batches: HashMap<String, Batch> = HashMap::new();
        let check = (self.cfg.batchwait / 10).max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval(check);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => {
                    let Some(entries) = msg else { break };
                    for e in entries {
                        self.add(&mut batches, e).await;
                    }
                }
                _ = ticker.tick() => {
                    let due: Vec<String> = batches
                        .iter()
                        .filter(|(_, b)| b.created.is_some_and(|c| c.elapsed() >= self.cfg.batchwait))
                        .map(|(t, _)| t.clone())
                        .collect();
                    for t in due {
                        if let Some(b) = batches.remove(&t) {
                            self.send(&t, b).await;
                        }
                    }
                }
            }
        }
        for (t, b) in batches.drain() {
            self.send(&t, b).await;
        }
    }

    /// The stream label string of a label set: labels starting with `__` removed, external
    /// labels added. Cached, since a file's lines mostly share one label set.
    fn label_string(&self, labels: &crate::relabel::LabelMap) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        labels.hash(&mut h);
        let key = h.finish();
        let mut cache = self.label_cache.lock();
        if let Some((l, s)) = cache.get(&key)
            && l == labels
        {
            return s.clone();
        }
        let mut pairs: Vec<(&str, &str)> = labels
            .iter()
            .filter(|(k, _)| !k.starts_with("__"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (k, v) in &self.external {
            if !labels.contains_key(k) {
                pairs.push((k, v));
            }
        }
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut out = String::new();
        write_label_string(&mut out, pairs.into_iter());
        if cache.len() >= 10_000 {
            cache.clear();
        }
        cache.insert(key, (labels.clone(), out.clone()));
        out
    }

    async fn add(&self, batches: &mut HashMap<String, Batch>, mut e: Entry) {
        let tenant = e
            .labels
            .remove(TENANT_LABEL)
            .unwrap_or_else(|| self.cfg.tenant_id.clone());
        let labels = self.label_string(&e.labels);
        let line = Bytes::from(std::mem::take(&mut e.line));
        let entry = fjord_model::Entry {
            ts: e.ts,
            line,
            metadata: e
                .metadata
                .drain(..)
                .map(|(n, v)| Label::new(n, v))
                .collect(),
        };
        let size = entry.line.len();
        let full = batches
            .get(&tenant)
            .is_some_and(|b| b.entries > 0 && b.bytes + size > self.cfg.batchsize.0 as usize);
        if full && let Some(b) = batches.remove(&tenant) {
            self.send(&tenant, b).await;
        }
        batches
            .entry(tenant)
            .or_default()
            .add(labels, entry, e.acks.drain(..));
    }

    fn drop_batch(&self, b: &Batch, reason: &str) {
        let l = DropLabels {
            host: self.host.clone(),
            reason: reason.to_string(),
        };
        self.metrics
            .dropped_entries
            .get_or_create(&l)
            .inc_by(b.entries as u64);
        self.metrics
            .dropped_bytes
            .get_or_create(&l)
            .inc_by(b.bytes as u64);
    }

    async fn send(&self, tenant: &str, mut b: Batch) {
        if b.entries == 0 {
            return;
        }
        let body = Bytes::from(b.encode());
        let host = HostLabel {
            host: self.host.clone(),
        };
        self.metrics
            .encoded_bytes
            .get_or_create(&host)
            .inc_by(body.len() as u64);
        let backoff = &self.cfg.backoff_config;
        let mut wait = backoff.min_period;
        let mut attempts = 0u32;
        loop {
            let start = Instant::now();
            let mut req = self
                .http
                .post(&self.cfg.url)
                .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
                .body(body.clone());
            if !tenant.is_empty() {
                req = req.header("X-Scope-OrgID", tenant);
            }
            if let Some((u, p)) = self.basic_auth() {
                req = req.basic_auth(u, Some(p));
            }
            let res = req.send().await;
            let (status, text) = match res {
                Ok(r) => {
                    let s = r.status().as_u16();
                    let body = if r.status().is_success() {
                        String::new()
                    } else {
                        r.text().await.unwrap_or_default()
                    };
                    (Some(s), body)
                }
                Err(e) => (None, e.to_string()),
            };
            let code = status.map(|s| s.to_string()).unwrap_or_else(|| "0".into());
            self.metrics
                .request_duration
                .get_or_create(&RequestLabels {
                    status_code: code,
                    host: self.host.clone(),
                })
                .observe(start.elapsed().as_secs_f64());
            match status {
                Some(s) if (200..300).contains(&s) => {
                    self.metrics
                        .sent_entries
                        .get_or_create(&host)
                        .inc_by(b.entries as u64);
                    self.metrics
                        .sent_bytes
                        .get_or_create(&host)
                        .inc_by(b.bytes as u64);
                    drop(b);
                    self.acked.notify_one();
                    return;
                }
                Some(429) if self.cfg.drop_rate_limited_batches => {
                    tracing::warn!(host = %self.host, error = %text.trim(), "push rate limited; dropping the batch (drop_rate_limited_batches)");
                    self.drop_batch(&b, "rate_limited");
                    return;
                }
                Some(s) if s != 429 && s < 500 => {
                    tracing::error!(host = %self.host, status = s, error = %text.trim(), entries = b.entries, "push rejected; dropping the batch");
                    self.drop_batch(&b, "ingester_error");
                    drop(b);
                    self.acked.notify_one();
                    return;
                }
                _ => {}
            }
            attempts += 1;
            if backoff.max_retries > 0 && attempts >= backoff.max_retries {
                tracing::error!(host = %self.host, attempts, error = %text.trim(), entries = b.entries, "push failed after all retries; dropping the batch");
                self.drop_batch(&b, "ingester_error");
                drop(b);
                self.acked.notify_one();
                return;
            }
            self.metrics.batch_retries.get_or_create(&host).inc();
            tracing::warn!(host = %self.host, status = ?status, error = %text.trim(), retry_in = ?wait, "push failed; will retry");
            tokio::time::sleep(jitter(wait)).await;
            wait = (wait * 2).min(backoff.max_period.max(backoff.min_period));
        }
    }
}

/// Spreads retries: a random wait in [d/2, d].
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let frac = 0.5 + (nanos % 1000) as f64 / 2000.0;
    d.mul_f64(frac)
}
