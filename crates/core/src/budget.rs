//! A shared bound on how much parsing is in flight at once.
//!
//! A document within the per-document bound ([`DocumentBound`]) can still take a few hundred
//! MiB once parsed (a million tiny JSON numbers become a million 32-byte values, and
//! migrations and comparisons copy them). Commands that work on several documents in parallel
//! (`push --jobs`, `validate` of many files) would multiply that by the number of workers. So
//! each worker first counts the document's values (one pass over the bytes, no value built),
//! then takes that many units from one [`ParseBudget`] shared by all workers, and gives them
//! back when it is done with the document. The default capacity is the per-document bound's
//! value count: any number of small documents are worked on in parallel, a document near the
//! bound alone. A document costing more than the whole capacity is charged the capacity (it
//! waits until nothing else is in flight), so no document waits forever.
//!
//! Waiting is not first-come-first-served: a large document may wait while smaller ones keep
//! starting, but only for as long as there are smaller ones left to start.
//!
//! Allocators that keep freed memory for a while (per thread, or until a purge delay passes)
//! can hold several large documents' worth of memory although only one was alive at a time. A
//! program can register a [`set_large_share_hook`] (the `flowpack` binary tells mimalloc to
//! return freed memory at once from then on); it runs when a share of at least a quarter of the
//! capacity is taken, before that document is parsed. Programs that only ever meet small
//! documents never run it.

use std::sync::{Condvar, Mutex, OnceLock};

static LARGE_SHARE_HOOK: OnceLock<fn()> = OnceLock::new();

/// Registers `hook`, run each time a large share (at least a quarter of a budget's capacity) is
/// taken, before the large document is parsed: the place to make the allocator return freed
/// memory promptly. Only the first registration counts; returns whether this one did.
pub fn set_large_share_hook(hook: fn()) -> bool {
    LARGE_SHARE_HOOK.set(hook).is_ok()
}

use crate::document::DocumentBound;

/// Units of parsing (JSON values) that may be in flight at once, shared by threads.
#[derive(Debug)]
pub struct ParseBudget {
    capacity: u64,
    used: Mutex<u64>,
    freed: Condvar,
    /// Threads waiting in [`acquire`](ParseBudget::acquire) now.
    waiting: std::sync::atomic::AtomicUsize,
}

/// A share of a [`ParseBudget`], given back when dropped.
#[derive(Debug)]
#[must_use = "the share is given back as soon as the permit is dropped"]
pub struct Permit<'a> {
    budget: &'a ParseBudget,
    cost: u64,
}

impl ParseBudget {
    /// A budget of `capacity` units (at least 1).
    pub fn new(capacity: u64) -> ParseBudget {
        ParseBudget {
            capacity: capacity.max(1),
            used: Mutex::new(0),
            freed: Condvar::new(),
            waiting: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// A budget of one document at `bound`'s value count.
    pub fn for_bound(bound: &DocumentBound) -> ParseBudget {
        ParseBudget::new(bound.max_values)
    }

    /// The capacity, in units.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Threads waiting for units now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Units taken now.
    pub fn in_use(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `cost` units (clamped to 1..=capacity), waiting until they are free.
    pub fn acquire(&self, cost: u64) -> Permit<'_> {
        let cost = cost.clamp(1, self.capacity);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used + cost > self.capacity {
            self.waiting
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
            self.waiting
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
        *used += cost;
        drop(used);
        if cost.saturating_mul(4) >= self.capacity
            && let Some(hook) = LARGE_SHARE_HOOK.get()
        {
            hook();
        }
        Permit { budget: self, cost }
    }
}

impl Default for ParseBudget {
    fn default() -> Self {
        ParseBudget::for_bound(&DocumentBound::default())
    }
}

impl Permit<'_> {
    /// The units this permit holds.
    pub fn cost(&self) -> u64 {
        self.cost
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.cost;
        drop(used);
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn small_costs_share_the_budget_and_large_ones_run_alone() {
        let budget = ParseBudget::new(100);
        let a = budget.acquire(30);
        let b = budget.acquire(30);
        assert_eq!(budget.in_use(), 60);
        // Over the capacity: charged the capacity.
        let peak = AtomicU64::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let big = budget.acquire(500);
                assert_eq!(big.cost(), 100);
                peak.fetch_max(budget.in_use(), Ordering::SeqCst);
            });
            // The large share waits (proven: its thread is inside `acquire`, not merely not
            // started yet) while the two small permits are held.
            let started = std::time::Instant::now();
            while budget.waiting() == 0 {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(10),
                    "the large share never started waiting"
                );
                std::thread::yield_now();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert_eq!(budget.waiting(), 1);
            assert_eq!(peak.load(Ordering::SeqCst), 0);
            assert_eq!(budget.in_use(), 60);
            drop(a);
            drop(b);
        });
        assert_eq!(peak.load(Ordering::SeqCst), 100);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn parallel_workers_never_pass_the_capacity() {
        let budget = ParseBudget::new(10);
        let peak = AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let (budget, peak) = (&budget, &peak);
                s.spawn(move || {
                    for i in 0..50u64 {
                        let _p = budget.acquire((t + i) % 7 + 1);
                        peak.fetch_max(budget.in_use(), Ordering::SeqCst);
                        std::thread::yield_now();
                    }
                });
            }
        });
        assert!(peak.load(Ordering::SeqCst) <= 10);
        assert_eq!(budget.in_use(), 0);
    }
}
