//! Minimum s-t cut on an 8-connected pixel grid by the Boykov–Kolmogorov augmenting-path
//! algorithm ("An Experimental Comparison of Min-Cut/Max-Flow Algorithms for Energy
//! Minimization in Vision", 2004): two search trees grown from the terminals, reused between
//! augmentations, with orphans re-adopted instead of restarting the search.
//!
//! The grid is padded by one node on every side. Padding nodes carry no capacity, so they are
//! never reached, and every real node has all eight neighbours in range: no bounds checks in
//! the inner loops. Arc `a = node * 8 + dir` runs from `node` to `node + offset(dir)`; its
//! reverse ("sister") is the same edge seen from the other end, direction `dir ^ 1`.
//! Capacities are integers so that saturation (`== 0`) is exact.

use std::collections::VecDeque;

/// Capacity standing in for a hard constraint; far above any sum of soft costs on one node.
pub(super) const HARD: i32 = 1 << 26;

const NONE: u32 = u32::MAX;
const TERMINAL: u32 = u32::MAX - 1;
const ORPHAN: u32 = u32::MAX - 2;

/// Undirected grid edges a caller sets, by direction index: east, south, south-east, south-west.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Edge {
    East = 0,
    South = 2,
    SouthEast = 4,
    SouthWest = 6,
}

#[derive(Debug)]
pub(super) struct GridGraph {
    width: usize,
    height: usize,
    /// Padded row length.
    stride: usize,
    offsets: [isize; 8],
    rcap: Vec<i32>,
    /// Per-node state in one record: the search touches all of it at once.
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Residual terminal capacity: > 0 towards the source, < 0 towards the sink.
    tr_cap: i32,
    /// Arc to the parent in the search tree, or NONE / TERMINAL / ORPHAN.
    parent: u32,
    timestamp: u32,
    dist: u32,
    is_sink: bool,
    active: bool,
}

impl GridGraph {
    pub(super) fn new(width: usize, height: usize) -> Self {
        let stride = width + 2;
        let n = stride * (height + 2);
        let s = stride as isize;
        GridGraph {
            width,
            height,
            stride,
            // Pairs differ in the lowest bit so that `dir ^ 1` is the opposite direction.
            offsets: [1, -1, s, -s, s + 1, -s - 1, s - 1, -s + 1],
            rcap: vec![0; n * 8],
            nodes: vec![
                Node {
                    tr_cap: 0,
                    parent: NONE,
                    timestamp: 0,
                    dist: 0,
                    is_sink: false,
                    active: false,
                };
                n
            ],
        }
    }

    fn node(&self, x: usize, y: usize) -> usize {
        (y + 1) * self.stride + x + 1
    }

    fn head(&self, a: usize) -> usize {
        ((a / 8) as isize + self.offsets[a % 8]) as usize
    }

    fn sister(&self, a: usize) -> usize {
        self.head(a) * 8 + ((a % 8) ^ 1)
    }

    /// Cost `to_sink` is paid when the pixel ends on the sink side, `to_source` when it ends on
    /// the source side; only their difference matters to the cut.
    pub(super) fn set_terminals(&mut self, x: usize, y: usize, to_sink: i32, to_source: i32) {
        let i = self.node(x, y);
        self.nodes[i].tr_cap = to_sink.saturating_sub(to_source);
    }

    /// Symmetric capacity between `(x, y)` and its neighbour in direction `edge`; edges leaving
    /// the image are ignored.
    pub(super) fn set_edge(&mut self, x: usize, y: usize, edge: Edge, cap: i32) {
        let (dx, dy): (isize, isize) = match edge {
            Edge::East => (1, 0),
            Edge::South => (0, 1),
            Edge::SouthEast => (1, 1),
            Edge::SouthWest => (-1, 1),
        };
        let (nx, ny) = (x as isize + dx, y as isize + dy);
        if nx < 0 || nx >= self.width as isize || ny >= self.height as isize {
            return;
        }
        let a = self.node(x, y) * 8 + edge as usize;
        let s = self.sister(a);
        self.rcap[a] = cap.max(0);
        self.rcap[s] = cap.max(0);
    }

    /// Whether the pixel ends on the source side of the minimum cut (after [`Self::solve`]).
    pub(super) fn on_source_side(&self, x: usize, y: usize) -> bool {
        let i = self.node(x, y);
        self.nodes[i].parent != NONE && !self.nodes[i].is_sink
    }

    /// Runs the max-flow; returns the flow value (without the constant part of the terminal
    /// costs).
    pub(super) fn solve(&mut self) -> i64 {
        let mut queue: VecDeque<u32> = VecDeque::new();
        let mut orphans: VecDeque<u32> = VecDeque::new();
        for i in 0..self.nodes.len() {
            if self.nodes[i].tr_cap != 0 {
                self.nodes[i].is_sink = self.nodes[i].tr_cap < 0;
                self.nodes[i].parent = TERMINAL;
                self.nodes[i].timestamp = 0;
                self.nodes[i].dist = 1;
                self.nodes[i].active = true;
                queue.push_back(i as u32);
            }
        }
        let mut time = 0u32;
        let mut flow = 0i64;
        let mut current: Option<usize> = None;
        loop {
            if let Some(c) = current.filter(|&c| self.nodes[c].parent == NONE) {
                // Freed by an orphan search while it was current: off the active list too.
                self.nodes[c].active = false;
                current = None;
            }
            let i = match current {
                Some(i) => i,
                None => match self.next_active(&mut queue) {
                    Some(i) => i,
                    None => break,
                },
            };
            let middle = self.grow(i, &mut queue);
            time = time.wrapping_add(1);
            match middle {
                Some(a) => {
                    // Keep growing from the same node after the augmentation.
                    current = Some(i);
                    flow += i64::from(self.augment(a, &mut orphans));
                    while let Some(o) = orphans.pop_front() {
                        self.adopt(o as usize, time, &mut queue, &mut orphans);
                    }
                }
                None => {
                    current = None;
                    self.nodes[i].active = false;
                }
            }
        }
        flow
    }

    fn next_active(&mut self, queue: &mut VecDeque<u32>) -> Option<usize> {
        while let Some(i) = queue.pop_front() {
            let i = i as usize;
            if self.nodes[i].parent != NONE && self.nodes[i].active {
                return Some(i);
            }
            self.nodes[i].active = false;
        }
        None
    }

    fn set_active(&mut self, j: usize, queue: &mut VecDeque<u32>) {
        if !self.nodes[j].active {
            self.nodes[j].active = true;
            queue.push_back(j as u32);
        }
    }

    /// Grows the tree of `i` by one layer; returns an arc from the source tree to the sink tree
    /// with residual capacity when the trees touch.
    fn grow(&mut self, i: usize, queue: &mut VecDeque<u32>) -> Option<usize> {
        let sink = self.nodes[i].is_sink;
        for d in 0..8 {
            let a = i * 8 + d;
            let sis = self.sister(a);
            // Source trees grow along arcs out of i, sink trees along arcs into i.
            let cap = if sink { self.rcap[sis] } else { self.rcap[a] };
            if cap <= 0 {
                continue;
            }
            let j = self.head(a);
            if self.nodes[j].parent == NONE {
                self.nodes[j].is_sink = sink;
                self.nodes[j].parent = sis as u32;
                self.nodes[j].timestamp = self.nodes[i].timestamp;
                self.nodes[j].dist = self.nodes[i].dist + 1;
                self.set_active(j, queue);
            } else if self.nodes[j].is_sink != sink {
                return Some(if sink { sis } else { a });
            } else if self.nodes[j].timestamp <= self.nodes[i].timestamp
                && self.nodes[j].dist > self.nodes[i].dist
            {
                // Shorter paths to the terminal keep the trees shallow.
                self.nodes[j].parent = sis as u32;
                self.nodes[j].timestamp = self.nodes[i].timestamp;
                self.nodes[j].dist = self.nodes[i].dist + 1;
            }
        }
        None
    }

    /// Pushes the bottleneck flow along source → tail(middle) → head(middle) → sink and turns
    /// nodes whose parent arc saturated into orphans.
    fn augment(&mut self, middle: usize, orphans: &mut VecDeque<u32>) -> i32 {
        let mid_sis = self.sister(middle);
        let mut bottleneck = self.rcap[middle];
        let mut i = self.head(mid_sis);
        loop {
            let a = self.nodes[i].parent;
            if a == TERMINAL {
                break;
            }
            let a = a as usize;
            bottleneck = bottleneck.min(self.rcap[self.sister(a)]);
            i = self.head(a);
        }
        bottleneck = bottleneck.min(self.nodes[i].tr_cap);
        let mut i = self.head(middle);
        loop {
            let a = self.nodes[i].parent;
            if a == TERMINAL {
                break;
            }
            let a = a as usize;
            bottleneck = bottleneck.min(self.rcap[a]);
            i = self.head(a);
        }
        bottleneck = bottleneck.min(-self.nodes[i].tr_cap);

        self.rcap[mid_sis] += bottleneck;
        self.rcap[middle] -= bottleneck;
        let mut i = self.head(mid_sis);
        loop {
            let a = self.nodes[i].parent;
            if a == TERMINAL {
                break;
            }
            let a = a as usize;
            let s = self.sister(a);
            self.rcap[a] += bottleneck;
            self.rcap[s] -= bottleneck;
            if self.rcap[s] == 0 {
                self.nodes[i].parent = ORPHAN;
                orphans.push_front(i as u32);
            }
            i = self.head(a);
        }
        self.nodes[i].tr_cap -= bottleneck;
        if self.nodes[i].tr_cap == 0 {
            self.nodes[i].parent = ORPHAN;
            orphans.push_front(i as u32);
        }
        let mut i = self.head(middle);
        loop {
            let a = self.nodes[i].parent;
            if a == TERMINAL {
                break;
            }
            let a = a as usize;
            let s = self.sister(a);
            self.rcap[s] += bottleneck;
            self.rcap[a] -= bottleneck;
            if self.rcap[a] == 0 {
                self.nodes[i].parent = ORPHAN;
                orphans.push_front(i as u32);
            }
            i = self.head(a);
        }
        self.nodes[i].tr_cap += bottleneck;
        if self.nodes[i].tr_cap == 0 {
            self.nodes[i].parent = ORPHAN;
            orphans.push_front(i as u32);
        }
        bottleneck
    }

    /// Finds `i` a new parent in its own tree that still reaches the terminal, preferring the
    /// shortest; without one, `i` becomes free and its children become orphans.
    fn adopt(
        &mut self,
        i: usize,
        time: u32,
        queue: &mut VecDeque<u32>,
        orphans: &mut VecDeque<u32>,
    ) {
        let sink = self.nodes[i].is_sink;
        let mut best: Option<(usize, u32)> = None;
        for d in 0..8 {
            let a0 = i * 8 + d;
            // The arc that would carry flow between the new parent j and i.
            let cap = if sink {
                self.rcap[a0]
            } else {
                self.rcap[self.sister(a0)]
            };
            if cap <= 0 {
                continue;
            }
            let j0 = self.head(a0);
            if self.nodes[j0].is_sink != sink || self.nodes[j0].parent == NONE {
                continue;
            }
            let Some(dj) = self.origin_distance(j0, time) else {
                continue;
            };
            if best.is_none_or(|(_, bd)| dj < bd) {
                best = Some((a0, dj));
            }
            // Marks the path so that later searches stop early.
            let mut j = j0;
            let mut d = dj;
            while self.nodes[j].timestamp != time {
                self.nodes[j].timestamp = time;
                self.nodes[j].dist = d;
                d = d.saturating_sub(1);
                j = self.head(self.nodes[j].parent as usize);
            }
        }
        if let Some((a0, d)) = best {
            self.nodes[i].parent = a0 as u32;
            self.nodes[i].timestamp = time;
            self.nodes[i].dist = d + 1;
            return;
        }
        self.nodes[i].parent = NONE;
        for d in 0..8 {
            let a0 = i * 8 + d;
            let j = self.head(a0);
            let pj = self.nodes[j].parent;
            if self.nodes[j].is_sink != sink || pj == NONE {
                continue;
            }
            let cap = if sink {
                self.rcap[a0]
            } else {
                self.rcap[self.sister(a0)]
            };
            if cap > 0 {
                self.set_active(j, queue);
            }
            if pj != TERMINAL && pj != ORPHAN && self.head(pj as usize) == i {
                self.nodes[j].parent = ORPHAN;
                orphans.push_back(j as u32);
            }
        }
    }

    /// Distance from `j` to its terminal through parent arcs, or None when the chain ends in an
    /// orphan.
    fn origin_distance(&mut self, mut j: usize, time: u32) -> Option<u32> {
        let mut d = 0u32;
        loop {
            if self.nodes[j].timestamp == time {
                return Some(d + self.nodes[j].dist);
            }
            let a = self.nodes[j].parent;
            d += 1;
            if a == TERMINAL {
                self.nodes[j].timestamp = time;
                self.nodes[j].dist = 1;
                return Some(d);
            }
            if a == ORPHAN || a == NONE {
                return None;
            }
            j = self.head(a as usize);
        }
    }
}

#[cfg(test)]
#[path = "maxflow_tests.rs"]
mod tests;
