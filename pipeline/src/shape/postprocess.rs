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

/// Quadric edge-collapse decimation to at most `target` faces.
pub fn decimate(mesh: &mut Mesh, target: usize) {
    if mesh.triangles.len() <= target || target == 0 {
        return;
    }
    let flat: Vec<f32> = mesh.positions.iter().flatten().copied().collect();
    let bytes: Vec<u8> = flat.iter().flat_map(|v| v.to_le_bytes()).collect();
    let Ok(adapter) = meshopt::VertexDataAdapter::new(&bytes, 12, 0) else {
        return;
    };
    let indices: Vec<u32> = mesh.triangles.iter().flatten().copied().collect();
    // The face budget decides; the error bound is set high enough never to stop it early.
    let out = meshopt::simplify(
        &indices,
        &adapter,
        target * 3,
        1.0,
        meshopt::SimplifyOptions::None,
        None,
    );
    mesh.triangles = out.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
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
    fn degenerate_faces_go() {
        let mut mesh = cube();
        mesh.triangles.push([0, 0, 1]);
        mesh.positions.push([f32::NAN, 0.0, 0.0]);
        mesh.triangles.push([8, 1, 2]);
        remove_degenerate(&mut mesh);
        assert_eq!(mesh.triangles.len(), 12);
    }
}
