//! The one bounded worker pool: every job of flowpack that runs on several threads (validate's
//! files, verify's entries, push's documents, diff's pairs, export's requests, the archive
//! writer's documents) runs through [`try_map`] (a slice, results in order) or [`stream`]
//! (an iterator, results handed to the caller as they are done).
//!
//! Both start at most `jobs` scoped threads (never more than there is work for), hand out work
//! one item at a time, and stop handing it out at the first failure, so a bad input costs no
//! more than the items already running. Neither keeps more than `jobs` results waiting for the
//! caller in [`stream`]; [`try_map`] keeps the results it returns.

use std::ops::ControlFlow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `f(state, index, item)` over `items` on up to `jobs` threads, each with its own `state`
/// from `init` (a buffer, a reader of a file); the results keep the items' order. The first
/// failure in that order is returned, and no item is started after a failure is seen.
pub fn try_map<'a, T, R, E, S>(
    items: &'a [T],
    jobs: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &'a T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let jobs = jobs.clamp(1, items.len().max(1));
    if jobs == 1 {
        let mut state = init();
        return items
            .iter()
            .enumerate()
            .map(|(i, t)| f(&mut state, i, t))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || {
        let mut state = init();
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let r = f(&mut state, i, item);
            if r.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((i, r));
        }
        done
    };
    let mut results: Vec<(usize, Result<R, E>)> = std::thread::scope(|s| {
        let others: Vec<_> = (1..jobs).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for o in others {
            all.extend(o.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        all
    });
    // Items are taken in order: every item before a failing one was started, so the first
    // failure in the items' order is among the results.
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// [`try_map`] for work that cannot fail and needs no per-thread state.
pub fn map<'a, T: Sync, R: Send>(
    items: &'a [T],
    jobs: usize,
    f: impl Fn(usize, &'a T) -> R + Sync,
) -> Vec<R> {
    match try_map(
        items,
        jobs,
        || (),
        |(), i, t| Ok::<R, std::convert::Infallible>(f(i, t)),
    ) {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

/// Runs `f` over `items` on up to `jobs` threads and hands each result to `consume` on the
/// calling thread as it is done (in completion order), at most `jobs` results waiting. When
/// `consume` breaks, no item is started after it; the items already running finish and their
/// results are dropped. `items` is drawn one at a time, so it may be a channel's receiver fed
/// by another thread (the pool then ends when the channel closes).
pub fn stream<T, R>(
    items: impl Iterator<Item = T> + Send,
    jobs: usize,
    f: impl Fn(T) -> R + Sync,
    mut consume: impl FnMut(R) -> ControlFlow<()>,
) where
    T: Send,
    R: Send,
{
    let jobs = jobs.max(1);
    let items = Mutex::new(items);
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::sync_channel::<R>(jobs);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (items, stop, f) = (&items, &stop, &f);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let next = items.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some(item) = next else { break };
                    if tx.send(f(item)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for r in rx.iter() {
            if consume(r).is_break() {
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        // Unblock workers waiting to send: drain what is left (dropped unread).
        for _ in rx.iter() {}
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn results_keep_the_order_and_every_thread_has_its_own_state() {
        let items: Vec<u32> = (0..1000).collect();
        let inits = AtomicUsize::new(0);
        let out = try_map(
            &items,
            4,
            || {
                inits.fetch_add(1, Ordering::Relaxed);
                Vec::<u32>::new()
            },
            |seen, i, t| {
                seen.push(*t);
                Ok::<_, ()>((i as u32, t * 2))
            },
        )
        .unwrap();
        assert_eq!(out, (0..1000).map(|t| (t, t * 2)).collect::<Vec<_>>());
        assert_eq!(inits.load(Ordering::Relaxed), 4);
        assert_eq!(map(&items[..3], 8, |_, t| t + 1), vec![1, 2, 3]);
        assert!(map(&[] as &[u32], 4, |_, t| *t).is_empty());
    }

    #[test]
    fn the_first_failure_in_order_is_returned_and_work_stops_after_it() {
        let items: Vec<u32> = (0..10_000).collect();
        let started = AtomicUsize::new(0);
        let r = try_map(
            &items,
            4,
            || (),
            |(), _, t| {
                started.fetch_add(1, Ordering::Relaxed);
                match *t {
                    7 | 9 => Err(*t),
                    _ => Ok(*t),
                }
            },
        );
        assert_eq!(r, Err(7));
        // Nothing near the end of the list was started (a few items per thread at most ran
        // after the failure was seen).
        assert!(started.load(Ordering::Relaxed) < 1_000, "{started:?}");
    }

    #[test]
    fn a_stream_hands_every_result_to_the_caller_and_stops_when_it_breaks() {
        let mut got: Vec<u32> = Vec::new();
        stream(
            0..500u32,
            3,
            |t| t * 3,
            |r| {
                got.push(r);
                ControlFlow::Continue(())
            },
        );
        got.sort_unstable();
        assert_eq!(got, (0..500).map(|t| t * 3).collect::<Vec<_>>());

        // Fed from a channel another thread writes, ending when it closes.
        let (tx, rx) = std::sync::mpsc::channel();
        let feeder = std::thread::spawn(move || {
            for i in 0..100u32 {
                tx.send(i).unwrap();
            }
        });
        let mut n = 0;
        stream(
            rx.into_iter(),
            2,
            |t| t,
            |_| {
                n += 1;
                ControlFlow::Continue(())
            },
        );
        feeder.join().unwrap();
        assert_eq!(n, 100);

        let taken = AtomicUsize::new(0);
        let mut handed = 0;
        stream(
            (0..100_000u32).inspect(|_| {
                taken.fetch_add(1, Ordering::Relaxed);
            }),
            4,
            |t| t,
            |_| {
                handed += 1;
                if handed == 10 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        assert_eq!(handed, 10);
        assert!(taken.load(Ordering::Relaxed) < 100, "{taken:?}");
    }
}
