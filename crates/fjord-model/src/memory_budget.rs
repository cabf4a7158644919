//! A byte budget that concurrent work draws on as it learns how much memory it needs, and gives
//! back when it is done: the bound on the memory of pushes in flight, and on the series metric
//! queries in flight hold.
//!
//! Each piece of work holds a [`Reservation`], which starts empty and grows step by step. A step
//! is taken *before* the memory it stands for is allocated, so the budget bounds the peak and
//! not merely the total after the fact. A step that would take the budget past its limit fails
//! at once rather than waiting, and the caller refuses the work: a push or query gets 429, which
//! clients retry with backoff. Work that alone needs more than the whole limit can never
//! succeed, and the error says so ([`OverBudget::Never`]: 413 for a push, 400 for a query).
//! Dropping the reservation gives its bytes back.
//!
//! Work done in parts, like a query whose workers each build a partial result, takes a
//! [`WorkBudget`]: each part's [`PartReservation`] counts against the work's own total as well
//! as the shared budget, so the parts together needing more than the whole limit is told apart
//! from other work holding it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// A shared limit on the bytes that live reservations hold together.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    in_use: AtomicU64,
    refused: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes; `u64::MAX` never refuses.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            in_use: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// An empty reservation on this budget.
    pub fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: 0,
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes the live reservations hold.
    pub fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Relaxed)
    }

    /// How many steps were refused since the budget was made.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn refuse(&self, error: OverBudget) -> Result<(), OverBudget> {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(error)
    }

    /// Registers in `registry` gauges of the bytes held and the limit, and a counter of
    /// refusals, under `names`; they are read on each scrape.
    pub fn register_metrics(self: &Arc<Self>, registry: &mut Registry, names: BudgetMetricNames) {
        registry.register_collector(Box::new(BudgetCollector {
            budget: self.clone(),
            names,
        }));
    }
}

/// Names and help texts of a budget's metrics, each a `(name, help)` pair.
#[derive(Debug, Clone, Copy)]
pub struct BudgetMetricNames {
    pub in_use: (&'static str, &'static str),
    pub limit: (&'static str, &'static str),
    /// A counter: its name is exposed with `_total`.
    pub refused: (&'static str, &'static str),
}

#[derive(Debug)]
struct BudgetCollector {
    budget: Arc<MemoryBudget>,
    names: BudgetMetricNames,
}

impl Collector for BudgetCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (budget, names) = (&*self.budget, &self.names);
        for ((name, help), value) in [
            (names.in_use, budget.in_use()),
            (names.limit, budget.limit()),
        ] {
            let gauge = ConstGauge::new(value as f64);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let refused = ConstCounter::new(budget.refused());
        let (name, help) = names.refused;
        refused.encode(encoder.encode_descriptor(name, help, None, refused.metric_type())?)
    }
}

/// Why a reservation could not grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    /// The work alone needs more than the whole budget.
    #[error("needs at least {needed} bytes of memory, more than the whole limit of {limit} bytes")]
    Never { needed: u64, limit: u64 },
    /// Other work holds too much of the budget right now.
    #[error(
        "needs at least {needed} bytes of memory, but only {free} of the limit of {limit} bytes are free"
    )]
    Busy { needed: u64, free: u64, limit: u64 },
}

/// Bytes held on a [`MemoryBudget`] for one piece of work, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Reservation {
    /// A reservation on a budget of its own without a limit: for decoding where nothing
    /// competes for memory (tools, tests).
    pub fn unbounded() -> Self {
        MemoryBudget::new(u64::MAX).reservation()
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Holds `more` bytes besides those already held, if the budget has them free.
    pub fn grow(&mut self, more: u64) -> Result<(), OverBudget> {
        let budget = &*self.budget;
        let needed = self.bytes.saturating_add(more);
        if needed > budget.limit {
            return budget.refuse(OverBudget::Never {
                needed,
                limit: budget.limit,
            });
        }
        let taken = budget
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_use| {
                in_use
                    .checked_add(more)
                    .filter(|&after| after <= budget.limit)
            });
        match taken {
            Ok(_) => {
                self.bytes = needed;
                Ok(())
            }
            Err(in_use) => budget.refuse(OverBudget::Busy {
                needed,
                // What this reservation already holds counts as free to it.
                free: (budget.limit - in_use.min(budget.limit)).saturating_add(self.bytes),
                limit: budget.limit,
            }),
        }
    }

    /// Makes room in `buf` for `additional` more bytes as a vector grows, to twice its capacity
    /// (but not past `max_capacity` unless more is needed), charging the new capacity before it
    /// is allocated.
    pub fn reserve_in(
        &mut self,
        buf: &mut Vec<u8>,
        additional: usize,
        max_capacity: usize,
    ) -> Result<(), OverBudget> {
        let needed = buf.len().saturating_add(additional);
        if needed <= buf.capacity() {
            return Ok(());
        }
        let capacity = buf
            .capacity()
            .saturating_mul(2)
            .min(max_capacity)
            .max(needed);
        self.grow((capacity - buf.capacity()) as u64)?;
        buf.reserve_exact(capacity - buf.len());
        Ok(())
    }

    /// Gives back what is held beyond `bytes`, once the work knows it needs less than it took.
    pub fn shrink_to(&mut self, bytes: u64) {
        if bytes < self.bytes {
            self.budget
                .in_use
                .fetch_sub(self.bytes - bytes, Ordering::AcqRel);
            self.bytes = bytes;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.shrink_to(0);
    }
}

/// One piece of work done in parts, such as a query whose workers each hold a partial result,
/// drawing on a shared budget. Its parts' reservations ([`PartReservation`]) count against
/// both the work's own total and the shared budget, so the error tells the two cases apart:
/// the parts together need more than the whole limit ([`OverBudget::Never`]), or other work
/// holds too much of it right now ([`OverBudget::Busy`]).
#[derive(Debug, Clone)]
pub struct WorkBudget {
    own: Arc<MemoryBudget>,
    shared: Arc<MemoryBudget>,
}

impl MemoryBudget {
    /// A budget for one piece of work done in parts, drawing on this one.
    pub fn work(self: &Arc<Self>) -> WorkBudget {
        WorkBudget {
            own: MemoryBudget::new(self.limit),
            shared: self.clone(),
        }
    }
}

impl WorkBudget {
    /// An empty reservation for one part of the work.
    pub fn reservation(&self) -> PartReservation {
        PartReservation {
            own: self.own.reservation(),
            shared: self.shared.reservation(),
        }
    }
}

/// Bytes one part of a [`WorkBudget`]'s work holds, given back when dropped.
#[derive(Debug)]
pub struct PartReservation {
    own: Reservation,
    shared: Reservation,
}

impl PartReservation {
    /// A reservation on a budget of its own without a limit (tools, tests).
    pub fn unbounded() -> Self {
        MemoryBudget::new(u64::MAX).work().reservation()
    }

    /// Holds `more` bytes besides those already held, if the work's parts together stay within
    /// the limit and the shared budget has them free.
    pub fn grow(&mut self, more: u64) -> Result<(), OverBudget> {
        let held = self.own.bytes();
        if let Err(e) = self.own.grow(more) {
            // The work's own budget holds only its parts: it is full when they are.
            let own = &self.own.budget;
            // Counted as the shared budget's refusal: that is the one metrics show.
            return self.shared.budget.refuse(match e {
                OverBudget::Busy { limit, .. } => OverBudget::Never {
                    needed: own.in_use().saturating_add(more),
                    limit,
                },
                never => never,
            });
        }
        self.shared
            .grow(more)
            .inspect_err(|_| self.own.shrink_to(held))
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.own.bytes()
    }

    /// Gives back `less` of the bytes held, once the part knows it needs less than it took.
    pub fn shrink_by(&mut self, less: u64) {
        let bytes = self.own.bytes().saturating_sub(less);
        self.own.shrink_to(bytes);
        self.shared.shrink_to(bytes);
    }

    /// Takes over what `other`, a part of the same work, holds, as its results move to this
    /// part: the bytes stay held, on neither budget counted twice.
    ///
    /// # Panics
    /// If `other` is a part of other work.
    pub fn absorb(&mut self, mut other: PartReservation) {
        assert!(
            Arc::ptr_eq(&self.own.budget, &other.own.budget),
            "a reservation absorbs only parts of its own work"
        );
        self.own.bytes += std::mem::take(&mut other.own.bytes);
        self.shared.bytes += std::mem::take(&mut other.shared.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_limit_and_give_back_on_drop() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.reservation();
        a.grow(60).unwrap();
        let mut b = budget.reservation();
        assert_eq!(
            b.grow(50),
            Err(OverBudget::Busy {
                needed: 50,
                free: 40,
                limit: 100
            })
        );
        b.grow(40).unwrap();
        assert_eq!(budget.in_use(), 100);
        drop(a);
        assert_eq!(budget.in_use(), 40);
        b.grow(50).unwrap();
        assert_eq!((b.bytes(), budget.in_use(), budget.refused()), (90, 90, 1));
        b.shrink_to(10);
        assert_eq!(budget.in_use(), 10);
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn work_larger_than_the_whole_limit_is_told_it_never_fits() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.reservation();
        a.grow(70).unwrap();
        assert_eq!(
            a.grow(31),
            Err(OverBudget::Never {
                needed: 101,
                limit: 100
            })
        );
        assert_eq!(
            a.grow(u64::MAX),
            Err(OverBudget::Never {
                needed: u64::MAX,
                limit: 100
            })
        );
        // A refused step holds nothing more.
        assert_eq!((a.bytes(), budget.in_use(), budget.refused()), (70, 70, 2));
    }

    #[test]
    fn buffers_grow_by_doubling_up_to_their_cap_and_are_charged_first() {
        let budget = MemoryBudget::new(100);
        let mut r = budget.reservation();
        let mut buf = Vec::new();
        r.reserve_in(&mut buf, 10, 100).unwrap();
        buf.extend_from_slice(&[0; 10]);
        assert_eq!((buf.capacity(), r.bytes()), (10, 10));
        r.reserve_in(&mut buf, 1, 100).unwrap();
        assert_eq!((buf.capacity(), r.bytes()), (20, 20));
        buf.extend_from_slice(&[0; 10]);
        // Doubling would pass the cap of 30; what is needed fits under it.
        r.reserve_in(&mut buf, 5, 30).unwrap();
        assert_eq!((buf.capacity(), r.bytes()), (30, 30));
        // Room already there costs nothing.
        r.reserve_in(&mut buf, 10, 30).unwrap();
        assert_eq!(r.bytes(), 30);
        // A refused step allocates nothing.
        assert!(r.reserve_in(&mut buf, 100, 1000).is_err());
        assert_eq!((buf.capacity(), r.bytes()), (30, 30));
    }

    #[test]
    fn an_unlimited_budget_counts_without_refusing() {
        let budget = MemoryBudget::new(u64::MAX);
        let mut a = budget.reservation();
        a.grow(u64::MAX - 1).unwrap();
        assert_eq!(budget.in_use(), u64::MAX - 1);
        let mut b = budget.reservation();
        assert!(matches!(b.grow(2), Err(OverBudget::Busy { .. })));
        b.grow(1).unwrap();
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let budget = MemoryBudget::new(1000);
        let peak = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        let mut r = budget.reservation();
                        if r.grow(300).is_ok() {
                            peak.fetch_max(budget.in_use(), Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 1000);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn parts_of_one_work_are_told_apart_from_other_work() {
        let shared = MemoryBudget::new(100);
        let query = shared.work();
        let (mut a, mut b) = (query.reservation(), query.reservation());
        a.grow(40).unwrap();
        b.grow(40).unwrap();
        // The parts together would pass the limit: this work never fits, whatever else runs.
        assert_eq!(
            b.grow(30),
            Err(OverBudget::Never {
                needed: 110,
                limit: 100
            })
        );
        assert_eq!(
            (shared.in_use(), b.own.bytes(), shared.refused()),
            (80, 40, 1)
        );
        // Other work holding the rest makes it wait instead.
        let mut other = shared.reservation();
        other.grow(15).unwrap();
        assert!(matches!(b.grow(10), Err(OverBudget::Busy { .. })));
        assert_eq!((shared.in_use(), query.own.in_use()), (95, 80));
        drop(other);
        b.grow(10).unwrap();
        drop((a, b));
        assert_eq!((shared.in_use(), query.own.in_use()), (0, 0));
    }

    #[test]
    fn a_part_absorbing_another_holds_its_bytes_once_until_it_gives_them_back() {
        let shared = MemoryBudget::new(100);
        let query = shared.work();
        let (mut a, mut b) = (query.reservation(), query.reservation());
        a.grow(30).unwrap();
        b.grow(20).unwrap();
        a.absorb(b);
        assert_eq!(
            (a.bytes(), shared.in_use(), query.own.in_use()),
            (50, 50, 50)
        );
        a.shrink_by(15);
        assert_eq!(
            (a.bytes(), shared.in_use(), query.own.in_use()),
            (35, 35, 35)
        );
        a.shrink_by(1000);
        assert_eq!((a.bytes(), shared.in_use()), (0, 0));
        a.grow(60).unwrap();
        drop(a);
        assert_eq!((shared.in_use(), query.own.in_use()), (0, 0));
    }

    #[test]
    #[should_panic(expected = "a reservation absorbs only parts of its own work")]
    fn a_part_of_other_work_is_not_absorbed() {
        let shared = MemoryBudget::new(100);
        let mut a = shared.work().reservation();
        a.absorb(shared.work().reservation());
    }
}
