//! `image_loading` on every supported kind of input, and every kind of bad input yielding its
//! own typed error quickly, without decoding what the header already rules out.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use orfeas_pipeline::error::{LoadError, PipelineError, PreprocessError};
use orfeas_pipeline::image::{ImageLimits, LoadedImage, load_image};
use orfeas_pipeline::shape::InflateEngine;
use orfeas_pipeline::{BatchItem, JobOptions, NoProgress, Pipeline, Stage};

fn read(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(name: &str) -> LoadedImage {
    load_image(
        &read(&format!("tests/fixtures/formats/{name}")),
        &ImageLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn px(img: &LoadedImage, x: u32, y: u32) -> [u8; 4] {
    img.rgba.get_pixel(x, y).0
}

fn assert_red_blue(name: &str) {
    let img = load(name);
    assert_eq!(img.rgba.dimensions(), (48, 32), "{name}");
    let (left, right) = (px(&img, 4, 16), px(&img, 44, 16));
    assert!(left[0] > 180 && left[2] < 80, "{name}: left {left:?}");
    assert!(right[2] > 180 && right[0] < 80, "{name}: right {right:?}");
    assert_eq!(left[3], 255);
}

#[test]
fn exif_orientation_is_applied() {
    // Stored 32x48 with orientation 6; displayed 48x32 red|blue.
    assert_red_blue("exif_rotated.jpg");
}

#[test]
fn cmyk_jpeg_becomes_rgb() {
    assert_red_blue("cmyk.jpg");
}

#[test]
fn webp_and_palette_png() {
    assert_red_blue("lossless.webp");
    assert_red_blue("palette.png");
}

#[test]
fn grayscale_8_and_16_bit() {
    for name in ["gray8.png", "gray16.png"] {
        let img = load(name);
        let (l, r) = (px(&img, 0, 5), px(&img, 47, 5));
        assert!(l[0] < 10 && r[0] > 245, "{name}: {l:?} {r:?}");
        assert!(
            l[0] == l[1] && l[1] == l[2] && r[0] == r[2],
            "{name}: grey stays grey"
        );
    }
}

fn png(
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    rows: impl Fn(&mut Vec<u8>),
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(color);
        enc.set_depth(depth);
        let mut w = enc.write_header().expect("header");
        let mut data = Vec::new();
        rows(&mut data);
        w.write_image_data(&data).expect("data");
    }
    out
}

/// A small PNG whose IHDR claims `width`x`height`, followed by a few bytes of image data.
fn oversized_header_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 6, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
    );
    chunk(b"IEND", &[]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// 7000x7000 one-bit grey zeros: a few kB of file, 196 MB once expanded to RGBA8.
fn bomb() -> Vec<u8> {
    let (w, h) = (7000u32, 7000u32);
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        let mut header = enc.write_header().expect("header");
        let mut writer = header.stream_writer().expect("stream");
        let row = vec![0u8; (w as usize).div_ceil(8)];
        for _ in 0..h {
            std::io::Write::write_all(&mut writer, &row).expect("row");
        }
        writer.finish().expect("finish");
    }
    out
}

#[test]
fn bad_inputs_get_their_own_typed_errors_quickly() {
    let good = read("../samples/star.png");
    let jpeg = read("../samples/apple.jpg");
    let bomb = bomb();
    assert!(bomb.len() < 200_000, "bomb is {} bytes", bomb.len());
    let tiny = png(1, 1, png::ColorType::Rgba, png::BitDepth::Eight, |d| {
        d.extend([9, 9, 9, 255])
    });
    let transparent = png(64, 64, png::ColorType::Rgba, png::BitDepth::Eight, |d| {
        d.extend(vec![0u8; 64 * 64 * 4])
    });
    let gif = b"GIF89a\x10\x00\x10\x00\x00\x00\x00;".to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty_input"),
        (
            "text",
            b"definitely not an image, just text".to_vec(),
            "unsupported_format",
        ),
        ("gif", gif, "unsupported_format"),
        (
            "truncated png",
            good[..good.len() / 2].to_vec(),
            "truncated_image",
        ),
        (
            "truncated jpeg header",
            jpeg[..300].to_vec(),
            "truncated_image",
        ),
        (
            "oversized header",
            oversized_header_png(100_000, 100_000),
            "image_too_large",
        ),
        ("decompression bomb", bomb, "image_too_large"),
        ("1x1", tiny, "image_too_small"),
        ("fully transparent", transparent, "no_foreground"),
        ("good", good.clone(), ""),
    ];
    let opts = JobOptions::default();
    let pipeline = Pipeline::new(Box::new(InflateEngine), ImageLimits::default());
    // Each bad input alone: its error, within a second.
    for (name, bytes, code) in cases.iter().filter(|c| !c.2.is_empty()) {
        let start = Instant::now();
        let report = pipeline
            .run_batch(&[BatchItem::new(bytes, &opts)], &mut NoProgress)
            .pop()
            .expect("one report");
        let elapsed = start.elapsed();
        let err = report.result.expect_err(name);
        assert_eq!(err.code().as_str(), *code, "{name}: {err}");
        assert!(elapsed < Duration::from_secs(1), "{name} took {elapsed:?}");
        let expected_stage = if *code == "no_foreground" {
            Stage::ImagePreprocessing
        } else {
            Stage::ImageLoading
        };
        assert_eq!(err.stage(), expected_stage, "{name}");
        assert!(
            err.to_string().starts_with(expected_stage.as_str()),
            "{name}: {err}"
        );
    }
    // All of them in one batch: the good image still succeeds.
    let items: Vec<BatchItem<'_>> = cases
        .iter()
        .map(|(_, b, _)| BatchItem::new(b, &opts))
        .collect();
    let reports = pipeline.run_batch(&items, &mut NoProgress);
    for ((name, _, code), report) in cases.iter().zip(&reports) {
        match &report.result {
            Ok(_) => assert!(code.is_empty(), "{name} should fail"),
            Err(e) => assert_eq!(e.code().as_str(), *code, "{name}"),
        }
    }
    assert_eq!(reports.last().map(|r| r.batch_size), Some(1));
}

#[test]
fn header_limits_are_checked_before_decoding() {
    let err = load_image(&oversized_header_png(9000, 100), &ImageLimits::default())
        .expect_err("too wide");
    assert!(
        matches!(err, LoadError::DimensionsTooLarge { width: 9000, .. }),
        "{err}"
    );
    let err = load_image(&bomb(), &ImageLimits::default()).expect_err("bomb");
    assert_eq!(
        err,
        LoadError::TooManyPixels {
            pixels: 49_000_000,
            max_pixels: 40_000_000
        }
    );
    let small_limits = ImageLimits {
        max_bytes: 10,
        ..ImageLimits::default()
    };
    let err = load_image(&read("../samples/star.png"), &small_limits).expect_err("bytes");
    assert!(
        matches!(err, LoadError::TooManyBytes { limit: 10, .. }),
        "{err}"
    );
    // Configured limits are honoured, not just the defaults.
    let strict = ImageLimits {
        max_width: 100,
        ..ImageLimits::default()
    };
    let err = load_image(&read("../samples/star.png"), &strict).expect_err("strict");
    assert!(
        matches!(err, LoadError::DimensionsTooLarge { max_width: 100, .. }),
        "{err}"
    );
    let _ = PipelineError::from(PreprocessError::NoForeground {
        reason: String::new(),
    });
}
