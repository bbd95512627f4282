//! The colours a view image lends the surface. Pixels on the object's rim are blended with the
//! white backdrop by the resizes of preprocessing, so they are not used: every pixel takes the
//! colour of the nearest object pixel at least [`RIM_PX`] inside the object (itself when it is
//! one). Points projecting onto the background (the silhouette's rim, sub-pixel differences)
//! thus take the colour of the nearest trusted object pixel, and no white fringe appears.

use crate::image::PreprocessedImage;
use crate::image::edt::distance_transform;

/// Depth in pixels below which object pixels are not trusted as colour sources.
const RIM_PX: f32 = 4.0;

/// A square image of sRGB colours (0–255 as f32), defined everywhere.
#[derive(Debug, Clone)]
pub struct SourceImage {
    pub size: usize,
    pub rgb: Vec<[f32; 3]>,
}

impl SourceImage {
    pub fn new(image: &PreprocessedImage) -> SourceImage {
        let s = image.size;
        let bg: Vec<bool> = image.mask.iter().map(|&m| m == 0).collect();
        let depth = distance_transform(&bg, s, s);
        let mut sources: Vec<bool> = depth
            .sq_dist
            .iter()
            .map(|&d| d >= RIM_PX * RIM_PX)
            .collect();
        if !sources.iter().any(|&b| b) {
            sources = bg.iter().map(|b| !b).collect();
        }
        let field = distance_transform(&sources, s, s);
        let rgb = (0..s * s)
            .map(|i| {
                let src = match field.nearest[i] {
                    u32::MAX => i,
                    n => n as usize,
                };
                let p = &image.rgb[src * 3..src * 3 + 3];
                [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
            })
            .collect();
        SourceImage { size: s, rgb }
    }

    /// Bilinear sample at continuous pixel coordinates (pixel centres at integers), clamped to
    /// the image.
    pub fn sample(&self, u: f32, v: f32) -> [f32; 3] {
        let s = self.size;
        let u = u.clamp(0.0, (s - 1) as f32);
        let v = v.clamp(0.0, (s - 1) as f32);
        let (u0, v0) = (u.floor() as usize, v.floor() as usize);
        let (u1, v1) = ((u0 + 1).min(s - 1), (v0 + 1).min(s - 1));
        let (fu, fv) = (u - u0 as f32, v - v0 as f32);
        let px = |x: usize, y: usize| self.rgb[y * s + x];
        let mut out = [0f32; 3];
        for (c, o) in out.iter_mut().enumerate() {
            let top = px(u0, v0)[c] * (1.0 - fu) + px(u1, v0)[c] * fu;
            let bottom = px(u0, v1)[c] * (1.0 - fu) + px(u1, v1)[c] * fu;
            *o = top * (1.0 - fv) + bottom * fv;
        }
        out
    }
}
