//! Mesh clean-up as Hunyuan3D-2's tools offer it: floaters (components under 0.5 % of the faces),
//! degenerate faces, and quadric-error decimation to a face budget (meshoptimizer).

use crate::mesh::Mesh;

#[derive(Debug, Clone, PartialEq)]
pub struct PostprocessOptions {
    /// Components with fewer than this share of all faces are removed (Hunyuan3D-2: 0.005).
    pub floater_face_ratio: Option<f64>,
    pub remove_degenerate: bool,
    /// Reduce to at most this many faces.
    pub face_count: Option<usize>,
}

impl Default for PostprocessOptions {
    fn default() -> Self {
        PostprocessOptions {
            floater_face_ratio: Some(0.005),
            remove_degenerate: true,
            face_count: None,
        }
    }
}

pub fn postprocess(mut mesh: Mesh, opts: &PostprocessOptions) -> Mesh {
    if opts.remove_degenerate {
        remove_degenerate(&mut mesh);
    }
    if let Some(ratio) = opts.floater_face_ratio {
        remove_floaters(&mut mesh, ratio);
    }
    if let Some(target) = opts.face_count {
        decimate(&mut mesh, target);
    }
    mesh.compact();
    mesh
}

/// Drops faces that repeat a vertex or touch a non-finite vertex.
pub fn remove_degenerate(mesh: &mut Mesh) {
    let finite: Vec<bool> = mesh
        .positions
        .iter()
        .map(|p| p.iter().all(|v| v.is_finite()))
        .collect();
    mesh.triangles.retain(|t| {
        t[0] != t[1] && t[1] != t[2] && t[0] != t[2] && t.iter().all(|&i| finite[i as usize])
    });
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let p = parent[x as usize];
        parent[x as usize] = parent[p as usize];
        x = p;
    }
    x
}

/// Removes connected components (sharing vertices) with fewer than `ratio` of all faces.
pub fn remove_floaters(mesh: &mut Mesh, ratio: f64) {
    let total = mesh.triangles.len();
    if total == 0 {
        return;
    }
    let mut parent: Vec<u32> = (0..mesh.positions.len() as u32).collect();
    for t in &mesh.triangles {
        let a = find(&mut parent, t[0]);
        for &v in &t[1..] {
            let b = find(&mut parent, v);
            if a != b {
                parent[b as usize] = a;
            }
        }
    }
    let mut faces = vec![0usize; mesh.positions.len()];
    let roots: Vec<u32> = mesh
        .triangles
        .iter()
        .map(|t| find(&mut parent, t[0]))
        .collect();
    for &r in &roots {
        faces[r as usize] += 1;
    }
    let min_faces = (total as f64 * ratio).ceil() as usize;
    let mut keep = roots.iter().map(|&r| faces[r as usize] >= min_faces);
    mesh.triangles.retain(|_| keep.next().unwrap_or(true));
}

/// Quadric edge-collapse decimation (meshoptimizer) to at most `target` faces.
///
/// Collapses can fold a thin part into two coincident, opposite triangles; such pairs are removed.
/// If the input was closed and the result still is not, the budget is relaxed (×1.5, up to four
/// times) and, failing that, the mesh is kept as it was: a watertight mesh is never traded for a
/// lower face count.
pub fn decimate(mesh: &mut Mesh, target: usize) {
    if mesh.triangles.len() <= target || target == 0 {
        return;
    }
    let bytes: Vec<u8> = mesh
        .positions
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let Ok(adapter) = meshopt::VertexDataAdapter::new(&bytes, 12, 0) else {
        return;
    };
    let indices: Vec<u32> = mesh.triangles.iter().flatten().copied().collect();
    let was_closed = mesh.topology_defects() == (0, 0);
    let mut budget = target;
    for _ in 0..5 {
        // The face budget decides; the error bound is set high enough never to stop it early.
        let out = meshopt::simplify(
            &indices,
            &adapter,
            budget * 3,
            1.0,
            meshopt::SimplifyOptions::None,
            None,
        );
        let mut candidate = Mesh {
            positions: mesh.positions.clone(),
            triangles: out.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
            colors: mesh.colors.clone(),
            ..Mesh::default()
        };
        remove_folded_pairs(&mut candidate);
        if !was_closed || candidate.topology_defects() == (0, 0) {
            *mesh = candidate;
            return;
        }
        budget = budget + budget / 2;
        if budget >= mesh.triangles.len() {
            break;
        }
    }
    tracing::warn!(
        target,
        "decimation could not keep the mesh closed; keeping all faces"
    );
}

/// Removes every triangle whose vertex set is shared with another triangle.
fn remove_folded_pairs(mesh: &mut Mesh) {
    let mut keys: Vec<([u32; 3], usize)> = mesh
        .triangles
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut k = *t;
            k.sort_unstable();
            (k, i)
        })
        .collect();
    keys.sort_unstable();
    let mut drop = vec![false; mesh.triangles.len()];
    for w in keys.windows(2) {
        if w[0].0 == w[1].0 {
            drop[w[0].1] = true;
            drop[w[1].1] = true;
        }
    }
    let mut it = drop.into_iter();
    mesh.triangles.retain(|_| !it.next().unwrap_or(false));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::tests::cube;

    #[test]
    fn floaters_go_and_the_body_stays() {
        let mut mesh = cube();
        let n = mesh.positions.len() as u32;
        // A tiny far-away triangle: 1 face of 13 total is under 10 %.
        mesh.positions
            .extend([[5.0, 5.0, 5.0], [5.1, 5.0, 5.0], [5.0, 5.1, 5.0]]);
        mesh.triangles.push([n, n + 1, n + 2]);
        let out = postprocess(
            mesh,
            &PostprocessOptions {
                floater_face_ratio: Some(0.1),
                ..PostprocessOptions::default()
            },
        );
        assert_eq!(out.triangles.len(), 12);
        assert_eq!(out.positions.len(), 8);
        assert!((out.signed_volume() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn decimation_meets_the_budget_and_stays_closed() {
        let vol = crate::shape::Volume::from_fn([40, 40, 40], |i, j, k| {
            let p = [i, j, k].map(|c| c as f32 - 19.5);
            // A flattened ellipsoid with thin rims, where collapses like to fold.
            1.0 - ((p[0] / 17.0).powi(2) + (p[1] / 15.0).powi(2) + (p[2] / 3.0).powi(2)).sqrt()
        });
        let mut mesh = crate::shape::marching_cubes(&vol, 0.0);
        assert_eq!(mesh.topology_defects(), (0, 0));
        let before = mesh.signed_volume();
        decimate(&mut mesh, 500);
        assert!(
            mesh.triangles.len() <= 750,
            "{} faces",
            mesh.triangles.len()
        );
        assert_eq!(mesh.topology_defects(), (0, 0));
        assert!((mesh.signed_volume() - before).abs() / before < 0.05);
    }

    #[test]
    fn degenerate_faces_go() {
        let mut mesh = cube();
        mesh.triangles.push([0, 0, 1]);
        mesh.positions.push([f32::NAN, 0.0, 0.0]);
        mesh.triangles.push([8, 1, 2]);
        remove_degenerate(&mut mesh);
        assert_eq!(mesh.triangles.len(), 12);
    }
}
