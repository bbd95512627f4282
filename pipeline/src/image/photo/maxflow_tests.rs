//! Max-flow checked against brute force on tiny random grids.

use super::*;

/// Brute force over all labelings of a tiny grid.
fn brute(w: usize, h: usize, t: &[(i32, i32)], e: &[(usize, usize, Edge, i32)]) -> i64 {
    let n = w * h;
    let mut best = i64::MAX;
    for m in 0u32..(1 << n) {
        let src = |i: usize| m & (1 << i) != 0;
        let mut c = 0i64;
        for (i, &(to_sink, to_source)) in t.iter().enumerate() {
            c += i64::from(if src(i) { to_source } else { to_sink });
        }
        for &(x, y, edge, cap) in e {
            let (dx, dy): (isize, isize) = match edge {
                Edge::East => (1, 0),
                Edge::South => (0, 1),
                Edge::SouthEast => (1, 1),
                Edge::SouthWest => (-1, 1),
            };
            let (nx, ny) = (x as isize + dx, y as isize + dy);
            if nx < 0 || nx >= w as isize || ny >= h as isize {
                continue;
            }
            if src(y * w + x) != src(ny as usize * w + nx as usize) {
                c += i64::from(cap);
            }
        }
        best = best.min(c);
    }
    best
}

#[test]
fn matches_brute_force_on_random_grids() {
    let mut s = 12345u32;
    let mut rnd = |m: i32| {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        ((s >> 8) % m as u32) as i32
    };
    for _ in 0..200 {
        let (w, h) = (3 + rnd(2) as usize, 3);
        let mut g = GridGraph::new(w, h);
        let mut t = Vec::new();
        let mut e = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let (a, b) = (rnd(20), rnd(20));
                g.set_terminals(x, y, a, b);
                t.push((a, b));
                for edge in [Edge::East, Edge::South, Edge::SouthEast, Edge::SouthWest] {
                    let c = rnd(12);
                    g.set_edge(x, y, edge, c);
                    e.push((x, y, edge, c));
                }
            }
        }
        let flow = g.solve();
        let constant: i64 = t.iter().map(|&(a, b)| i64::from(a.min(b))).sum();
        let expected = brute(w, h, &t, &e);
        assert_eq!(flow + constant, expected);
        // The labeling read back has exactly the cut's cost.
        let mut cost = 0i64;
        for y in 0..h {
            for x in 0..w {
                let (a, b) = t[y * w + x];
                cost += i64::from(if g.on_source_side(x, y) { b } else { a });
            }
        }
        for &(x, y, edge, cap) in &e {
            let (dx, dy): (isize, isize) = match edge {
                Edge::East => (1, 0),
                Edge::South => (0, 1),
                Edge::SouthEast => (1, 1),
                Edge::SouthWest => (-1, 1),
            };
            let (nx, ny) = (x as isize + dx, y as isize + dy);
            if nx < 0 || nx >= w as isize || ny >= h as isize {
                continue;
            }
            if g.on_source_side(x, y) != g.on_source_side(nx as usize, ny as usize) {
                cost += i64::from(cap);
            }
        }
        assert_eq!(cost, expected);
    }
}
