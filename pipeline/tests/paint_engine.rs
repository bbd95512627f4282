//! The `paint` texture engine through the pipeline, on the tiny seeded delight and multiview models
//! of `pipeline/tests/fixtures/paint_pipeline/` (64² views, 128² renders and texture): `paint`
//! items of a batch are painted together, each under its own `texture_synthesis` span with
//! `delight`, `multiview_diffusion` and `baking` children, reporting every denoising step; the
//! seed fixes the texture; an item of another mode in the same batch is textured its own way;
//! a pipeline without the models fails `paint` items with `engine_unavailable`.
//! (One test in this binary: tracing caches callsite interest process-wide, so a parallel test
//! without the recording subscriber could hide spans from it.)

use std::sync::{Arc, Mutex};

use burn::tensor::DType;
use orfeas_pipeline::image::ImageLimits;
use orfeas_pipeline::shape::InflateEngine;
use orfeas_pipeline::tensor::CpuBackend;
use orfeas_pipeline::texture::paint::{PaintEngine, PaintSettings};
use orfeas_pipeline::{BatchItem, Control, JobOptions, NoProgress, Pipeline, Stage, Step};
use orfeas_vocab::{ErrorCode, TextureMode};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// (span name, parent span name).
type SpanRecord = (String, Option<String>);

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

fn fixture(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/paint_pipeline")
        .join(rel)
}

fn engine() -> PaintEngine<CpuBackend> {
    PaintEngine::load(
        &fixture("multiview"),
        &fixture("delight"),
        &Default::default(),
        DType::F32,
    )
    .expect("the tiny models load")
    .with_settings(PaintSettings {
        view_size: 64,
        render_size: 128,
        ..PaintSettings::REFERENCE
    })
}

type Seen = Arc<Mutex<Vec<(Step, usize, usize)>>>;

fn watched(seen: &Seen) -> Control {
    let sink = seen.clone();
    Control::none().with_progress(Arc::new(move |step, done, total| {
        sink.lock().expect("lock").push((step, done, total));
    }))
}

#[test]
fn paint_items_are_painted_together_with_spans_progress_and_their_seed() {
    let bytes =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/star.png")).expect("sample");
    let mut paint = JobOptions {
        texture: TextureMode::Paint,
        texture_size: 128,
        ..JobOptions::default()
    };
    paint.shape.seed = 7;
    let mut reseeded = paint.clone();
    reseeded.shape.seed = 8;
    let uv = JobOptions {
        texture_size: 128,
        ..JobOptions::default()
    };
    let pipeline = Pipeline::new(Box::new(InflateEngine), ImageLimits::default())
        .with_painter(Box::new(engine()));
    let (seen_a, seen_b): (Seen, Seen) = Default::default();

    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let reports = tracing::subscriber::with_default(subscriber, || {
        let items = [
            BatchItem::new(&bytes, &paint)
                .with_parent(tracing::info_span!("job_a"))
                .with_control(watched(&seen_a)),
            BatchItem::new(&bytes, &uv).with_parent(tracing::info_span!("job_uv")),
            BatchItem::new(&bytes, &reseeded)
                .with_parent(tracing::info_span!("job_b"))
                .with_control(watched(&seen_b)),
            BatchItem::new(&bytes, &paint).with_parent(tracing::info_span!("job_c")),
        ];
        pipeline.run_batch(&items, &mut NoProgress)
    });
    let outputs: Vec<_> = reports
        .iter()
        .map(|r| r.result.as_ref().expect("every item succeeds"))
        .collect();

    // Painted: a texture, an atlas report, vertex colours from it.
    let texture = |i: usize| {
        outputs[i]
            .texture
            .expect("a UV report")
            .seen
            .clamp(0.0, 1.0)
    };
    for i in [0, 2, 3] {
        assert!(texture(i) > 0.3, "item {i}: views saw {}", texture(i));
    }
    // The same seed paints the same texture; another seed another one. A GLB embeds it.
    let glb = |i: usize| {
        outputs[i]
            .files
            .iter()
            .find(|(a, _)| a.as_str() == "glb")
            .map(|(_, b)| b.clone())
            .expect("a GLB")
    };
    assert_eq!(glb(0), glb(3), "same seed, same result");
    assert_ne!(glb(0), glb(2), "another seed");
    assert_ne!(glb(0), glb(1), "uv is baked from the image, not painted");

    // Every denoising step reported, in order, then the bake.
    let steps = seen_a.lock().expect("lock").clone();
    let of = |s: Step| -> Vec<(usize, usize)> {
        steps
            .iter()
            .filter(|(k, ..)| *k == s)
            .map(|&(_, d, t)| (d, t))
            .collect()
    };
    assert_eq!(
        of(Step::Delight),
        (1..=50).map(|d| (d, 50)).collect::<Vec<_>>()
    );
    assert_eq!(
        of(Step::MultiviewDiffusion),
        (1..=30).map(|d| (d, 30)).collect::<Vec<_>>()
    );
    assert_eq!(of(Step::Baking), [(0, 1), (1, 1)]);
    let first_view = steps
        .iter()
        .position(|(k, ..)| *k == Step::MultiviewDiffusion);
    let last_delight = steps.iter().rposition(|(k, ..)| *k == Step::Delight);
    assert!(last_delight < first_view, "delight runs before the views");
    assert_eq!(seen_b.lock().expect("lock").len(), steps.len());

    // Spans: texture_synthesis under each job, the three steps under it, for the paint jobs only.
    let spans = recorder.0.lock().expect("lock").clone();
    for job in ["job_a", "job_b", "job_c", "job_uv"] {
        let n = spans
            .iter()
            .filter(|(n, p)| n == Stage::TextureSynthesis.as_str() && p.as_deref() == Some(job))
            .count();
        assert_eq!(n, 1, "texture_synthesis under {job}: {spans:?}");
    }
    for step in [Step::Delight, Step::MultiviewDiffusion, Step::Baking] {
        let parents: Vec<_> = spans
            .iter()
            .filter(|(n, _)| n == step.as_str())
            .map(|(_, p)| p.clone())
            .collect();
        assert_eq!(parents.len(), 3, "{step} once per paint item: {spans:?}");
        assert!(
            parents
                .iter()
                .all(|p| p.as_deref() == Some("texture_synthesis")),
            "{step}: {parents:?}"
        );
    }
    for r in &reports {
        assert!(r.timings.get(Stage::TextureSynthesis).is_some());
    }

    // Without the models a paint item fails visibly; the rest of the batch goes on.
    let plain = Pipeline::new(Box::new(InflateEngine), ImageLimits::default());
    let reports = plain.run_batch(
        &[BatchItem::new(&bytes, &paint), BatchItem::new(&bytes, &uv)],
        &mut NoProgress,
    );
    let e = reports[0].result.as_ref().expect_err("no paint models");
    assert_eq!(e.code(), ErrorCode::EngineUnavailable);
    assert_eq!(e.stage(), Stage::TextureSynthesis);
    assert!(e.to_string().contains("worker.paint_weights"), "{e}");
    assert!(reports[1].result.is_ok());
}
