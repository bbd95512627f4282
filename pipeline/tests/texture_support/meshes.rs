//! Analytic test meshes: closed, outward-wound, with shared vertices.

use std::collections::HashMap;

use orfeas_pipeline::mesh::Mesh;

fn mesh(positions: Vec<[f32; 3]>, triangles: Vec<[u32; 3]>) -> Mesh {
    Mesh {
        positions,
        triangles,
        ..Mesh::default()
    }
}

fn normalize(p: [f32; 3], r: f32) -> [f32; 3] {
    let l = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
    p.map(|v| v / l * r)
}

/// An icosphere of radius `r`, the icosahedron subdivided `levels` times (20·4^levels faces).
pub fn sphere(r: f32, levels: u32) -> Mesh {
    let t = (1.0 + 5f32.sqrt()) / 2.0;
    let mut positions: Vec<[f32; 3]> = [
        [-1.0, t, 0.0],
        [1.0, t, 0.0],
        [-1.0, -t, 0.0],
        [1.0, -t, 0.0],
        [0.0, -1.0, t],
        [0.0, 1.0, t],
        [0.0, -1.0, -t],
        [0.0, 1.0, -t],
        [t, 0.0, -1.0],
        [t, 0.0, 1.0],
        [-t, 0.0, -1.0],
        [-t, 0.0, 1.0],
    ]
    .into_iter()
    .map(|p| normalize(p, r))
    .collect();
    let mut triangles: Vec<[u32; 3]> = vec![
        [0, 11, 5],
        [0, 5, 1],
        [0, 1, 7],
        [0, 7, 10],
        [0, 10, 11],
        [1, 5, 9],
        [5, 11, 4],
        [11, 10, 2],
        [10, 7, 6],
        [7, 1, 8],
        [3, 9, 4],
        [3, 4, 2],
        [3, 2, 6],
        [3, 6, 8],
        [3, 8, 9],
        [4, 9, 5],
        [2, 4, 11],
        [6, 2, 10],
        [8, 6, 7],
        [9, 8, 1],
    ];
    for _ in 0..levels {
        let mut mid: HashMap<(u32, u32), u32> = HashMap::new();
        let mut split = |a: u32, b: u32, positions: &mut Vec<[f32; 3]>| {
            *mid.entry((a.min(b), a.max(b))).or_insert_with(|| {
                let (p, q) = (positions[a as usize], positions[b as usize]);
                positions.push(normalize([0, 1, 2].map(|k| (p[k] + q[k]) / 2.0), r));
                (positions.len() - 1) as u32
            })
        };
        triangles = triangles
            .iter()
            .flat_map(|&[a, b, c]| {
                let ab = split(a, b, &mut positions);
                let bc = split(b, c, &mut positions);
                let ca = split(c, a, &mut positions);
                [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
            })
            .collect();
    }
    mesh(positions, triangles)
}

/// A torus around the z axis: ring radius `big`, tube radius `small`, `n × m` quads.
pub fn torus(big: f32, small: f32, n: u32, m: u32) -> Mesh {
    let mut positions = Vec::new();
    for i in 0..n {
        let u = i as f32 / n as f32 * std::f32::consts::TAU;
        for j in 0..m {
            let v = j as f32 / m as f32 * std::f32::consts::TAU;
            let ring = big + small * v.cos();
            positions.push([ring * u.cos(), ring * u.sin(), small * v.sin()]);
        }
    }
    let id = |i: u32, j: u32| (i % n) * m + (j % m);
    let mut triangles = Vec::new();
    for i in 0..n {
        for j in 0..m {
            let (a, b, c, d) = (id(i, j), id(i + 1, j), id(i + 1, j + 1), id(i, j + 1));
            triangles.push([a, b, c]);
            triangles.push([a, c, d]);
        }
    }
    mesh(positions, triangles)
}

/// The cube `[-h, h]³`, each face a `k × k` grid of quads.
pub fn cube(h: f32, k: u32) -> Mesh {
    let mut index: HashMap<[i64; 3], u32> = HashMap::new();
    let mut positions = Vec::new();
    let mut triangles = Vec::new();
    let mut vertex = |p: [f32; 3], positions: &mut Vec<[f32; 3]>| {
        let key = p.map(|v| (v * 1e5).round() as i64);
        *index.entry(key).or_insert_with(|| {
            positions.push(p);
            (positions.len() - 1) as u32
        })
    };
    // For each face: its normal axis and sign, and two in-plane axes forming a right-handed
    // frame with the outward normal.
    for axis in 0..3 {
        for sign in [-1.0f32, 1.0] {
            let (a, b) = ((axis + 1) % 3, (axis + 2) % 3);
            let (a, b) = if sign > 0.0 { (a, b) } else { (b, a) };
            let at = |s: u32, t: u32| {
                let mut p = [0f32; 3];
                p[axis] = sign * h;
                p[a] = -h + 2.0 * h * s as f32 / k as f32;
                p[b] = -h + 2.0 * h * t as f32 / k as f32;
                p
            };
            for s in 0..k {
                for t in 0..k {
                    let q = [at(s, t), at(s + 1, t), at(s + 1, t + 1), at(s, t + 1)]
                        .map(|p| vertex(p, &mut positions));
                    triangles.push([q[0], q[1], q[2]]);
                    triangles.push([q[0], q[2], q[3]]);
                }
            }
        }
    }
    mesh(positions, triangles)
}
