//! `texture_synthesis`: vertex colours projected from the preprocessed image along the view
//! axis of the engine's [`ViewFrame`]. Front and back both take the colour at their projected
//! pixel; points projecting onto the background (the silhouette's rim, sub-pixel differences)
//! take the colour of the nearest object pixel, so no white fringe appears; pixels on the object's
//! rim, where preprocessing blended the colour with the white backdrop, are not used as sources.

use crate::image::PreprocessedImage;
use crate::image::edt::distance_transform;
use crate::mesh::Mesh;
use crate::shape::ViewFrame;

/// Depth in pixels below which object pixels are not trusted as colour sources.
const RIM_PX: f32 = 4.0;

pub fn colorize(mesh: &mut Mesh, image: &PreprocessedImage, frame: &ViewFrame) {
    let s = image.size;
    // Colours are taken only from pixels at least RIM_PX inside the object: the rim is blended
    // with the white backdrop by the resizes of preprocessing.
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
    // Every pixel takes the colour of its nearest source pixel (itself when it is one).
    let filled: Vec<[f32; 3]> = (0..s * s)
        .map(|i| {
            let src = match field.nearest[i] {
                u32::MAX => i,
                n => n as usize,
            };
            let p = &image.rgb[src * 3..src * 3 + 3];
            [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
        })
        .collect();
    let colors = mesh
        .positions
        .iter()
        .map(|&p| {
            let (u, v) = frame.project(p, s);
            let u = u.clamp(0.0, (s - 1) as f32);
            let v = v.clamp(0.0, (s - 1) as f32);
            let (u0, v0) = (u.floor() as usize, v.floor() as usize);
            let (u1, v1) = ((u0 + 1).min(s - 1), (v0 + 1).min(s - 1));
            let (fu, fv) = (u - u0 as f32, v - v0 as f32);
            let mut out = [0u8; 3];
            for (c, o) in out.iter_mut().enumerate() {
                let top = filled[v0 * s + u0][c] * (1.0 - fu) + filled[v0 * s + u1][c] * fu;
                let bottom = filled[v1 * s + u0][c] * (1.0 - fu) + filled[v1 * s + u1][c] * fu;
                *o = (top * (1.0 - fv) + bottom * fv).round().clamp(0.0, 255.0) as u8;
            }
            out
        })
        .collect();
    mesh.colors = Some(colors);
}
