//! Every stage runs in a span named exactly after it; the engine's sub-steps are its children.
//! (The only test in this binary: tracing caches callsite interest process-wide, so a parallel
//! test without the recording subscriber could hide spans from it.)

use std::sync::{Arc, Mutex};

use orfeas_pipeline::image::ImageLimits;
use orfeas_pipeline::shape::InflateEngine;
use orfeas_pipeline::{BatchItem, JobOptions, NoProgress, Pipeline, Stage};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// (span name, parent span name).
type SpanRecord = (String, Option<String>);

/// Records every span opened.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<SpanRecord>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.name().to_owned());
        if let Ok(mut v) = self.0.lock() {
            v.push((attrs.metadata().name().to_owned(), parent));
        }
    }
}

#[test]
fn stages_and_sub_steps_have_their_spans() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let bytes =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/star.png")).expect("sample");
    let opts = JobOptions::default();
    let pipeline = Pipeline::new(Box::new(InflateEngine), ImageLimits::default());
    let reports = tracing::subscriber::with_default(subscriber, || {
        // Each item under its own parent (as the worker's job spans), one engine batch.
        let items = [
            BatchItem::new(&bytes, &opts).with_parent(tracing::info_span!("job_a")),
            BatchItem::new(&bytes, &opts).with_parent(tracing::info_span!("job_b")),
        ];
        pipeline.run_batch(&items, &mut NoProgress)
    });
    assert!(reports.iter().all(|r| r.result.is_ok()));
    let spans = recorder.0.lock().expect("lock").clone();
    let count = |name: &str| spans.iter().filter(|(n, _)| n == name).count();
    for stage in Stage::ALL {
        assert_eq!(
            count(stage.as_str()),
            2,
            "{stage} once per image: {spans:?}"
        );
        for job in ["job_a", "job_b"] {
            let under = spans
                .iter()
                .filter(|(n, p)| n == stage.as_str() && p.as_deref() == Some(job))
                .count();
            assert_eq!(under, 1, "{stage} under {job}: {spans:?}");
        }
        for r in &reports {
            assert!(r.timings.get(stage).is_some(), "{stage} timed");
        }
    }
    for sub in ["volume_decoding", "surface_extraction"] {
        let parents: Vec<_> = spans
            .iter()
            .filter(|(n, _)| n == sub)
            .map(|(_, p)| p.clone())
            .collect();
        assert_eq!(parents.len(), 2, "{sub} once per image");
        assert!(
            parents
                .iter()
                .all(|p| p.as_deref() == Some("shape_generation")),
            "{sub}: {parents:?}"
        );
    }

    // The hunyuan3d engine: its four sub-steps under each image's shape_generation.
    let engine = orfeas_pipeline::shape::hunyuan3d::Hunyuan3dEngine::<
        orfeas_pipeline::tensor::CpuBackend,
    >::load(
        std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/hunyuan3d/tiny"
        )),
        Default::default(),
        &Default::default(),
    )
    .expect("tiny checkpoint");
    let pipeline = Pipeline::new(Box::new(engine), ImageLimits::default());
    let mut opts = JobOptions::default();
    opts.shape.octree_resolution = 64;
    opts.shape.steps = Some(2);
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let reports = tracing::subscriber::with_default(subscriber, || {
        let items = [
            BatchItem::new(&bytes, &opts).with_parent(tracing::info_span!("job_a")),
            BatchItem::new(&bytes, &opts).with_parent(tracing::info_span!("job_b")),
        ];
        pipeline.run_batch(&items, &mut NoProgress)
    });
    assert!(reports.iter().all(|r| r.result.is_ok()), "{reports:?}");
    let spans = recorder.0.lock().expect("lock").clone();
    for sub in [
        "conditioning",
        "denoising",
        "volume_decoding",
        "surface_extraction",
    ] {
        let parents: Vec<_> = spans
            .iter()
            .filter(|(n, _)| n == sub)
            .map(|(_, p)| p.clone())
            .collect();
        assert_eq!(
            parents.len(),
            2,
            "hunyuan3d {sub} once per image: {spans:?}"
        );
        assert!(
            parents
                .iter()
                .all(|p| p.as_deref() == Some("shape_generation")),
            "hunyuan3d {sub}: {parents:?}"
        );
    }
}
