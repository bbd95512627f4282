//! Step progress from inside a batch's stages (shape generation's denoising steps, volume-decoding
//! chunks and marching-cubes layers; a `paint` texture's delight and multiview denoising steps
//! and bake) to the jobs' event streams. The engines report from the
//! compute thread as often as they like, which only stores the latest figure; a task on the
//! runtime writes each job's latest figure at most once per interval (`worker.
//! progress_interval_ms`), so a fast engine never floods PostgreSQL or the streams.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orfeas_pipeline::ProgressFn;
use orfeas_shared::db::Db;
use orfeas_vocab::{JobId, Step};

type Figure = (Step, u32, u32);

/// The latest unsent figure of each job of a batch.
#[derive(Debug, Default)]
struct Board {
    pending: Vec<Option<Figure>>,
}

/// Collects the batch's step progress and writes it out, throttled, until dropped.
#[derive(Debug)]
pub struct ProgressRelay {
    board: Arc<Mutex<Board>>,
    task: tokio::task::JoinHandle<()>,
}

impl ProgressRelay {
    /// Starts the relay for the jobs `jobs` (id and attempt), in batch order.
    pub fn start(db: Db, jobs: Vec<(JobId, i32)>, interval: Duration) -> Self {
        let board = Arc::new(Mutex::new(Board {
            pending: vec![None; jobs.len()],
        }));
        let shared = board.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let due: Vec<(usize, Figure)> = {
                    let mut b = shared.lock().unwrap_or_else(|p| p.into_inner());
                    b.pending
                        .iter_mut()
                        .enumerate()
                        .filter_map(|(i, f)| f.take().map(|f| (i, f)))
                        .collect()
                };
                for (i, figure) in due {
                    let (id, attempt) = jobs[i];
                    if let Err(e) = db
                        .record_progress(id, attempt, figure.0.stage(), Some(figure))
                        .await
                    {
                        tracing::debug!(job = %id, error = %e, "progress not recorded");
                    }
                }
            }
        });
        ProgressRelay { board, task }
    }

    /// What item `item`'s control calls: stores the figure for the next write.
    pub fn reporter(&self, item: usize) -> ProgressFn {
        let board = self.board.clone();
        Arc::new(move |step: Step, done: usize, total: usize| {
            let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            let mut b = board.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = b.pending.get_mut(item) {
                *slot = Some((step, clamp(done), clamp(total)));
            }
        })
    }
}

impl Drop for ProgressRelay {
    fn drop(&mut self) {
        // What is still pending belongs to a stage that has finished: its end says more.
        self.task.abort();
    }
}
