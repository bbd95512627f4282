//! The live progress line on stderr, once per second: elapsed time, arrivals sent, accepted,
//! jobs ended, in flight, the target arrival rate now and the rate jobs ended over the last
//! few seconds. On a terminal it rewrites one line; otherwise (a log file) it writes a line per
//! tick.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::schedule::Profile;

/// Counters the run's tasks bump and the progress line reads.
#[derive(Debug, Default)]
pub struct Live {
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub dropped: AtomicU64,
    pub completed: AtomicU64,
    /// Submitting, queued or running.
    pub in_flight: AtomicU64,
}

impl Live {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Seconds over which the completion rate on the line is averaged: long enough to be steady
/// when jobs end in batches.
const RATE_WINDOW: usize = 5;

/// Prints the line every second until dropped (the task is aborted by the run).
pub async fn show(live: Arc<Live>, profile: Profile, duration: Duration) {
    let start = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut completed_history: Vec<u64> = Vec::new();
    loop {
        ticks.tick().await;
        let elapsed = start.elapsed().as_secs_f64();
        let completed = Live::get(&live.completed);
        completed_history.push(completed);
        let back = completed_history.len().min(RATE_WINDOW + 1) - 1;
        let done_rate = if back == 0 {
            0.0
        } else {
            (completed - completed_history[completed_history.len() - 1 - back]) as f64 / back as f64
        };
        let phase = if elapsed <= duration.as_secs_f64() {
            format!(
                "target {:.2}/s",
                profile.rate_at(elapsed, duration.as_secs_f64())
            )
        } else {
            "draining".to_owned()
        };
        let line = format!(
            "{:>6.0}s  sent {}  accepted {}  refused {}  dropped {}  completed {}  in flight {}  {phase}, completing {done_rate:.2}/s",
            elapsed,
            Live::get(&live.sent),
            Live::get(&live.accepted),
            Live::get(&live.refused),
            Live::get(&live.dropped),
            completed,
            Live::get(&live.in_flight),
        );
        let mut err = std::io::stderr().lock();
        // A failed write to stderr has nowhere to be reported; the run goes on.
        let _ = if terminal {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

/// Ends a rewritten line so the report starts on its own.
pub fn finish_line(quiet: bool) {
    if !quiet && std::io::stderr().is_terminal() {
        eprintln!();
    }
}
