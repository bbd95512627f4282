//! The segmentation model inside the pipeline: a batch's images that need it are segmented in
//! one call, each item reports the method that found its mask, and a batch gives every image the
//! cut-out it gets alone.

use std::path::PathBuf;

use orfeas_pipeline::image::{BackgroundMode, ImageLimits, SegmentationMethod};
use orfeas_pipeline::segmentation::load_segmenter;
use orfeas_pipeline::shape::InflateEngine;
use orfeas_pipeline::{Artifact, BatchItem, JobOptions, NoProgress, Pipeline};
use orfeas_vocab::Device;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(repo().join(rel)).expect("input")
}

fn options(background: BackgroundMode) -> JobOptions {
    let mut o = JobOptions::default();
    o.preprocess.background = background;
    o.shape.octree_resolution = 64;
    o.cutout = true;
    o
}

fn cutout(report: &orfeas_pipeline::ItemReport) -> Vec<u8> {
    let out = report.result.as_ref().expect("item succeeded");
    out.files
        .iter()
        .find(|(a, _)| *a == Artifact::Cutout)
        .map(|(_, b)| b.clone())
        .expect("a cutout")
}

#[test]
fn each_image_reports_its_method_and_a_batch_cuts_out_what_one_alone_does() {
    let model = load_segmenter(
        &repo().join("pipeline/tests/fixtures/u2net/u2netp.onnx"),
        Device::Cpu,
    )
    .expect("u2netp fixture");
    let pipeline =
        Pipeline::new(Box::new(InflateEngine), ImageLimits::default()).with_segmenter(model);
    let star = read("samples/star.png");
    let apple = read("samples/apple.jpg");
    let cat = read("pipeline/tests/fixtures/u2net/images/01_chelsea.png");
    let auto = options(BackgroundMode::Auto);
    let always = options(BackgroundMode::Always);
    let never = options(BackgroundMode::Never);
    let items = [
        BatchItem::new(&star, &auto),
        BatchItem::new(&apple, &auto),
        BatchItem::new(&cat, &auto),
        BatchItem::new(&star, &always),
        BatchItem::new(&cat, &never),
    ];
    let reports = pipeline.run_batch(&items, &mut NoProgress);
    let methods: Vec<SegmentationMethod> = reports
        .iter()
        .map(|r| r.segmentation.expect("segmented").method)
        .collect();
    assert_eq!(
        methods,
        [
            SegmentationMethod::Alpha,
            SegmentationMethod::U2net,
            SegmentationMethod::U2net,
            SegmentationMethod::U2net,
            SegmentationMethod::WholeImage,
        ]
    );
    for r in &reports {
        let share = r.segmentation.expect("segmented").mask_share;
        assert!(share > 0.0 && share <= 1.0, "{share}");
    }
    assert_eq!(reports[4].segmentation.map(|s| s.mask_share), Some(1.0));
    // The three model images went through one call; each cut-out equals its run alone.
    for (i, bytes, opts) in [(1, &apple, &auto), (2, &cat, &auto), (3, &star, &always)] {
        let alone = pipeline.run_batch(&[BatchItem::new(bytes, opts)], &mut NoProgress);
        assert_eq!(cutout(&reports[i]), cutout(&alone[0]), "item {i}");
    }

    // Without the model the photos go to the weights-free methods.
    let plain = Pipeline::new(Box::new(InflateEngine), ImageLimits::default());
    let reports = plain.run_batch(
        &[BatchItem::new(&apple, &auto), BatchItem::new(&cat, &auto)],
        &mut NoProgress,
    );
    for r in &reports {
        let seg = r.segmentation.expect("segmented");
        assert!(
            matches!(
                seg.method,
                SegmentationMethod::PlainBackground | SegmentationMethod::Classic
            ),
            "{seg:?}"
        );
        assert!(seg.mask_share > 0.03 && seg.mask_share < 0.9, "{seg:?}");
    }
}
