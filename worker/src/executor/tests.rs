use super::*;
use orfeas_pipeline::image::ImageLimits;
use orfeas_pipeline::shape::{GeneratedShape, InflateEngine, ShapeEngine, ShapeRequest};

/// The inflate engine on a device that holds at most `capacity` jobs at once.
#[derive(Debug)]
struct SmallDevice {
    capacity: usize,
}

impl ShapeEngine for SmallDevice {
    fn engine(&self) -> Engine {
        Engine::Inflate
    }
    fn generate(&self, batch: &[ShapeRequest<'_>]) -> Vec<Result<GeneratedShape, ShapeError>> {
        if batch.len() > self.capacity {
            return batch
                .iter()
                .map(|_| {
                    Err(ShapeError::OutOfMemory {
                        detail: format!("{} jobs", batch.len()),
                    })
                })
                .collect();
        }
        InflateEngine.generate(batch)
    }
}

fn work(n: usize) -> Vec<Work> {
    let bytes = bytes::Bytes::from(
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/star.png")).expect("sample"),
    );
    let mut options = JobOptions::default();
    options.shape.octree_resolution = 64;
    (0..n)
        .map(|i| Work {
            job_id: JobId(uuid::Uuid::from_u128(i as u128 + 1)),
            attempt: 1,
            input: bytes.clone(),
            options: options.clone(),
            span: tracing::Span::none(),
            deadline: Instant::now() + Duration::from_secs(60),
            stop: Arc::new(AtomicBool::new(false)),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_batch_is_split_until_it_fits() {
    let pipeline = Arc::new(Pipeline::new(
        Box::new(SmallDevice { capacity: 2 }),
        ImageLimits::default(),
    ));
    let mut splits = Vec::new();
    let ran = run_with_splits(pipeline, None, &work(7), |n, _| splits.push(n)).await;
    assert_eq!(ran.len(), 7);
    assert!(
        ran.iter().all(|r| r.report.result.is_ok()),
        "every job ran once it fitted"
    );
    assert!(ran.iter().all(|r| r.report.batch_size <= 2));
    // 7 → 3 + 4; 3 → 1 + 2; 4 → 2 + 2.
    splits.sort_unstable();
    assert_eq!(splits, vec![3, 4, 7]);
    assert!(
        ran.iter()
            .all(|r| r.stage_peak_bytes[Stage::ShapeGeneration.index()].is_some())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_never_fits_keeps_its_oom() {
    let pipeline = Arc::new(Pipeline::new(
        Box::new(SmallDevice { capacity: 0 }),
        ImageLimits::default(),
    ));
    let mut splits = 0;
    let ran = run_with_splits(pipeline, None, &work(2), |_, _| splits += 1).await;
    assert_eq!(splits, 1);
    assert!(ran.iter().all(Ran::is_oom));
}

/// An engine whose computation never ends on its own: it only stops when its control says.
#[derive(Debug)]
struct Stuck;

impl ShapeEngine for Stuck {
    fn engine(&self) -> Engine {
        Engine::Inflate
    }
    fn generate(&self, batch: &[ShapeRequest<'_>]) -> Vec<Result<GeneratedShape, ShapeError>> {
        while !batch.iter().all(|r| r.control.should_stop()) {
            std::thread::sleep(Duration::from_millis(10));
        }
        batch.iter().map(|_| Err(ShapeError::Stopped)).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_timeout_stops_a_stage_from_inside() {
    let pipeline = Arc::new(Pipeline::new(Box::new(Stuck), ImageLimits::default()));
    let mut w = work(2);
    w[0].deadline = Instant::now() + Duration::from_millis(400);
    w[1].deadline = Instant::now() + Duration::from_secs(60);
    // The second job is stopped from outside (as the heartbeat does on a cancel).
    let flag = w[1].stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let started = Instant::now();
    let ran = run_with_splits(pipeline, None, &w, |_, _| {}).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for r in &ran {
        assert!(
            matches!(
                r.report.result,
                Err(PipelineError::Canceled {
                    stage: Stage::ShapeGeneration
                })
            ),
            "{:?}",
            r.report.result
        );
    }
    assert!(ran[0].timed_out, "past its deadline");
    assert!(!ran[1].timed_out, "stopped, not timed out");
}
