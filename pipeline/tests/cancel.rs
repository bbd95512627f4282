//! Cancellation: an item stops at the next stage boundary, the rest of the batch goes on.

use orfeas_pipeline::image::ImageLimits;
use orfeas_pipeline::shape::InflateEngine;
use orfeas_pipeline::{BatchItem, JobOptions, Pipeline, Stage};
use orfeas_vocab::ErrorCode;

/// Cancels one item once it has finished a given stage.
struct CancelAfter {
    item: usize,
    after: Stage,
    done: bool,
}

impl orfeas_pipeline::ProgressObserver for CancelAfter {
    fn stage_started(&mut self, _: usize, _: Stage) {}
    fn stage_finished(&mut self, item: usize, stage: Stage, _: std::time::Duration, _: bool) {
        if item == self.item && stage == self.after {
            self.done = true;
        }
    }
    fn is_canceled(&mut self, item: usize) -> bool {
        item == self.item && self.done
    }
}

#[test]
fn a_canceled_item_stops_at_the_next_stage_boundary() {
    let bytes =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/star.png")).expect("sample");
    let opts = JobOptions::default();
    let pipeline = Pipeline::new(Box::new(InflateEngine), ImageLimits::default());
    let items = [BatchItem::new(&bytes, &opts), BatchItem::new(&bytes, &opts)];
    for (after, next) in [
        (Stage::ImageLoading, Stage::ImagePreprocessing),
        (Stage::ImagePreprocessing, Stage::ShapeGeneration),
        (Stage::ShapeGeneration, Stage::TextureSynthesis),
    ] {
        let mut observer = CancelAfter {
            item: 1,
            after,
            done: false,
        };
        let reports = pipeline.run_batch(&items, &mut observer);
        assert!(reports[0].result.is_ok(), "the other item goes on");
        let err = reports[1].result.as_ref().expect_err("canceled");
        assert_eq!(err.code(), ErrorCode::Canceled);
        assert_eq!(err.stage(), next, "{err}");
        assert!(reports[1].timings.get(next).is_none(), "{next} never ran");
    }
}

#[test]
fn the_engine_reports_its_steps_through_the_control() {
    use std::sync::{Arc, Mutex};

    use orfeas_pipeline::{Control, NoProgress};
    use orfeas_vocab::Step;

    let bytes =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/star.png")).expect("sample");
    let mut opts = JobOptions::default();
    opts.shape.octree_resolution = 64;
    let seen: Arc<Mutex<Vec<(Step, usize, usize)>>> = Arc::default();
    let sink = seen.clone();
    let control = Control::none().with_progress(Arc::new(move |step, done, total| {
        sink.lock().expect("not poisoned").push((step, done, total));
    }));
    let pipeline = Pipeline::new(Box::new(InflateEngine), ImageLimits::default());
    let items = [BatchItem::new(&bytes, &opts).with_control(control)];
    let reports = pipeline.run_batch(&items, &mut NoProgress);
    assert!(reports[0].result.is_ok());
    let seen = seen.lock().expect("not poisoned");
    assert!(seen.contains(&(Step::VolumeDecoding, 1, 1)), "{seen:?}");
    let layers: Vec<_> = seen
        .iter()
        .filter(|s| s.0 == Step::SurfaceExtraction)
        .collect();
    // One report before each of the 64 layers of cubes, and one when they are all done.
    assert_eq!(layers.len(), 65, "{layers:?}");
    assert!(layers.windows(2).all(|w| w[0].1 < w[1].1));
    assert_eq!(*layers[64], (Step::SurfaceExtraction, 64, 64));
}
