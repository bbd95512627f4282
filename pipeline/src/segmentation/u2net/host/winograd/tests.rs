use super::super::HostConv;
use super::super::reference::{layer, map, matches_definition};
use super::*;

fn check(c: &FoldedConv, parts: &[&Map]) {
    let conv = WinogradConv::new(c).expect("a 3×3, dilation-1 layer");
    matches_definition(c, parts, &conv.forward(parts));
}

#[test]
fn odd_and_tiny_maps_match_the_definition() {
    // One band, so the transforms and the 16 GEMMs run threaded; odd widths and heights drop
    // the last tile's second column or row; 1×1 and 2×3 maps are all padding but a pixel.
    for (h, w) in [(7, 5), (9, 11), (1, 1), (2, 3), (3, 1)] {
        let x = map(1, 5, h, w, 4);
        check(&layer(4, 5, 3, 1, true), &[&x]);
        check(&layer(3, 5, 3, 1, false), &[&x]);
    }
}

#[test]
fn bands_that_split_rows_of_tiles_spread_over_the_cores_match_the_definition() {
    // 16 · (32 + 8) values per tile: 409 tiles per band, so each image's 19 × 151 tiles make
    // 8 bands, most of them starting and ending inside a row of tiles; with two threads the 16
    // bands are spread, each band on one core.
    let (a, b) = (map(2, 24, 37, 301, 1), map(2, 8, 37, 301, 2));
    let c = layer(8, 32, 3, 1, true);
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a thread pool")
        .install(|| check(&c, &[&a, &b]));
}

#[test]
fn only_wide_enough_undilated_3x3_layers_take_the_winograd_path() {
    let kind = |c: &FoldedConv| match HostConv::new(c) {
        HostConv::Winograd(_) => "winograd",
        HostConv::Im2col(_) => "im2col",
    };
    assert_eq!(kind(&layer(8, 16, 3, 1, true)), "winograd");
    assert_eq!(kind(&layer(64, 3, 3, 1, true)), "im2col");
    assert_eq!(kind(&layer(8, 16, 3, 2, true)), "im2col");
    assert_eq!(kind(&layer(1, 16, 1, 1, false)), "im2col");
    assert!(WinogradConv::new(&layer(8, 16, 3, 4, true)).is_none());
}
