//! The one handle a job's computation consults inside its loops: whether to stop (the job's
//! deadline — the job timeout, measured from the attempt's start — has passed, or the job was
//! told to stop: canceled, or taken over), and where to report step progress. Engines check it
//! between denoising steps, volume-decoding chunks and marching-cubes layers, so a stage stops
//! within moments instead of at its end.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use orfeas_vocab::Step;

/// Step progress: the sub-step, steps done and the total.
pub type ProgressFn = Arc<dyn Fn(Step, usize, usize) + Send + Sync>;

#[derive(Clone, Default)]
pub struct Control {
    deadline: Option<Instant>,
    stop: Option<Arc<AtomicBool>>,
    progress: Option<ProgressFn>,
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("deadline", &self.deadline)
            .field("stop", &self.stop)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Control {
    /// Never stops, reports nowhere.
    pub fn none() -> Self {
        Control::default()
    }

    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Stops once `flag` is set (by whoever learns the job should stop).
    pub fn with_stop(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    pub fn with_progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    pub fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    pub fn should_stop(&self) -> bool {
        self.deadline_passed()
            || self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// Reports that `done` of `total` steps of `step` are done.
    pub fn progress(&self, step: Step, done: usize, total: usize) {
        if let Some(p) = &self.progress {
            p(step, done, total);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    #[test]
    fn stops_at_its_deadline_or_when_told() {
        assert!(!Control::none().should_stop());
        let past = Control::none().with_deadline(Instant::now() - Duration::from_millis(1));
        assert!(past.should_stop() && past.deadline_passed());
        let later = Control::none().with_deadline(Instant::now() + Duration::from_secs(60));
        assert!(!later.should_stop());
        let flag = Arc::new(AtomicBool::new(false));
        let told = later.with_stop(flag.clone());
        assert!(!told.should_stop());
        flag.store(true, Ordering::Relaxed);
        assert!(told.should_stop() && !told.deadline_passed());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let c = Control::none().with_progress(Arc::new(move |s, d, t| {
            sink.lock().expect("lock").push((s, d, t));
        }));
        c.progress(Step::Denoising, 1, 5);
        assert_eq!(*seen.lock().expect("lock"), [(Step::Denoising, 1, 5)]);
    }
}
