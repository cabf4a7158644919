//! The target manager: turns discovered label sets into tailed files.
//!
//! For every job it keeps the latest target groups of each discovery provider. On every change
//! — a discovery update, a file-system event under a watched directory, or the
//! `target_config.sync_period` timer — it relabels each target (dropping those a rule drops or
//! that have no `__path__`), expands `__path__` minus `__path_exclude__`, and reconciles the
//! running tailers with the resulting files: new files get a tailer, files no longer wanted
//! are drained and let go. A file's stream labels are the target's labels without those
//! starting with `__`, plus `filename`.
//!
//! It also keeps the summary served at `/targets` and the readiness answer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::{Notify, mpsc, watch};

use crate::discovery::{Group, Update};
use crate::glob::Glob;
use crate::metrics::Metrics;
use crate::positions::Positions;
use crate::relabel::{LabelMap, Relabeler};
use crate::stages::Entry;
use crate::tail::{self, StopMode, TailerArgs};

/// How many tailers may hold read lines at once (see [`TailerArgs::read_slots`]).
const READ_SLOTS: usize = 32;

/// One job as the target manager sees it.
pub struct JobSpec {
    pub name: String,
    pub relabeler: Relabeler,
    /// The job's pipeline input.
    pub out: mpsc::Sender<Vec<Entry>>,
}

/// A target after relabeling, as `/targets` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub labels: BTreeMap<String, String>,
    pub discovered_labels: BTreeMap<String, String>,
    pub path: String,
    pub exclude: Option<String>,
    pub files: Vec<String>,
    pub ready: bool,
}

/// One job's targets, as `/targets` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct JobInfo {
    pub job: String,
    pub active: Vec<TargetInfo>,
    /// Discovered targets that relabeling dropped or that had no `__path__`.
    pub dropped: usize,
}

/// State shared with the HTTP server.
#[derive(Debug, Default)]
pub struct TargetsView {
    pub jobs: RwLock<Vec<JobInfo>>,
}

impl TargetsView {
    /// Ready when at least one file is being tailed (Promtail's readiness rule).
    pub fn ready(&self) -> bool {
        self.jobs
            .read()
            .iter()
            .any(|j| j.active.iter().any(|t| t.ready))
    }
}

struct Tailer {
    stop: watch::Sender<StopMode>,
    handle: tokio::task::JoinHandle<()>,
    labels: LabelMap,
}

struct Job {
    spec: JobSpec,
    groups: HashMap<String, HashMap<String, Group>>,
    tailers: HashMap<PathBuf, Tailer>,
}

/// Settings for tailers.
#[derive(Debug, Clone)]
pub struct TailSettings {
    pub poll: Duration,
    pub sync_period: Duration,
    pub max_line_size: usize,
    pub truncate_long_lines: bool,
}

/// Runs the target manager until `shutdown` turns true; then stops every tailer at once and
/// waits for them.
pub async fn run(
    specs: Vec<JobSpec>,
    mut updates: mpsc::Receiver<Update>,
    positions: Arc<Positions>,
    metrics: Arc<Metrics>,
    view: Arc<TargetsView>,
    settings: TailSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let rescan = Arc::new(Notify::new());
    let wakers: Arc<Mutex<HashMap<PathBuf, Arc<Notify>>>> = Arc::default();
    let mut fs = FsWatch::new(rescan.clone(), wakers.clone());
    let read_slots = Arc::new(tokio::sync::Semaphore::new(READ_SLOTS));
    let mut jobs: Vec<Job> = specs
        .into_iter()
        .map(|spec| Job {
            spec,
            groups: HashMap::new(),
            tailers: HashMap::new(),
        })
        .collect();
    let mut ticker = tokio::time::interval(settings.sync_period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            u = updates.recv() => {
                match u {
                    Some(u) => apply(&mut jobs, u),
                    None => {
                        // Discovery ended (static configs only): keep syncing on timers.
                        updates = mpsc::channel(1).1;
                    }
                }
                // Take every queued update before syncing.
                while let Ok(u) = updates.try_recv() {
                    apply(&mut jobs, u);
                }
            }
            _ = rescan.notified() => {
                // File events come in bursts; let the burst finish.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ = ticker.tick() => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            break;
        }
        sync(
            &mut jobs,
            &positions,
            &metrics,
            &view,
            &settings,
            &wakers,
            &mut fs,
            &read_slots,
        );
    }
    let mut handles = Vec::new();
    for job in &mut jobs {
        for (_, t) in job.tailers.drain() {
            let _ = t.stop.send(StopMode::Now);
            handles.push(t.handle);
        }
    }
    for h in handles {
        let _ = h.await;
    }
}

fn apply(jobs: &mut [Job], u: Update) {
    let Some(job) = jobs.get_mut(u.job) else {
        return;
    };
    let provider = job.groups.entry(u.provider).or_default();
    if u.full {
        provider.clear();
    }
    for g in u.groups {
        if g.targets.is_empty() {
            provider.remove(&g.source);
        } else {
            provider.insert(g.source.clone(), g);
        }
    }
}

fn sync(
    jobs: &mut [Job],
    positions: &Arc<Positions>,
    metrics: &Arc<Metrics>,
    view: &TargetsView,
    settings: &TailSettings,
    wakers: &Arc<Mutex<HashMap<PathBuf, Arc<Notify>>>>,
    fs: &mut FsWatch,
    read_slots: &Arc<tokio::sync::Semaphore>,
) {
    let mut infos = Vec::new();
    let mut active_targets = 0i64;
    let mut watch_dirs: HashSet<PathBuf> = HashSet::new();
    let mut wanted_all: HashSet<PathBuf> = HashSet::new();
    for job in jobs.iter_mut() {
        let mut info = JobInfo {
            job: job.spec.name.clone(),
            active: Vec::new(),
            dropped: 0,
        };
        let mut wanted: BTreeMap<PathBuf, LabelMap> = BTreeMap::new();
        let mut seen_targets: HashSet<String> = HashSet::new();
        for group in job.groups.values().flat_map(|p| p.values()) {
            for discovered in &group.targets {
                let Some(labels) = job.spec.relabeler.process(discovered.clone()) else {
                    info.dropped += 1;
                    continue;
                };
                let Some(path) = labels.get("__path__").filter(|p| !p.is_empty()).cloned() else {
                    info.dropped += 1;
                    continue;
                };
                let exclude = labels
                    .get("__path_exclude__")
                    .filter(|p| !p.is_empty())
                    .cloned();
                let public: LabelMap = labels
                    .iter()
                    .filter(|(k, v)| !k.starts_with("__") && !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                // Several discovered targets (ports of one container) can end up identical.
                let mut key = String::new();
                fjord_model::labels::write_label_string(
                    &mut key,
                    public.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
                if !seen_targets.insert(format!("{path}\u{0}{key}")) {
                    continue;
                }
                let glob = match Glob::new(&path) {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::warn!(job = %job.spec.name, path, error = %e, "invalid __path__");
                        continue;
                    }
                };
                let excl = exclude.as_deref().and_then(|x| Glob::new(x).ok());
                watch_dirs.insert(glob.base().to_path_buf());
                let files: Vec<PathBuf> = glob
                    .expand()
                    .into_iter()
                    .filter(|f| !excl.as_ref().is_some_and(|x| x.matches(f)))
                    .collect();
                for f in &files {
                    let mut l = public.clone();
                    l.insert("filename".into(), f.to_string_lossy().into_owned());
                    wanted.entry(f.clone()).or_insert(l);
                }
                active_targets += 1;
                info.active.push(TargetInfo {
                    labels: public.into_iter().collect(),
                    discovered_labels: discovered
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    path,
                    exclude,
                    ready: !files.is_empty(),
                    files: files
                        .iter()
                        .map(|f| f.to_string_lossy().into_owned())
                        .collect(),
                });
            }
        }
        // Reconcile tailers.
        job.tailers.retain(|path, t| {
            if t.handle.is_finished() {
                return false;
            }
            if wanted.get(path) != Some(&t.labels) {
                let _ = t.stop.send(StopMode::Drain);
            }
            true
        });
        for (path, labels) in wanted {
            wanted_all.insert(path.clone());
            if job
                .tailers
                .get(&path)
                .is_some_and(|t| *t.stop.borrow() == StopMode::Running)
            {
                continue;
            }
            if job.tailers.contains_key(&path) {
                // Still draining under old labels; start again once it is done.
                continue;
            }
            let wake = wakers
                .lock()
                .entry(path.clone())
                .or_insert_with(|| Arc::new(Notify::new()))
                .clone();
            let (stop_tx, stop_rx) = watch::channel(StopMode::Running);
            metrics.files_active.inc();
            let handle = tokio::spawn(tail::run(TailerArgs {
                path: path.clone(),
                labels: labels.clone(),
                positions: positions.clone(),
                metrics: metrics.clone(),
                out: job.spec.out.clone(),
                wake,
                poll: settings.poll,
                stop: stop_rx,
                max_line_size: settings.max_line_size,
                truncate_long_lines: settings.truncate_long_lines,
                read_slots: read_slots.clone(),
            }));
            job.tailers.insert(
                path,
                Tailer {
                    stop: stop_tx,
                    handle,
                    labels,
                },
            );
        }
        infos.push(info);
    }
    {
        let live: HashSet<PathBuf> = jobs
            .iter()
            .flat_map(|j| j.tailers.keys().cloned())
            .collect();
        wakers
            .lock()
            .retain(|p, _| live.contains(p) || wanted_all.contains(p));
    }
    fs.watch_dirs(watch_dirs);
    metrics.targets_active.set(active_targets);
    *view.jobs.write() = infos;
}

/// File-system notifications (inotify through `notify`): new or removed files trigger a
/// rescan, writes wake the file's tailer. Polling stays the safety net where notifications do
/// not work (network file systems, missing directories).
struct FsWatch {
    watcher: Option<notify::RecommendedWatcher>,
    watched: HashSet<PathBuf>,
}

impl FsWatch {
    fn new(rescan: Arc<Notify>, wakers: Arc<Mutex<HashMap<PathBuf, Arc<Notify>>>>) -> FsWatch {
        let handler = move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            use notify::EventKind;
            match ev.kind {
                EventKind::Create(_)
                | EventKind::Remove(_)
                | EventKind::Modify(notify::event::ModifyKind::Name(_)) => {
                    rescan.notify_one();
                }
                _ => {}
            }
            let w = wakers.lock();
            for p in &ev.paths {
                if let Some(n) = w.get(p) {
                    n.notify_one();
                }
            }
        };
        let watcher = match notify::recommended_watcher(handler) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "file notifications unavailable; polling only");
                None
            }
        };
        FsWatch {
            watcher,
            watched: HashSet::new(),
        }
    }

    fn watch_dirs(&mut self, dirs: HashSet<PathBuf>) {
        let Some(w) = &mut self.watcher else { return };
        for d in &dirs {
            if !self.watched.contains(d)
                && d.is_dir()
                && w.watch(d, notify::RecursiveMode::Recursive).is_ok()
            {
                self.watched.insert(d.clone());
            }
        }
        let gone: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|d| !dirs.contains(*d))
            .cloned()
            .collect();
        for d in gone {
            let _ = w.unwatch(&d);
            self.watched.remove(&d);
        }
    }
}
