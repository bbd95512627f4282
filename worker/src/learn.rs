//! The memory model learns from each batch: its measured peaks per job, or the size at which it
//! ran out of memory, per workload (shape engine, paint), persisted so a restarted worker starts
//! from what its predecessors measured.

use orfeas_pipeline::Stage;
use orfeas_shared::db::MemoryFigure;
use orfeas_vocab::Workload;

use crate::executor::Ran;
use crate::optimizer::{self, Decision, JobShape, Learned, ModelKey};
use crate::startup::Worker;

impl Worker {
    /// Feeds the batch's measured peaks (or its out-of-memory splits) to the memory model, each
    /// workload's (shape engine, paint) apart, and persists the figures.
    pub(crate) async fn learn(
        &self,
        shape: &JobShape,
        decision: &Decision,
        ran: &[Ran],
        ooms: &[(usize, Stage)],
    ) {
        let device = self.config.worker.device;
        let entries: Vec<(ModelKey, Learned)> = self
            .memory
            .lock()
            .map(|mut model| {
                optimizer::workloads(shape)
                    .into_iter()
                    .filter_map(|workload| {
                        let ran_out = ooms
                            .iter()
                            .filter(|(_, stage)| {
                                (*stage == Stage::TextureSynthesis) == (workload == Workload::Paint)
                            })
                            .map(|&(n, _)| n)
                            .max();
                        if let Some(n) = ran_out {
                            return Some(model.after_oom_of(
                                workload,
                                shape,
                                device,
                                decision.budget_bytes,
                                n,
                            ));
                        }
                        ran.iter()
                            .filter_map(|r| r.peak_per_job(workload, shape.paint))
                            .max()
                            .filter(|&p| p > 0)
                            .map(|p| model.observe_of(workload, shape, device, p))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for ((workload, bucket, device), learned) in entries {
            let figure = MemoryFigure {
                workload,
                resolution_bucket: i32::try_from(bucket).unwrap_or(i32::MAX),
                device,
                bytes_per_job: i64::try_from(learned.bytes_per_job).unwrap_or(i64::MAX),
                samples: i64::try_from(learned.samples).unwrap_or(i64::MAX),
            };
            if let Err(e) = self.db.save_memory_figure(&figure).await {
                tracing::debug!(error = %e, "memory figure not saved");
            }
        }
    }
}
