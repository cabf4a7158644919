//! Renders one log line for a stream: the app's real-world layout (nginx access and error logs,
//! Go logfmt, nested JSON, Spring Boot with stack traces, Python tracebacks, Postgres, Redis,
//! CoreDNS, klog, Prometheus, Grafana, Promtail) filled with skewed values and high-entropy ids.
//!
//! Each stream owns a [`LineGen`] with its own seeded RNG, so a stream's text depends only on the
//! seed and the stream's index. During an error burst a stream's lines turn mostly to errors.
//! Multi-line entries (stack traces) are single entries containing `\n`, as a multiline stage
//! in an agent would produce them.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::clock::{Clock, w};
use super::tables::Tables;
use super::topology::{APPS, App, Pod, StdStream};
use super::vocab::user_ip;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sev {
    Debug,
    Info,
    Warn,
    Error,
}

impl Sev {
    fn lower(self) -> &'static str {
        match self {
            Sev::Debug => "debug",
            Sev::Info => "info",
            Sev::Warn => "warn",
            Sev::Error => "error",
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Line generator of one stream.
pub(crate) struct LineGen<'a> {
    t: &'a Tables,
    rng: ChaCha8Rng,
    app: App,
    kind: StdStream,
    /// Whether this stream carries the app's main log (stdout for most apps, stderr for the ones
    /// that log there, such as Postgres or Python's logging).
    primary: bool,
    pod: &'a Pod,
    nodes: u32,
    clock: Clock,
    origin_ns: i64,
    conn: u64,
}

impl<'a> LineGen<'a> {
    pub(crate) fn new(
        t: &'a Tables,
        rng: ChaCha8Rng,
        pod: &'a Pod,
        kind: StdStream,
        nodes: u32,
        origin_ns: i64,
    ) -> LineGen<'a> {
        let spec = &APPS[pod.app];
        let primary = (kind == StdStream::Stdout) == (spec.stderr_share < 0.5);
        let conn = 1_000 + (pod.ip[3] as u64) * 7919;
        LineGen {
            t,
            rng,
            app: spec.app,
            kind,
            primary,
            pod,
            nodes,
            clock: Clock::default(),
            origin_ns,
            conn,
        }
    }

    /// Writes the line for timestamp `ts` (Unix ns) into `out` (cleared first). `burst` marks an
    /// error burst affecting this stream; `needle` is a rare string this line must contain.
    pub(crate) fn line(&mut self, out: &mut Vec<u8>, ts: i64, burst: bool, needle: Option<&str>) {
        out.clear();
        self.clock.set(ts, self.origin_ns);
        match (self.app, self.kind) {
            (App::Nginx, StdStream::Stdout) => self.nginx_access(out, burst),
            (App::Nginx, StdStream::Stderr) => self.nginx_error(out, burst),
            (App::ApiGateway, _) => self.gateway(out, burst),
            (App::Auth, _) => self.auth(out, burst),
            (App::Worker, _) => self.worker(out, burst),
            (App::Checkout, _) => self.checkout(out, burst),
            (App::Payments, _) => self.payments(out, burst),
            (App::Search, _) => self.search(out, burst),
            (App::Inventory, StdStream::Stdout) => self.spring(out, burst),
            (App::Inventory, StdStream::Stderr) => self.jvm_gc(out),
            (App::Notifications, StdStream::Stderr) => self.python(out, burst),
            (App::Notifications, StdStream::Stdout) => self.gunicorn(out, burst),
            (App::Postgres, _) => self.postgres(out, burst),
            (App::Redis, _) => self.redis(out),
            (App::Coredns, _) => self.coredns(out, burst),
            (App::KubeProxy, _) => self.klog(out, burst),
            (App::Prometheus, _) => self.prometheus(out, burst),
            (App::Grafana, _) => self.grafana(out, burst),
            (App::Promtail, _) => self.promtail(out, burst),
        }
        if let Some(n) = needle {
            place_needle(out, n);
        }
    }

    // ---------------------------------------------------------------- shared pieces

    fn sev(&mut self, burst: bool) -> Sev {
        let x: f64 = self.rng.random();
        match (self.primary, burst) {
            (true, false) => match x {
                x if x < 0.015 => Sev::Error,
                x if x < 0.06 => Sev::Warn,
                x if x < 0.9 => Sev::Info,
                _ => Sev::Debug,
            },
            (true, true) => match x {
                x if x < 0.5 => Sev::Error,
                x if x < 0.7 => Sev::Warn,
                x if x < 0.95 => Sev::Info,
                _ => Sev::Debug,
            },
            (false, false) => match x {
                x if x < 0.3 => Sev::Error,
                x if x < 0.85 => Sev::Warn,
                _ => Sev::Info,
            },
            (false, true) => match x {
                x if x < 0.75 => Sev::Error,
                _ => Sev::Warn,
            },
        }
    }

    fn hex(&mut self, out: &mut Vec<u8>, chars: usize) {
        let mut bits = 0u64;
        for i in 0..chars {
            if i % 16 == 0 {
                bits = self.rng.random();
            }
            out.push(HEX[(bits & 15) as usize]);
            bits >>= 4;
        }
    }

    fn ulid(&mut self, out: &mut Vec<u8>) {
        for _ in 0..26 {
            out.push(CROCKFORD[self.rng.random_range(0..32)]);
        }
    }

    fn uuid(&mut self, out: &mut Vec<u8>) {
        for (i, n) in [8, 4, 4, 4, 12].into_iter().enumerate() {
            if i > 0 {
                out.push(b'-');
            }
            self.hex(out, n);
        }
    }

    /// A log-normal latency in ms around `median`; bursts are an order of magnitude slower.
    fn latency_ms(&mut self, median: f64, burst: bool) -> f64 {
        let u1: f64 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let slow = if burst {
            self.rng.random_range(5.0..20.0)
        } else {
            1.0
        };
        (median * (0.8 * z).exp() * slow).min(60_000.0)
    }

    fn status(&mut self, burst: bool) -> &'static str {
        if burst && self.rng.random_bool(0.6) {
            self.t.status_burst.pick(&mut self.rng)
        } else {
            self.t.status_ok.pick(&mut self.rng)
        }
    }

    fn ip(out: &mut Vec<u8>, ip: [u8; 4]) {
        w(out, format_args!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]));
    }

    fn user_and_ip(&mut self) -> (u32, [u8; 4]) {
        let user = self.t.vocab.user(&mut self.rng);
        let ip = if self.rng.random_bool(0.85) {
            user_ip(user)
        } else {
            [
                100,
                self.rng.random(),
                self.rng.random(),
                self.rng.random_range(1..255),
            ]
        };
        (user, ip)
    }

    fn pod_ip(&mut self) -> [u8; 4] {
        [
            10,
            244,
            self.rng.random_range(0..self.nodes.max(1)) as u8,
            self.rng.random_range(2..255),
        ]
    }

    /// Expands `{placeholders}` in a table template.
    fn fill(&mut self, out: &mut Vec<u8>, tpl: &str) {
        let mut rest = tpl;
        while let Some(i) = rest.find('{') {
            out.extend_from_slice(&rest.as_bytes()[..i]);
            let Some(j) = rest[i..].find('}') else {
                break;
            };
            let key = &rest[i + 1..i + j];
            self.placeholder(out, key);
            rest = &rest[i + j + 1..];
        }
        out.extend_from_slice(rest.as_bytes());
    }

    fn placeholder(&mut self, out: &mut Vec<u8>, key: &str) {
        match key {
            "id" => w(
                out,
                format_args!("{}", self.rng.random_range(10_000..9_999_999)),
            ),
            "hash" => out.extend_from_slice(
                ["3f9a1c2e", "b07d44e1", "9c2e7a10"][self.rng.random_range(0..3)].as_bytes(),
            ),
            "q" => {
                let n = self.rng.random_range(1..4);
                self.t.vocab.words(&mut self.rng, out, n, b'+');
            }
            "sku" => w(
                out,
                format_args!("SKU-{:06}", self.t.vocab.word_rank(&mut self.rng)),
            ),
            "user" => w(out, format_args!("{}", self.t.vocab.user(&mut self.rng))),
            "pid" => w(out, format_args!("{}", self.rng.random_range(100..65_000))),
            "n" => w(
                out,
                format_args!("{}", self.rng.random_range(0..self.nodes.max(1))),
            ),
            "m" => w(out, format_args!("{}", self.rng.random_range(2..255))),
            "port" => w(
                out,
                format_args!("{}", self.rng.random_range(30_000..61_000)),
            ),
            "ms" => {
                let v = self.latency_ms(12.0, false);
                w(out, format_args!("{v:.3}"));
            }
            "s" => {
                let v = self.latency_ms(1500.0, false) / 1000.0;
                w(out, format_args!("{v:.3}"));
            }
            "mint" | "maxt" => {
                let ms = (self.origin_ns / 1_000_000) - if key == "mint" { 7_200_000 } else { 0 };
                w(out, format_args!("{ms}"));
            }
            "ulid" => self.ulid(out),
            "job" => out.extend_from_slice(self.t.scrape_jobs.pick(&mut self.rng).as_bytes()),
            "uid" => self.hex(out, 9),
            _ => out.extend_from_slice(key.as_bytes()),
        }
    }

    fn shop_path(&mut self, out: &mut Vec<u8>) {
        let tpl = self.t.shop_paths.pick(&mut self.rng);
        self.fill(out, tpl);
    }

    // ---------------------------------------------------------------- nginx

    fn nginx_access(&mut self, out: &mut Vec<u8>, burst: bool) {
        let (user, ip) = self.user_and_ip();
        Self::ip(out, ip);
        out.extend_from_slice(b" - - [");
        self.clock.nginx_local(out);
        out.extend_from_slice(b"] \"");
        out.extend_from_slice(self.t.methods.pick(&mut self.rng).as_bytes());
        out.push(b' ');
        self.shop_path(out);
        let status = self.status(burst);
        let bytes: u32 = if status == "304" || status == "204" {
            0
        } else {
            self.rng.random_range(120..48_000)
        };
        let rt = self.latency_ms(18.0, burst) / 1000.0;
        let referer = self.t.referers.pick(&mut self.rng);
        let ua = self.t.user_agents.pick(&mut self.rng);
        w(
            out,
            format_args!(
                " HTTP/1.1\" {status} {bytes} \"{referer}\" \"{ua}\" {} {rt:.3} [",
                self.rng.random_range(180..2_400)
            ),
        );
        let upstream = self.t.upstreams.pick(&mut self.rng);
        w(
            out,
            format_args!("{}-{upstream}-8080] [] ", self.pod.namespace),
        );
        let up_ip = self.pod_ip();
        Self::ip(out, up_ip);
        let up_status = if status == "499" { "-" } else { status };
        w(
            out,
            format_args!(":8080 {bytes} {:.3} {up_status} ", (rt - 0.001).max(0.0)),
        );
        self.hex(out, 32);
        let _ = user;
    }

    fn nginx_error(&mut self, out: &mut Vec<u8>, burst: bool) {
        if !burst && self.rng.random_bool(0.3) {
            // The ingress controller's own klog output shares the container's stderr.
            self.clock.klog(out, 'I');
            w(
                out,
                format_args!(
                    "       7 controller.go:{}] ",
                    self.rng.random_range(180..260)
                ),
            );
            let msg = [
                "\"Configuration changes detected, backend reload required\"",
                "\"Backend successfully reloaded\"",
                "\"updating Ingress status\" namespace=\"prod\" ingress=\"shop\" currentValue=null newValue=[{\"ip\":\"203.0.113.10\"}]",
            ][self.rng.random_range(0..3)];
            out.extend_from_slice(msg.as_bytes());
            return;
        }
        self.clock.slashed(out);
        let sev = self.sev(burst);
        let (_, client) = self.user_and_ip();
        let pid = 20 + self.pod.ip[3] as u32 % 16;
        w(
            out,
            format_args!(
                " [{}] {pid}#{pid}: *{} ",
                if sev == Sev::Error { "error" } else { "warn" },
                self.conn
            ),
        );
        self.conn += self.rng.random_range(1..500);
        let upstream = self.t.upstreams.pick(&mut self.rng);
        let mut path = Vec::new();
        self.shop_path(&mut path);
        let path = String::from_utf8_lossy(&path).into_owned();
        match self.rng.random_range(0..4) {
            0 if sev == Sev::Warn => w(
                out,
                format_args!(
                    "an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/{}/{:02}/{:010} while reading upstream",
                    self.rng.random_range(1..10),
                    self.rng.random_range(0..100),
                    self.rng.random_range(0..2_000_000_000u32)
                ),
            ),
            1 => w(
                out,
                format_args!(
                    "connect() failed (111: Connection refused) while connecting to upstream"
                ),
            ),
            2 => w(
                out,
                format_args!(
                    "upstream prematurely closed connection while reading response header from upstream"
                ),
            ),
            _ => w(
                out,
                format_args!(
                    "upstream timed out (110: Operation timed out) while reading response header from upstream"
                ),
            ),
        }
        out.extend_from_slice(b", client: ");
        Self::ip(out, client);
        let up_ip = self.pod_ip();
        w(
            out,
            format_args!(
                ", server: shop.example.com, request: \"GET {path} HTTP/1.1\", upstream: \"http://{}.{}.{}.{}:8080{path}\", host: \"shop.example.com\"",
                up_ip[0], up_ip[1], up_ip[2], up_ip[3]
            ),
        );
        let _ = upstream;
    }

    // ---------------------------------------------------------------- logfmt services

    fn gateway(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        if sev == Sev::Error && burst && !self.primary && self.rng.random_bool(0.1) {
            self.go_panic(out);
            return;
        }
        out.extend_from_slice(b"ts=");
        self.clock.rfc3339_ms(out);
        let caller = self.t.go_files.pick(&mut self.rng);
        w(out, format_args!(" level={} caller={caller} ", sev.lower()));
        let method = self.t.methods.pick(&mut self.rng);
        let path = self.t.routes.pick(&mut self.rng);
        match sev {
            Sev::Debug => {
                let key = self.t.vocab.word_rank(&mut self.rng);
                w(
                    out,
                    format_args!(
                        "msg=\"cache {}\" key=products:{key} ttl=300s",
                        if self.rng.random_bool(0.7) {
                            "hit"
                        } else {
                            "miss"
                        }
                    ),
                );
                return;
            }
            Sev::Info => out.extend_from_slice(b"msg=\"request completed\""),
            Sev::Warn => out.extend_from_slice(
                [
                    "msg=\"slow request\"",
                    "msg=\"retrying upstream\" attempt=2",
                    "msg=\"client closed request\"",
                ][self.rng.random_range(0..3)]
                .as_bytes(),
            ),
            Sev::Error => {
                let err = self.t.go_errors.pick(&mut self.rng);
                let upstream = self.t.upstreams.pick(&mut self.rng);
                w(
                    out,
                    format_args!(
                        "msg=\"upstream request failed\" upstream={upstream}:8080 err=\"{}\"",
                        err.replace('"', "\\\"")
                    ),
                );
            }
        }
        let status = match sev {
            Sev::Error => ["502", "503", "504", "500"][self.rng.random_range(0..4)],
            Sev::Warn => ["200", "499", "200"][self.rng.random_range(0..3)],
            _ => self.status(false),
        };
        let d = self.latency_ms(
            if sev == Sev::Warn { 900.0 } else { 14.0 },
            burst || sev == Sev::Error,
        );
        w(
            out,
            format_args!(" method={method} path={path} status={status} duration="),
        );
        go_duration_ms(out, d);
        w(
            out,
            format_args!(" bytes={} trace_id=", self.rng.random_range(0..40_000)),
        );
        self.hex(out, 32);
        let (user, ip) = self.user_and_ip();
        w(out, format_args!(" user_id=u-{user} client_ip="));
        Self::ip(out, ip);
    }

    fn go_panic(&mut self, out: &mut Vec<u8>) {
        w(
            out,
            format_args!(
                "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x{:x}]\n\ngoroutine {} [running]:\n",
                0x7a0000 + self.rng.random_range(0..0xffff),
                self.rng.random_range(100..90_000)
            ),
        );
        for f in [
            "main.(*Proxy).forward(0xc000124000, {0x1a2b3c0, 0xc0004a2000}, 0xc0003f8000)\n\t/src/internal/proxy/proxy.go:88 +0x1a5",
            "main.(*Handler).ServeHTTP(0xc00011e0a0, {0x1a2b3c0, 0xc0004a2000}, 0xc0003f8000)\n\t/src/internal/handler/handler.go:142 +0x2f1",
            "net/http.serverHandler.ServeHTTP({0xc000190000?}, {0x1a2b3c0?, 0xc0004a2000?}, 0x6?)\n\t/usr/local/go/src/net/http/server.go:3210 +0x8e",
            "created by net/http.(*Server).Serve in goroutine 1\n\t/usr/local/go/src/net/http/server.go:3360 +0x485",
        ] {
            out.extend_from_slice(f.as_bytes());
            out.push(b'\n');
        }
        out.pop();
    }

    fn auth(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        w(out, format_args!("level={} ts=", sev.lower()));
        self.clock.rfc3339_ms(out);
        let client = self.t.oauth_clients.pick(&mut self.rng);
        let grant = self.t.grant_types.pick(&mut self.rng);
        let user = self.t.vocab.user(&mut self.rng);
        let (msg, status, median) = match sev {
            Sev::Debug => ("\"jwks cache refreshed\" keys=3", "200", 2.0),
            Sev::Info => ("\"token issued\"", "200", 4.0),
            Sev::Warn => (
                [
                    "\"invalid credentials\"",
                    "\"refresh token expired\"",
                    "\"too many login attempts\"",
                ][self.rng.random_range(0..3)],
                "401",
                6.0,
            ),
            Sev::Error => (
                "\"jwks fetch failed\" err=\"dial tcp 10.96.0.42:443: i/o timeout\"",
                "500",
                900.0,
            ),
        };
        w(
            out,
            format_args!(
                " caller=token.go:{} msg={msg} client_id={client} grant_type={grant} user_id=u-{user} path=/oauth/token status={status} duration=",
                self.rng.random_range(60..120)
            ),
        );
        let d = self.latency_ms(median, burst);
        go_duration_ms(out, d);
    }

    fn worker(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        out.extend_from_slice(b"time=\"");
        self.clock.rfc3339_ms(out);
        let job = self.t.jobs.pick(&mut self.rng);
        let queue = self.t.queues.pick(&mut self.rng);
        w(
            out,
            format_args!(
                "\" level={} ",
                if sev == Sev::Warn {
                    "warning"
                } else {
                    sev.lower()
                }
            ),
        );
        match sev {
            Sev::Debug => w(
                out,
                format_args!(
                    "msg=\"polling queue\" queue={queue} depth={}",
                    self.rng.random_range(0..400)
                ),
            ),
            Sev::Info => {
                let d = self.latency_ms(800.0, false) / 1000.0;
                w(out, format_args!("msg=\"job completed\" job={job} job_id="));
                self.uuid(out);
                w(
                    out,
                    format_args!(" queue={queue} attempt=1 duration={d:.3}s"),
                );
            }
            Sev::Warn | Sev::Error => {
                let err = self.t.job_errors.pick(&mut self.rng);
                w(out, format_args!("msg=\"job failed\" job={job} job_id="));
                self.uuid(out);
                let attempt = self.rng.random_range(1..6);
                w(
                    out,
                    format_args!(
                        " queue={queue} attempt={attempt} error=\"{err}\" retry_in={}s",
                        attempt * 30
                    ),
                );
            }
        }
    }

    // ---------------------------------------------------------------- JSON services

    fn checkout(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        out.extend_from_slice(b"{\"time\":\"");
        self.clock.rfc3339_us(out);
        w(
            out,
            format_args!(
                "\",\"level\":\"{}\",\"logger\":\"checkout.http\",",
                sev.lower()
            ),
        );
        if sev == Sev::Debug {
            w(
                out,
                format_args!(
                    "\"msg\":\"cart recalculated\",\"cart\":{{\"items\":{},\"subtotal\":{:.2}}}}}",
                    self.rng.random_range(1..9),
                    self.rng.random_range(5.0..400.0)
                ),
            );
            return;
        }
        let msg = match sev {
            Sev::Error => "payment authorization failed",
            Sev::Warn => "inventory reservation retried",
            _ => [
                "order placed",
                "request completed",
                "request completed",
                "shipping quote computed",
            ][self.rng.random_range(0..4)],
        };
        w(out, format_args!("\"msg\":\"{msg}\",\"trace_id\":\""));
        self.hex(out, 32);
        out.extend_from_slice(b"\",\"span_id\":\"");
        self.hex(out, 16);
        let status = match sev {
            Sev::Error => ["502", "500", "503"][self.rng.random_range(0..3)],
            _ => {
                if msg == "order placed" {
                    "201"
                } else {
                    self.status(false)
                }
            }
        };
        let method = if msg == "order placed" {
            "POST"
        } else {
            self.t.methods.pick(&mut self.rng)
        };
        let path = if msg == "order placed" {
            "/api/v1/checkout"
        } else {
            [
                "/api/v1/checkout",
                "/api/v1/cart",
                "/api/v1/checkout/shipping",
                "/api/v1/checkout/summary",
            ][self.rng.random_range(0..4)]
        };
        let lat = self.latency_ms(45.0, burst);
        let (user, ip) = self.user_and_ip();
        w(
            out,
            format_args!(
                "\",\"http\":{{\"method\":\"{method}\",\"path\":\"{path}\",\"status\":{status},\"latency_ms\":{lat:.3}}},\"user\":{{\"id\":\"u-{user}\",\"ip\":\""
            ),
        );
        Self::ip(out, ip);
        out.extend_from_slice(b"\"}");
        if msg == "order placed" {
            let cur = self.t.currencies.pick(&mut self.rng);
            out.extend_from_slice(b",\"order\":{\"id\":\"ord-");
            self.hex(out, 12);
            w(
                out,
                format_args!(
                    "\",\"items\":{},\"total\":{:.2},\"currency\":\"{cur}\"}}",
                    self.rng.random_range(1..9),
                    self.rng.random_range(5.0..900.0)
                ),
            );
        }
        if sev == Sev::Error {
            let err = [
                "payments: 503 Service Unavailable",
                "payments: context deadline exceeded",
                "payments: upstream connect error or disconnect/reset before headers",
            ][self.rng.random_range(0..3)];
            w(
                out,
                format_args!(",\"error\":{{\"type\":\"UpstreamError\",\"message\":\"{err}\"}}"),
            );
        }
        out.push(b'}');
    }

    fn payments(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        out.extend_from_slice(b"{\"ts\":");
        self.clock.epoch_ms(out);
        let provider = self.t.providers.pick(&mut self.rng);
        w(
            out,
            format_args!(",\"level\":\"{}\",\"service\":\"payments\",", sev.lower()),
        );
        let msg = match sev {
            Sev::Debug => "provider health check",
            Sev::Info => "charge succeeded",
            Sev::Warn => "charge declined",
            Sev::Error => "provider request failed",
        };
        w(out, format_args!("\"msg\":\"{msg}\",\"trace_id\":\""));
        self.hex(out, 32);
        out.extend_from_slice(b"\",\"payment\":{\"id\":\"pay_");
        self.hex(out, 24);
        let cur = self.t.currencies.pick(&mut self.rng);
        let brand = self.t.card_brands.pick(&mut self.rng);
        w(
            out,
            format_args!(
                "\",\"provider\":\"{provider}\",\"amount\":{:.2},\"currency\":\"{cur}\",\"method\":\"card\",\"card\":{{\"brand\":\"{brand}\",\"last4\":\"{:04}\"}}",
                self.rng.random_range(1.0..900.0),
                self.rng.random_range(0..10_000)
            ),
        );
        match sev {
            Sev::Warn => w(
                out,
                format_args!(
                    ",\"status\":\"declined\",\"decline_code\":\"{}\"",
                    self.t.decline_reasons.pick(&mut self.rng)
                ),
            ),
            Sev::Error => w(
                out,
                format_args!(
                    ",\"status\":\"error\",\"error\":{{\"type\":\"TimeoutError\",\"message\":\"{provider} did not answer within 10s\"}}"
                ),
            ),
            _ => out.extend_from_slice(b",\"status\":\"succeeded\""),
        }
        let user = self.t.vocab.user(&mut self.rng);
        let country = self.t.countries.pick(&mut self.rng);
        let lat = self.latency_ms(230.0, burst);
        w(
            out,
            format_args!(
                "}},\"customer\":{{\"id\":\"u-{user}\",\"country\":\"{country}\"}},\"latency_ms\":{lat:.0}}}"
            ),
        );
    }

    fn search(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        out.extend_from_slice(b"{\"@timestamp\":\"");
        self.clock.rfc3339_ms(out);
        w(
            out,
            format_args!(
                "\",\"log.level\":\"{}\",\"service.name\":\"search\",",
                sev.lower()
            ),
        );
        let (msg, median) = match sev {
            Sev::Error => ("query failed: shard unavailable", 2000.0),
            Sev::Warn => ("slow query", 1200.0),
            _ => ("query executed", 12.0),
        };
        w(
            out,
            format_args!("\"message\":\"{msg}\",\"query\":{{\"text\":\""),
        );
        let n = self.rng.random_range(1..5);
        self.t.vocab.words(&mut self.rng, out, n, b' ');
        let cat = self.t.categories.pick(&mut self.rng);
        let took = self.latency_ms(median, burst);
        w(
            out,
            format_args!(
                "\",\"filters\":{{\"category\":\"{cat}\",\"in_stock\":{}}},\"hits\":{},\"took_ms\":{took:.0}}},\"shard\":{},\"trace.id\":\"",
                self.rng.random_bool(0.7),
                self.rng.random_range(0..5_000),
                self.rng.random_range(0..12)
            ),
        );
        self.hex(out, 32);
        out.extend_from_slice(b"\"}");
    }

    // ---------------------------------------------------------------- plain text

    fn spring(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        self.clock.spaced_ms(out, '.');
        let level = match sev {
            Sev::Debug => "DEBUG",
            Sev::Info => " INFO",
            Sev::Warn => " WARN",
            Sev::Error => "ERROR",
        };
        let thread = self.t.java_threads.pick(&mut self.rng);
        let class = self.t.java_classes.pick(&mut self.rng);
        w(
            out,
            format_args!(" {level} 1 --- [{thread:>15.15}] {class:<40.40} : "),
        );
        match sev {
            Sev::Debug => w(
                out,
                format_args!(
                    "Fetched stock for SKU-{:06} from cache",
                    self.t.vocab.word_rank(&mut self.rng)
                ),
            ),
            Sev::Info => {
                let wh = self.t.warehouses.pick(&mut self.rng);
                w(
                    out,
                    format_args!(
                        "Reserved {} units of SKU-{:06} for order ord-",
                        self.rng.random_range(1..6),
                        self.t.vocab.word_rank(&mut self.rng)
                    ),
                );
                self.hex(out, 12);
                w(out, format_args!(" (warehouse={wh})"));
            }
            Sev::Warn => w(
                out,
                format_args!(
                    "HikariPool-1 - Connection is not available, request timed out after {}ms (total=20, active=20, idle=0, waiting={})",
                    self.rng.random_range(3000..30_000),
                    self.rng.random_range(1..40)
                ),
            ),
            Sev::Error => {
                let exc = self.t.java_exceptions.pick(&mut self.rng);
                w(
                    out,
                    format_args!(
                        "Servlet.service() for servlet [dispatcherServlet] threw exception\n{exc}"
                    ),
                );
                let frames = self.rng.random_range(6..16);
                for _ in 0..frames {
                    out.extend_from_slice(b"\n\tat ");
                    out.extend_from_slice(self.t.java_frames.pick(&mut self.rng).as_bytes());
                }
                if self.rng.random_bool(0.5) {
                    w(
                        out,
                        format_args!(
                            "\nCaused by: java.net.SocketTimeoutException: Read timed out\n\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:278)\n\t... {} common frames omitted",
                            self.rng.random_range(20..80)
                        ),
                    );
                }
            }
        }
    }

    fn jvm_gc(&mut self, out: &mut Vec<u8>) {
        out.push(b'[');
        self.clock.rfc3339_ms(out);
        let before = self.rng.random_range(300..900);
        let after = self.rng.random_range(60..before / 2);
        let pause = self.latency_ms(9.0, false);
        w(
            out,
            format_args!(
                "][{:.3}s][info][gc] GC({}) Pause Young (Normal) (G1 Evacuation Pause) {before}M->{after}M(1024M) {pause:.3}ms",
                self.clock.uptime,
                (self.clock.uptime / 7.0) as u64
            ),
        );
    }

    fn python(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        self.clock.spaced_ms(out, ',');
        let logger = self.t.py_loggers.pick(&mut self.rng);
        let level = match sev {
            Sev::Debug => "DEBUG",
            Sev::Info => "INFO",
            Sev::Warn => "WARNING",
            Sev::Error => "ERROR",
        };
        w(out, format_args!(" {level} [{logger}] "));
        let tpl = self.t.templates.pick(&mut self.rng);
        let user = self.t.vocab.user(&mut self.rng);
        match sev {
            Sev::Debug => w(out, format_args!("Rendering template {tpl} for u-{user}")),
            Sev::Info => {
                w(
                    out,
                    format_args!("Sent email template={tpl} to=u-{user} provider=ses subject=\""),
                );
                let n = self.rng.random_range(2..6);
                self.t.vocab.words(&mut self.rng, out, n, b' ');
                w(
                    out,
                    format_args!(
                        "\" latency={:.3}s message_id=",
                        self.latency_ms(120.0, false) / 1000.0
                    ),
                );
                self.uuid(out);
            }
            Sev::Warn => w(
                out,
                format_args!(
                    "Retrying task notifications.send_email[{}] in {}s",
                    self.rng.random_range(10_000..99_999),
                    self.rng.random_range(5..120)
                ),
            ),
            Sev::Error => {
                let exc = self.t.py_exceptions.pick(&mut self.rng);
                w(
                    out,
                    format_args!(
                        "Task notifications.send_email failed for template={tpl} user=u-{user}\nTraceback (most recent call last):\n  File \"/app/notifications/sender.py\", line {}, in send\n    resp = self.client.send(message, timeout=5)\n  File \"/usr/local/lib/python3.12/site-packages/notifications/client.py\", line 211, in send\n    return self._post(\"/v1/send\", payload)\n{exc}",
                        self.rng.random_range(40..160)
                    ),
                );
            }
        }
    }

    fn gunicorn(&mut self, out: &mut Vec<u8>, burst: bool) {
        let ip = self.pod_ip();
        Self::ip(out, ip);
        out.extend_from_slice(b" - - [");
        self.clock.nginx_local(out);
        let status = if burst && self.rng.random_bool(0.5) {
            "500"
        } else {
            "202"
        };
        w(
            out,
            format_args!(
                "] \"POST /v1/notify HTTP/1.1\" {status} {} \"-\" \"python-requests/2.32.3\"",
                self.rng.random_range(15..40)
            ),
        );
    }

    fn postgres(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        self.clock.spaced_ms(out, '.');
        let pid = self.rng.random_range(100..40_000);
        w(out, format_args!(" UTC [{pid}] "));
        let table = self.t.pg_tables.pick(&mut self.rng);
        match sev {
            Sev::Debug | Sev::Info => {
                if self.rng.random_bool(0.05) {
                    w(
                        out,
                        format_args!(
                            "LOG:  checkpoint complete: wrote {} buffers ({:.1}%); 0 WAL file(s) added, 0 removed, 1 recycled; write={:.3} s, sync={:.3} s, total={:.3} s",
                            self.rng.random_range(100..9000),
                            self.rng.random_range(0.5..30.0),
                            self.rng.random_range(1.0..30.0),
                            self.rng.random_range(0.001..0.2),
                            self.rng.random_range(1.0..30.0)
                        ),
                    );
                } else {
                    let d = self.latency_ms(8.0, burst);
                    w(
                        out,
                        format_args!(
                            "LOG:  duration: {d:.3} ms  statement: SELECT id, user_id, status, total, created_at FROM {table} WHERE user_id = {} ORDER BY created_at DESC LIMIT {}",
                            self.t.vocab.user(&mut self.rng),
                            [10, 20, 50][self.rng.random_range(0..3)]
                        ),
                    );
                }
            }
            Sev::Warn => w(
                out,
                format_args!(
                    "LOG:  duration: {:.3} ms  statement: UPDATE {table} SET status = 'shipped', updated_at = now() WHERE id = {}",
                    self.latency_ms(1500.0, true),
                    self.rng.random_range(1..9_000_000)
                ),
            ),
            Sev::Error => {
                let err = self.t.pg_errors.pick(&mut self.rng);
                w(
                    out,
                    format_args!(
                        "ERROR:  {err}\n{} UTC [{pid}] STATEMENT:  INSERT INTO {table} (order_id, sku, qty) VALUES ({}, 'SKU-{:06}', {})",
                        String::from_utf8_lossy(&self.stamp_spaced()),
                        self.rng.random_range(1..9_000_000),
                        self.t.vocab.word_rank(&mut self.rng),
                        self.rng.random_range(1..5)
                    ),
                );
            }
        }
    }

    fn stamp_spaced(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24);
        self.clock.spaced_ms(&mut v, '.');
        v
    }

    fn redis(&mut self, out: &mut Vec<u8>) {
        w(
            out,
            format_args!(
                "1:{} ",
                if self.pod.name.ends_with("-0") {
                    'M'
                } else {
                    'S'
                }
            ),
        );
        self.clock.redis(out);
        out.push(b' ');
        let ev = self.t.redis_events.pick(&mut self.rng);
        self.fill(out, ev);
    }

    fn coredns(&mut self, out: &mut Vec<u8>, burst: bool) {
        if burst || !self.primary {
            let name = self.t.dns_external.pick(&mut self.rng);
            w(
                out,
                format_args!(
                    "[ERROR] plugin/errors: 2 {name} A: read udp {}.{}.{}.{}:{}->10.0.0.2:53: i/o timeout",
                    self.pod.ip[0],
                    self.pod.ip[1],
                    self.pod.ip[2],
                    self.pod.ip[3],
                    self.rng.random_range(30_000..61_000)
                ),
            );
            return;
        }
        let client = self.pod_ip();
        out.extend_from_slice(b"[INFO] ");
        Self::ip(out, client);
        let qtype = self.t.qtypes.pick(&mut self.rng);
        let (name, rcode) = if self.rng.random_bool(0.3) {
            // Search-path expansion of an external name: NXDOMAIN, the bulk of real DNS noise.
            (
                format!(
                    "{}prod.svc.cluster.local.",
                    self.t.dns_external.pick(&mut self.rng)
                ),
                "NXDOMAIN",
            )
        } else {
            (self.t.dns_names.pick(&mut self.rng).to_string(), "NOERROR")
        };
        let size = 40 + name.len();
        w(
            out,
            format_args!(
                ":{} - {} \"{qtype} IN {name} udp {size} false 512\" {rcode} qr,aa,rd {} {:.6}s",
                self.rng.random_range(30_000..61_000),
                self.rng.random_range(0..65_536),
                size + 60,
                self.latency_ms(0.15, false) / 1000.0
            ),
        );
    }

    fn klog(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        self.clock
            .klog(out, if sev == Sev::Error { 'E' } else { 'I' });
        w(
            out,
            format_args!("       1 proxier.go:{}] ", self.rng.random_range(700..1600)),
        );
        if sev == Sev::Error {
            out.extend_from_slice(b"\"Failed to execute iptables-restore\" err=\"exit status 4: iptables-restore: line 412 failed\"");
        } else {
            let ev = self.t.klog_events.pick(&mut self.rng);
            self.fill(out, ev);
        }
    }

    fn prometheus(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        out.extend_from_slice(b"ts=");
        self.clock.rfc3339_ms(out);
        w(
            out,
            format_args!(
                " caller={} level={} ",
                [
                    "head.go:1423",
                    "compact.go:523",
                    "db.go:1652",
                    "scrape.go:1297",
                    "manager.go:176"
                ][self.rng.random_range(0..5)],
                sev.lower()
            ),
        );
        let ev = self.t.prom_events.pick(&mut self.rng);
        self.fill(out, ev);
    }

    fn grafana(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        let user = self.t.grafana_users.pick(&mut self.rng);
        w(
            out,
            format_args!(
                "logger=context userId={} orgId=1 uname={user} t=",
                user.len()
            ),
        );
        self.clock.rfc3339_ns(out);
        let status = if sev == Sev::Error {
            "500"
        } else {
            self.status(false)
        };
        w(
            out,
            format_args!(
                " level={} msg=\"Request Completed\" method=GET path=",
                sev.lower()
            ),
        );
        let tpl = self.t.grafana_paths.pick(&mut self.rng);
        self.fill(out, tpl);
        let d = self.latency_ms(40.0, burst);
        w(out, format_args!(" status={status} remote_addr="));
        let ip = self.pod_ip();
        Self::ip(out, ip);
        w(out, format_args!(" time_ms={d:.0} duration="));
        go_duration_ms(out, d);
        w(
            out,
            format_args!(
                " size={} referer=https://grafana.example.com/d/",
                self.rng.random_range(100..90_000)
            ),
        );
        self.hex(out, 9);
        out.extend_from_slice(b"/overview handler=/api/ds/query status_source=server");
    }

    fn promtail(&mut self, out: &mut Vec<u8>, burst: bool) {
        let sev = self.sev(burst);
        w(out, format_args!("level={} ts=", sev.lower()));
        self.clock.rfc3339_ms(out);
        match sev {
            Sev::Error | Sev::Warn => w(
                out,
                format_args!(
                    " caller=client.go:430 component=client host=loki:3100 msg=\"error sending batch, will retry\" status=429 tenant= error=\"server returned HTTP status 429 Too Many Requests (429): Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec) while attempting to ingest '{}' lines totaling '{}' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased\"",
                    self.rng.random_range(100..2000),
                    self.rng.random_range(100_000..1_000_000)
                ),
            ),
            _ => {
                let app = APPS[self.rng.random_range(0..APPS.len())].name;
                w(
                    out,
                    format_args!(
                        " caller=filetargetmanager.go:{} msg=\"{}\" key=\"/var/log/pods/prod_{app}-",
                        self.rng.random_range(180..400),
                        if self.rng.random_bool(0.5) {
                            "Adding target"
                        } else {
                            "Removing target"
                        }
                    ),
                );
                self.uuid(out);
                w(
                    out,
                    format_args!("/{app}/*.log:{{app=\\\"{app}\\\", namespace=\\\"prod\\\"}}\""),
                );
            }
        }
    }
}

/// Writes a duration the way Go's `time.Duration.String()` does for the range logged here:
/// `12.345ms` below a second, `1.234s` above.
fn go_duration_ms(out: &mut Vec<u8>, ms: f64) {
    if ms >= 1000.0 {
        w(out, format_args!("{:.3}s", ms / 1000.0));
    } else {
        w(out, format_args!("{ms:.3}ms"));
    }
}

/// Puts a needle string into a finished line: as an extra field in JSON (so the line stays valid
/// JSON), otherwise as a trailing `request_id=` field.
fn place_needle(out: &mut Vec<u8>, needle: &str) {
    if out.first() == Some(&b'{') && out.last() == Some(&b'}') {
        out.pop();
        w(out, format_args!(",\"request_id\":\"{needle}\"}}"));
    } else {
        w(out, format_args!(" request_id={needle}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::topology::{self, StdStream};
    use rand::SeedableRng;

    #[test]
    fn every_app_and_stream_renders_plausible_lines() {
        let t = Tables::new();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let cluster = topology::build(200, &mut rng);
        let origin = 1_795_168_800_000_000_000;
        let mut out = Vec::new();
        for s in &cluster.streams {
            let pod = &cluster.pods[s.pod];
            let mut g = LineGen::new(
                &t,
                ChaCha8Rng::seed_from_u64(9),
                pod,
                s.kind,
                cluster.nodes,
                origin,
            );
            for i in 0..200 {
                let burst = i % 3 == 0;
                g.line(&mut out, origin + i * 1_000_000_000, burst, None);
                let text = std::str::from_utf8(&out).expect("utf-8");
                assert!(!text.is_empty());
                assert!(
                    !text.contains('{') || !text.contains("{id}"),
                    "placeholders expanded: {text}"
                );
                if text.starts_with('{') {
                    let v: serde_json::Value =
                        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
                    assert!(v.is_object());
                }
                if APPS[pod.app].app == App::ApiGateway
                    && s.kind == StdStream::Stdout
                    && !text.starts_with("panic")
                {
                    assert!(text.starts_with("ts=2026-11-20T10:"), "{text}");
                }
            }
        }
    }

    #[test]
    fn needles_keep_json_valid() {
        let mut line = br#"{"a":1}"#.to_vec();
        place_needle(&mut line, "NEEDLE-1");
        assert_eq!(line, br#"{"a":1,"request_id":"NEEDLE-1"}"#);
        let mut line = b"level=info msg=x".to_vec();
        place_needle(&mut line, "NEEDLE-1");
        assert_eq!(line, b"level=info msg=x request_id=NEEDLE-1");
    }

    #[test]
    fn go_durations() {
        let mut o = Vec::new();
        go_duration_ms(&mut o, 12.3456);
        o.push(b' ');
        go_duration_ms(&mut o, 1534.0);
        assert_eq!(o, b"12.346ms 1.534s");
    }
}
