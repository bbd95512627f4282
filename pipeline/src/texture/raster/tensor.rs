//! The rasterizer on a burn backend: the GPU's in a worker on CUDA (where the renders and bakes
//! of a 2048² texture are worth moving off the CPU), ndarray in the tests that hold it to the
//! host scan.
//!
//! Tile-binned and data-parallel: the host sorts each face into the 8×8 pixel tiles its bounds
//! reach (the reference's loop bounds), then the device tests every pixel of a tile against every
//! face of its bin at once — `[tiles, 64 pixels, faces]` barycentrics, the inclusive inside test,
//! depth — and resolves the z-buffer as the reference's 64-bit key does: the nearest quantised
//! depth, then the lowest face id. Both reductions are minima over floats (quantised depths stay
//! below 2²⁴ for depths in `[0, 64)`, face ids below 2²⁴, both exact in f32), so no 64-bit integers are needed on the
//! device. Tiles are sorted by bin size and launched in chunks padded to the chunk's largest
//! bin, so memory stays bounded however the faces crowd.
//!
//! Arithmetic is the reference's in f32, except that its reciprocal area and first weight are
//! computed in f64 on the host and in f32 here: weights may differ in the last place, and a pixel
//! centre exactly on an edge (or a depth on a quantum boundary) may go to the neighbouring face.
//! The tests bound both.

use burn::tensor::{Bool, Tensor, TensorData, backend::Backend};

use super::{Raster, Rasterizer, TENSOR_FACE_LIMIT, pixel_span};

/// Pixels per tile side.
const TILE: usize = 8;
const TILE_PIXELS: usize = TILE * TILE;

/// Elements of one `[tiles, pixels, faces]` intermediate per launch (16 MiB of f32; a launch
/// holds about a dozen such, so a rasterization never needs more than ≈ 200 MiB on the device).
const CHUNK_ELEMENTS: usize = 1 << 22;

/// Per-face columns uploaded: the three screen corners, the face id, the three clip `w`.
const COLUMNS: usize = 13;

/// "No candidate" in the minimum reductions.
const NONE: f32 = f32::MAX;

/// The reference's depth quantum (`2 << 17`).
const DEPTH_QUANTA: f32 = 262_144.0;

/// Rasterizes with tensor operations on a burn device.
#[derive(Debug, Clone)]
pub struct TensorRasterizer<B: Backend> {
    device: B::Device,
}

impl<B: Backend> TensorRasterizer<B> {
    pub fn new(device: B::Device) -> Self {
        TensorRasterizer { device }
    }
}

impl<B: Backend> Rasterizer for TensorRasterizer<B>
where
    B::Device: Send + Sync,
{
    fn scan(
        &self,
        screen: &[[f32; 3]],
        w: Option<&[f32]>,
        triangles: &[[u32; 3]],
        width: usize,
        height: usize,
    ) -> Raster {
        if triangles.len() >= TENSOR_FACE_LIMIT {
            // Face ids would no longer be exact in f32.
            return super::host::scan(screen, w, triangles, width, height);
        }
        let mut raster = Raster::empty(width, height);
        if width == 0 || height == 0 {
            return raster;
        }
        let bins = Bins::of(screen, triangles, width, height);
        for chunk in bins.chunks() {
            let resolved = self.resolve(screen, w, triangles, &bins, &chunk);
            scatter(&mut raster, &bins, &chunk, &resolved);
        }
        raster
    }

    fn name(&self) -> &'static str {
        std::any::type_name::<B>()
    }
}

/// The faces each tile must test.
struct Bins {
    tiles_x: usize,
    width: usize,
    height: usize,
    faces: Vec<Vec<u32>>,
    /// Non-empty tiles, fullest first.
    order: Vec<usize>,
}

impl Bins {
    fn of(screen: &[[f32; 3]], triangles: &[[u32; 3]], width: usize, height: usize) -> Bins {
        let (tiles_x, tiles_y) = (width.div_ceil(TILE), height.div_ceil(TILE));
        let mut faces: Vec<Vec<u32>> = vec![Vec::new(); tiles_x * tiles_y];
        for (f, t) in triangles.iter().enumerate() {
            let Some([a, b, c]) = super::corners(screen, t) else {
                continue;
            };
            let xs = [a[0], b[0], c[0]];
            let ys = [a[1], b[1], c[1]];
            let (Some((x0, x1)), Some((y0, y1))) = (pixel_span(xs, width), pixel_span(ys, height))
            else {
                continue;
            };
            for ty in y0 / TILE..=y1 / TILE {
                for tx in x0 / TILE..=x1 / TILE {
                    faces[ty * tiles_x + tx].push(f as u32);
                }
            }
        }
        let mut order: Vec<usize> = (0..faces.len()).filter(|&t| !faces[t].is_empty()).collect();
        order.sort_by_key(|&t| std::cmp::Reverse(faces[t].len()));
        Bins {
            tiles_x,
            width,
            height,
            faces,
            order,
        }
    }

    /// Consecutive runs of `order`, each padded to its first (largest) bin.
    fn chunks(&self) -> Vec<Chunk> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < self.order.len() {
            let slots = self.faces[self.order[start]].len();
            let fit = (CHUNK_ELEMENTS / (TILE_PIXELS * slots)).max(1);
            let end = (start + fit).min(self.order.len());
            out.push(Chunk {
                tiles: start..end,
                slots,
            });
            start = end;
        }
        out
    }

    fn origin(&self, tile: usize) -> (usize, usize) {
        ((tile % self.tiles_x) * TILE, (tile / self.tiles_x) * TILE)
    }
}

struct Chunk {
    /// Positions in [`Bins::order`].
    tiles: std::ops::Range<usize>,
    /// Faces per tile after padding.
    slots: usize,
}

/// Per pixel of a chunk: the winning face id (or [`NONE`]), its three weights and the depth.
const OUT_COLUMNS: usize = 5;

impl<B: Backend> TensorRasterizer<B> {
    fn resolve(
        &self,
        screen: &[[f32; 3]],
        w: Option<&[f32]>,
        triangles: &[[u32; 3]],
        bins: &Bins,
        chunk: &Chunk,
    ) -> Vec<f32> {
        let tiles = chunk.tiles.len();
        let slots = chunk.slots;
        let mut columns = vec![0f32; tiles * slots * COLUMNS];
        let mut origins = Vec::with_capacity(tiles * 2);
        for (i, &tile) in bins.order[chunk.tiles.clone()].iter().enumerate() {
            let (ox, oy) = bins.origin(tile);
            origins.extend([ox as f32 + 0.5, oy as f32 + 0.5]);
            for s in 0..slots {
                let row = &mut columns[(i * slots + s) * COLUMNS..][..COLUMNS];
                match bins.faces[tile].get(s) {
                    Some(&f) => {
                        let t = triangles[f as usize];
                        for (k, &v) in t.iter().enumerate() {
                            row[k * 3..k * 3 + 3].copy_from_slice(&screen[v as usize]);
                            row[10 + k] = w.map_or(1.0, |w| w[v as usize]);
                        }
                        row[9] = f as f32;
                    }
                    // Padding: a degenerate face with no id, never inside.
                    None => row[9] = -1.0,
                }
            }
        }
        let dev = &self.device;
        let faces =
            Tensor::<B, 3>::from_data(TensorData::new(columns, [tiles, slots, COLUMNS]), dev);
        let col = |i: usize| -> Tensor<B, 3> {
            faces
                .clone()
                .slice([0..tiles, 0..slots, i..i + 1])
                .reshape([tiles, 1, slots])
        };
        let local: Vec<f32> = (0..TILE_PIXELS)
            .flat_map(|p| [(p % TILE) as f32, (p / TILE) as f32])
            .collect();
        let local = Tensor::<B, 3>::from_data(TensorData::new(local, [1, TILE_PIXELS, 2]), dev);
        let origins = Tensor::<B, 3>::from_data(TensorData::new(origins, [tiles, 1, 2]), dev);
        let centres =
            origins.expand([tiles, TILE_PIXELS, 2]) + local.expand([tiles, TILE_PIXELS, 2]);
        let full = [tiles, TILE_PIXELS, slots];
        let px = centres
            .clone()
            .slice([0..tiles, 0..TILE_PIXELS, 0..1])
            .expand(full);
        let py = centres.slice([0..tiles, 0..TILE_PIXELS, 1..2]).expand(full);
        let wide = |t: Tensor<B, 3>| t.expand(full);

        let (ax, ay, az) = (col(0), col(1), col(2));
        let (bx, by, bz) = (col(3), col(4), col(5));
        let (cx, cy, cz) = (col(6), col(7), col(8));
        let id = col(9);
        // The reference's area2(a, b, c) = (c.x − a.x)(b.y − a.y) − (b.x − a.x)(c.y − a.y).
        let (cax, cay) = (cx - ax.clone(), cy - ay.clone());
        let (bax, bay) = (bx - ax.clone(), by - ay.clone());
        let area = cax.clone() * bay.clone() - bax.clone() * cay.clone();
        let valid: Tensor<B, 3, Bool> = area
            .clone()
            .not_equal_elem(0.0)
            .bool_and(id.clone().greater_equal_elem(0.0));
        // A true division: burn's `recip` may use a fast approximate reciprocal (≈ 14 bits on
        // AVX-512), far coarser than the reference's.
        let inv = wide(area.ones_like() / area);
        let (pax, pay) = (px - wide(ax), py - wide(ay));
        let beta = (wide(cax) * pay.clone() - pax.clone() * wide(cay.clone())) * inv.clone();
        let gamma = (pax * wide(bay) - wide(bax) * pay) * inv;
        let alpha = (beta.clone().neg() + 1.0) - gamma.clone();
        let unit = |t: &Tensor<B, 3>| -> Tensor<B, 3, Bool> {
            t.clone()
                .greater_equal_elem(0.0)
                .bool_and(t.clone().lower_equal_elem(1.0))
        };
        let depth = alpha.clone() * wide(az) + beta.clone() * wide(bz) + gamma.clone() * wide(cz);
        let inside = unit(&alpha)
            .bool_and(unit(&beta))
            .bool_and(unit(&gamma))
            .bool_and(valid.expand(full))
            .bool_and(depth.clone().greater_equal_elem(0.0));
        let outside = inside.clone().bool_not();

        // Nearest quantised depth, then the lowest face id among the faces at that depth.
        let quantised = (depth.clone() * DEPTH_QUANTA)
            .floor()
            .mask_fill(outside.clone(), NONE);
        let nearest = quantised.clone().min_dim(2).expand(full);
        let at_nearest = quantised.equal(nearest).bool_and(inside);
        let ids = wide(id).mask_fill(at_nearest.clone().bool_not(), NONE);
        let winner = ids.clone().min_dim(2);
        let won = ids.equal(winner.clone().expand(full)).bool_and(at_nearest);
        let lost = won.bool_not();
        let pick = |t: Tensor<B, 3>| t.mask_fill(lost.clone(), 0.0).sum_dim(2);

        let (mut al, mut be, mut ga) = (pick(alpha), pick(beta), pick(gamma));
        let depth = pick(depth);
        if w.is_some() {
            // Perspective-correct weights, as the reference divides by each corner's w.
            al = al / pick(wide(col(10)));
            be = be / pick(wide(col(11)));
            ga = ga / pick(wide(col(12)));
            let sum = al.clone() + be.clone() + ga.clone();
            let s = sum.ones_like() / sum;
            al = al * s.clone();
            be = be * s.clone();
            ga = ga * s;
        }
        let out = Tensor::cat(vec![winner, al, be, ga, depth], 2);
        out.into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 tensor data")
    }
}

/// Writes a chunk's pixels into the raster (tiles at the image's right and bottom edges hang
/// over it; those pixels are dropped).
fn scatter(raster: &mut Raster, bins: &Bins, chunk: &Chunk, resolved: &[f32]) {
    for (i, &tile) in bins.order[chunk.tiles.clone()].iter().enumerate() {
        let (ox, oy) = bins.origin(tile);
        for p in 0..TILE_PIXELS {
            let (x, y) = (ox + p % TILE, oy + p / TILE);
            if x >= bins.width || y >= bins.height {
                continue;
            }
            let v = &resolved[(i * TILE_PIXELS + p) * OUT_COLUMNS..][..OUT_COLUMNS];
            if v[0] == NONE {
                continue;
            }
            let k = y * bins.width + x;
            raster.face[k] = v[0] as u32;
            raster.bary[k] = [v[1], v[2], v[3]];
            raster.depth[k] = v[4];
        }
    }
}
