//! Inpainting of what no view saw, in Hunyuan3D-Paint's two steps: first over the mesh (the
//! colours of seen vertices diffuse along edges to unseen ones, weighted by inverse squared
//! edge length, as its `mesh_processor` does), the unseen texels of a face then taking the
//! barycentric blend of its corners' colours; then in image space (Telea) for the texels still
//! unknown. A margin around every chart repeats its border, so filtering never reads an unfilled
//! texel or another chart's colour.

use std::collections::HashMap;

use super::atlas::PADDING;
use super::bake::Baked;
use super::inpaint::telea;
use super::raster::NO_FACE;
use crate::image::edt::distance_transform;
use crate::mesh::Mesh;

/// The inpainting neighbourhood radius in texels (the reference's `cv2.inpaint` radius).
const INPAINT_RADIUS: f32 = 3.0;

/// Rounds of vertex colour diffusion; each reaches one edge further into the unseen region.
const DIFFUSION_ROUNDS: usize = 64;

/// The finished texture: every texel inside a chart coloured, a margin of `2 · PADDING` texels
/// around each chart repeating its nearest chart texel, the rest of the page the mean colour.
pub fn fill(mesh: &Mesh, baked: &Baked) -> Vec<[f32; 3]> {
    let size = baked.size;
    let mut rgb = baked.rgb.clone();
    let mut known: Vec<bool> = (0..size * size).map(|t| baked.seen(t)).collect();

    // Over the mesh: vertices (welded across seams) take the colour of the texel under them.
    let welded = mesh.welded();
    let uvs = mesh.uvs.as_deref().unwrap_or_default();
    let mut colour: HashMap<u32, ([f32; 3], f32)> = HashMap::new();
    for (v, uv) in uvs.iter().enumerate() {
        let t = texel_at(*uv, size);
        if known[t] {
            let e = colour.entry(welded[v]).or_insert(([0.0; 3], 0.0));
            for k in 0..3 {
                e.0[k] += rgb[t][k];
            }
            e.1 += 1.0;
        }
    }
    let mut vertex: Vec<Option<[f32; 3]>> = vec![None; mesh.positions.len()];
    for (&w, (sum, n)) in &colour {
        vertex[w as usize] = Some(sum.map(|c| c / n));
    }
    diffuse(mesh, &welded, &mut vertex);

    // Unseen texels inside a face whose corners all have a colour take their blend.
    for t in 0..size * size {
        let f = baked.uv.face[t];
        if known[t] || f == NO_FACE {
            continue;
        }
        let tri = mesh.triangles[f as usize];
        let corners = tri.map(|v| vertex[welded[v as usize] as usize]);
        if let [Some(a), Some(b), Some(c)] = corners {
            let w = baked.uv.bary[t];
            rgb[t] = [0, 1, 2].map(|k| w[0] * a[k] + w[1] * b[k] + w[2] * c[k]);
            known[t] = true;
        }
    }

    // In the image: the rest of each chart's texels.
    let charts: Vec<bool> = baked.uv.face.iter().map(|&f| f != NO_FACE).collect();
    telea(&mut rgb, size, size, &known, &charts, INPAINT_RADIUS);

    // Around the charts: each margin texel repeats the nearest chart texel, so filtering and
    // mipmaps (and JPEG's halved chroma) at a chart's border only ever mix its own colours.
    let inside: Vec<&[f32; 3]> = rgb
        .iter()
        .zip(&charts)
        .filter(|(_, c)| **c)
        .map(|(c, _)| c)
        .collect();
    let mean = if inside.is_empty() {
        [128.0; 3]
    } else {
        let n = inside.len() as f32;
        [0, 1, 2].map(|k| inside.iter().map(|c| c[k]).sum::<f32>() / n)
    };
    let margin = (2 * PADDING) as f32;
    let near = distance_transform(&charts, size, size);
    (0..size * size)
        .map(|t| {
            if charts[t] {
                rgb[t]
            } else if near.sq_dist[t] <= margin * margin && near.nearest[t] != u32::MAX {
                rgb[near.nearest[t] as usize]
            } else {
                mean
            }
        })
        .collect()
}

/// The texel a UV coordinate falls in.
fn texel_at(uv: [f32; 2], size: usize) -> usize {
    let x = ((uv[0] * size as f32) as usize).min(size - 1);
    let y = ((uv[1] * size as f32) as usize).min(size - 1);
    y * size + x
}

/// Gives unseen vertices the inverse-squared-distance weighted mean of their coloured
/// neighbours, round after round, until none is left or no round reaches further.
fn diffuse(mesh: &Mesh, welded: &[u32], vertex: &mut [Option<[f32; 3]>]) {
    let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); mesh.positions.len()];
    for t in &mesh.triangles {
        for k in 0..3 {
            let (a, b) = (welded[t[k] as usize], welded[t[(k + 1) % 3] as usize]);
            if a != b {
                neighbours[a as usize].push(b);
                neighbours[b as usize].push(a);
            }
        }
    }
    for _ in 0..DIFFUSION_ROUNDS {
        let updates: Vec<(usize, [f32; 3])> = (0..vertex.len())
            .filter(|&v| vertex[v].is_none() && !neighbours[v].is_empty())
            .filter_map(|v| {
                let p = mesh.positions[v];
                let mut acc = [0f32; 3];
                let mut wsum = 0f32;
                for &u in &neighbours[v] {
                    if let Some(c) = vertex[u as usize] {
                        let q = mesh.positions[u as usize];
                        let d2 = (0..3).map(|k| (p[k] - q[k]).powi(2)).sum::<f32>();
                        let w = 1.0 / d2.max(1e-12);
                        for k in 0..3 {
                            acc[k] += w * c[k];
                        }
                        wsum += w;
                    }
                }
                (wsum > 0.0).then(|| (v, acc.map(|a| a / wsum)))
            })
            .collect();
        if updates.is_empty() {
            break;
        }
        for (v, c) in updates {
            vertex[v] = Some(c);
        }
    }
}
