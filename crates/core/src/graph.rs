//! The step graph of a flow version, laid out for people: SVG (for HTML reports), Mermaid and
//! Graphviz DOT.
//!
//! # The model
//!
//! A version-2 export document's version holds `steps` (each with an `id`, a `type` and a
//! `name`) and `connections` (`{from, to}` step ids); a step with `routes` also hands over to
//! each route's `first_step`. [`versions`] reads a document's versions into [`VersionGraph`]s:
//! one [`Node`] per step (in list order), one [`Edge`] per connection and per route naming a
//! step (labelled with the route's name). Ends that name no step are left out (validation
//! reports them). A version-1 document is migrated to version 2 first (exactly as
//! [`crate::migrate`] does), so both read the same way.
//!
//! [`compare_versions`] reads two documents (LEFT and RIGHT, normalised as [`crate::diff`]
//! compares them) and returns the versions that differ, paired by `iteration`: the union of both
//! sides' steps (paired by `id`, else `name`, as the diff pairs them), each marked
//! [`Mark::Added`], [`Mark::Removed`], [`Mark::Changed`] or [`Mark::Same`], and the union of
//! their connections marked the same way. A version only in RIGHT has every step added; only in
//! LEFT, every step removed.
//!
//! # The layout
//!
//! [`layout`] is a small layered (Sugiyama-style) layout, left to right:
//!
//! 1. **Cycles** are broken by a depth-first search from the steps in list order (sources
//!    first): an edge to a step still on the search's stack is laid out reversed (it is still
//!    drawn in its own direction).
//! 2. **Layers**: each step goes one layer right of its furthest predecessor (longest path from
//!    the sources), so every edge points right.
//! 3. **Long edges** spanning several layers get one invisible point per layer crossed (the
//!    classic dummy nodes), so they take part in ordering and are drawn as polylines around the
//!    boxes. Past [`MAX_DUMMIES`] points for a version, long edges are drawn straight instead
//!    (a hostile document cannot make the layout quadratic).
//! 4. **Order within a layer**: start from list order, then [`SWEEPS`] alternating sweeps
//!    (left to right, right to left) sort each layer by the barycentre (mean position) of its
//!    neighbours in the previous layer, which removes most crossings.
//! 5. **Coordinates**: layer *k* is column *k*; within a layer the boxes are stacked in order,
//!    each layer centred vertically on the tallest one.
//!
//! It costs O(sweeps × (steps + edges + points)) plus a sort per layer: no crate is needed for
//! graphs of this size, and the output is deterministic.
//!
//! # Rendering
//!
//! [`svg`] draws boxes (name on the first line, type on the second) and arrows. Every text
//! coming from a document is escaped for XML; nothing is scripted. The marks are shown by more
//! than colour: a symbol before the name (`+` added, `−` removed, `~` changed) and the border
//! (thick for added, dashed for removed, dotted for changed). [`mermaid`] writes a
//! `flowchart LR` and [`dot`] a `digraph` with one subgraph per version.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::Value;

use crate::document::{Document, FormatVersion};
use crate::migrate::{MigrateError, MigrateOptions, Target, migrate};

/// Sweeps of the barycentre ordering.
pub const SWEEPS: usize = 8;
/// The most invisible points long edges may add to one version's layout.
pub const MAX_DUMMIES: usize = 20_000;
/// Characters of a step's name shown in its box (the full name is in the box's title).
pub const NAME_CHARS: usize = 24;

const BOX_W: f64 = 170.0;
const BOX_H: f64 = 46.0;
const GAP_X: f64 = 40.0;
const GAP_Y: f64 = 24.0;
const MARGIN: f64 = 12.0;

/// How a step or connection differs between LEFT and RIGHT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mark {
    /// Only in RIGHT.
    Added,
    /// Only in LEFT.
    Removed,
    /// On both sides, different.
    Changed,
    /// On both sides, the same (or not compared).
    Same,
}

impl Mark {
    /// `added`, `removed`, `changed` or `same`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Added => "added",
            Mark::Removed => "removed",
            Mark::Changed => "changed",
            Mark::Same => "same",
        }
    }

    /// The symbol shown before a marked step's name (empty for `same`).
    pub fn symbol(self) -> &'static str {
        match self {
            Mark::Added => "+",
            Mark::Removed => "\u{2212}",
            Mark::Changed => "~",
            Mark::Same => "",
        }
    }
}

/// A step.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The step's id as text (its name when it has no id).
    pub key: String,
    /// The step's name.
    pub name: String,
    /// The step's type.
    pub kind: String,
    /// How it differs.
    pub mark: Mark,
}

/// A connection, or a route's hand-over (with the route's name as `label`).
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// Index of the step it leaves, in [`VersionGraph::nodes`].
    pub from: usize,
    /// Index of the step it enters.
    pub to: usize,
    /// The route's name, for a route.
    pub label: Option<String>,
    /// How it differs.
    pub mark: Mark,
}

/// The step graph of one version of a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionGraph {
    /// The version's `iteration`, when it has one.
    pub iteration: Option<i64>,
    /// How the version as a whole differs.
    pub mark: Mark,
    /// The steps.
    pub nodes: Vec<Node>,
    /// The connections and routes.
    pub edges: Vec<Edge>,
}

impl VersionGraph {
    /// `iteration N`, or `version N` (1-based position) when it has no iteration.
    pub fn label(&self, position: usize) -> String {
        match self.iteration {
            Some(i) => format!("iteration {i}"),
            None => format!("version {}", position + 1),
        }
    }
}

/// Why a document's graph could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// A version-1 document could not be migrated to version 2.
    #[error("{document}: cannot read its steps as version 2: {source}")]
    Migrate {
        /// The document.
        document: String,
        /// Why.
        #[source]
        source: Box<MigrateError>,
    },
}

/// The document's value at the newest format version (migrated when older).
pub fn latest_value(doc: Document, origin: &str) -> Result<Value, GraphError> {
    let doc = if doc.format_version() == FormatVersion::LATEST {
        doc
    } else {
        let mut opts = MigrateOptions::new(Target::Latest);
        opts.origin = origin.to_string();
        migrate(doc, &opts)
            .map_err(|source| GraphError::Migrate {
                document: origin.to_string(),
                source: Box::new(source),
            })?
            .document
    };
    Ok(doc.into_value())
}

/// The graphs of every version of `doc` (migrated to the newest version first when older; the
/// document itself is not changed). `origin` names it in errors.
pub fn document_versions(doc: &Document, origin: &str) -> Result<Vec<VersionGraph>, GraphError> {
    if doc.format_version() == FormatVersion::LATEST {
        Ok(versions(doc.value()))
    } else {
        Ok(versions(&latest_value(doc.clone(), origin)?))
    }
}

/// The graphs of every version of a version-2 document's value (see [`latest_value`]), every
/// mark [`Mark::Same`].
pub fn versions(doc: &Value) -> Vec<VersionGraph> {
    version_values(doc)
        .iter()
        .map(|v| {
            let steps = steps_of(v);
            let nodes: Vec<Node> = steps.iter().map(|s| node(s, Mark::Same)).collect();
            let keys = index_keys(&steps);
            let edges = edges_of(v, &keys)
                .into_iter()
                .map(|(from, to, label)| Edge {
                    from,
                    to,
                    label,
                    mark: Mark::Same,
                })
                .collect();
            VersionGraph {
                iteration: v.get("iteration").and_then(Value::as_i64),
                mark: Mark::Same,
                nodes,
                edges,
            }
        })
        .collect()
}

/// The versions that differ between two version-2 values (normalised as the diff compares
/// them), marked; see the module docs. Versions pair by `iteration`, else by position.
pub fn compare_versions(left: &Value, right: &Value) -> Vec<VersionGraph> {
    let (lv, rv) = (version_values(left), version_values(right));
    let key = |i: usize, v: &Value| match v.get("iteration").and_then(Value::as_i64) {
        Some(n) => format!("i{n}"),
        None => format!("p{i}"),
    };
    let left_by: HashMap<String, &Value> = lv
        .iter()
        .enumerate()
        .map(|(i, v)| (key(i, v), *v))
        .collect();
    let right_keys: std::collections::HashSet<String> =
        rv.iter().enumerate().map(|(i, v)| key(i, v)).collect();
    let mut out = Vec::new();
    for (i, r) in rv.iter().enumerate() {
        match left_by.get(&key(i, r)) {
            Some(l) if l == r => {}
            Some(l) => out.push(compare_version(Some(l), Some(r))),
            None => out.push(compare_version(None, Some(r))),
        }
    }
    for (i, l) in lv.iter().enumerate() {
        if !right_keys.contains(&key(i, l)) {
            out.push(compare_version(Some(l), None));
        }
    }
    out
}

fn compare_version(left: Option<&Value>, right: Option<&Value>) -> VersionGraph {
    let empty = Value::Null;
    let (l, r) = (left.unwrap_or(&empty), right.unwrap_or(&empty));
    let (ls, rs) = (steps_of(l), steps_of(r));
    // Steps pair by id, else name (as the diff pairs them); RIGHT's order first, then what only
    // LEFT has.
    let mut left_by: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, s) in ls.iter().enumerate() {
        left_by.entry(step_key(s)).or_default().push(i);
    }
    let mut nodes = Vec::new();
    let mut taken = vec![false; ls.len()];
    let mut left_at = vec![usize::MAX; ls.len()];
    let mut right_at = vec![usize::MAX; rs.len()];
    for (j, s) in rs.iter().enumerate() {
        let partner = left_by
            .get_mut(&step_key(s))
            .and_then(|v| (!v.is_empty()).then(|| v.remove(0)));
        let mark = match partner {
            Some(i) => {
                taken[i] = true;
                left_at[i] = nodes.len();
                if ls[i] == *s {
                    Mark::Same
                } else {
                    Mark::Changed
                }
            }
            None => Mark::Added,
        };
        right_at[j] = nodes.len();
        nodes.push(node(s, mark));
    }
    for (i, s) in ls.iter().enumerate() {
        if !taken[i] {
            left_at[i] = nodes.len();
            nodes.push(node(s, Mark::Removed));
        }
    }
    let le: Vec<(usize, usize, Option<String>)> = edges_of(l, &index_keys(&ls))
        .into_iter()
        .map(|(a, b, label)| (left_at[a], left_at[b], label))
        .collect();
    let re: Vec<(usize, usize, Option<String>)> = edges_of(r, &index_keys(&rs))
        .into_iter()
        .map(|(a, b, label)| (right_at[a], right_at[b], label))
        .collect();
    // Sets, so that a version with many connections costs no quadratic time.
    let (lset, rset): (HashSet<_>, HashSet<_>) = (le.iter().collect(), re.iter().collect());
    let mut edges: Vec<Edge> = re
        .iter()
        .map(|e @ (from, to, label)| Edge {
            from: *from,
            to: *to,
            label: label.clone(),
            mark: if lset.contains(e) {
                Mark::Same
            } else {
                Mark::Added
            },
        })
        .collect();
    for e @ (from, to, label) in &le {
        if !rset.contains(e) {
            let (from, to, label) = (*from, *to, label.clone());
            edges.push(Edge {
                from,
                to,
                label,
                mark: Mark::Removed,
            });
        }
    }
    let source = right.or(left).unwrap_or(&empty);
    VersionGraph {
        iteration: source.get("iteration").and_then(Value::as_i64),
        mark: match (left, right) {
            (None, _) => Mark::Added,
            (_, None) => Mark::Removed,
            _ => Mark::Changed,
        },
        nodes,
        edges,
    }
}

fn version_values(doc: &Value) -> Vec<&Value> {
    doc.pointer("/flow/versions")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default()
}

fn steps_of(version: &Value) -> Vec<&Value> {
    version
        .get("steps")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default()
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn step_key(step: &Value) -> String {
    match (text(step.get("id")), text(step.get("name"))) {
        (Some(id), _) => format!("id:{id}"),
        (None, Some(name)) => format!("name:{name}"),
        (None, None) => "none".into(),
    }
}

fn node(step: &Value, mark: Mark) -> Node {
    Node {
        key: text(step.get("id"))
            .or_else(|| text(step.get("name")))
            .unwrap_or_default(),
        name: text(step.get("name")).unwrap_or_default(),
        kind: text(step.get("type")).unwrap_or_default(),
        mark,
    }
}

/// Step ids (as JSON text) to their index; the first of repeated ids wins.
fn index_keys(steps: &[&Value]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        if let Some(id) = s.get("id").filter(|v| !v.is_null()) {
            out.entry(id.to_string()).or_insert(i);
        }
    }
    out
}

fn edges_of(version: &Value, keys: &HashMap<String, usize>) -> Vec<(usize, usize, Option<String>)> {
    let mut out = Vec::new();
    let find = |v: Option<&Value>| v.and_then(|v| keys.get(&v.to_string()).copied());
    for (i, s) in steps_of(version).iter().enumerate() {
        for route in s
            .get("routes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(to) = find(route.get("first_step")) {
                out.push((i, to, Some(text(route.get("name")).unwrap_or_default())));
            }
        }
    }
    for c in version
        .get("connections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(from), Some(to)) = (find(c.get("from")), find(c.get("to"))) {
            out.push((from, to, None));
        }
    }
    out
}

/// Where each step's box and each edge's line go.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The top-left corner of each step's box (in [`VersionGraph::nodes`] order).
    pub boxes: Vec<(f64, f64)>,
    /// For each edge (in [`VersionGraph::edges`] order), the points its line passes through,
    /// from its start to its end.
    pub lines: Vec<Vec<(f64, f64)>>,
    /// The drawing's width.
    pub width: f64,
    /// The drawing's height.
    pub height: f64,
    /// The layer (column) of each step.
    pub layers: Vec<usize>,
}

/// Lays `graph` out left to right (see the module docs).
pub fn layout(graph: &VersionGraph) -> Layout {
    let n = graph.nodes.len();
    // 1. Cycles: edges to a step on the DFS stack are reversed for the layout.
    let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, e) in graph.edges.iter().enumerate() {
        out_edges[e.from].push(k);
    }
    let mut reversed = vec![false; graph.edges.len()];
    let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    let mut indegree = vec![0usize; n];
    for e in &graph.edges {
        indegree[e.to] += 1;
    }
    let starts: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).chain(0..n).collect();
    for s in starts {
        if state[s] != 0 {
            continue;
        }
        // Iterative DFS: (node, next edge position).
        let mut stack = vec![(s, 0usize)];
        state[s] = 1;
        while let Some(&mut (v, ref mut pos)) = stack.last_mut() {
            if let Some(&k) = out_edges[v].get(*pos) {
                *pos += 1;
                let w = graph.edges[k].to;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => reversed[k] = true,
                    _ => {}
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    // The edges as laid out (self-loops take no part).
    let dag: Vec<(usize, usize)> = graph
        .edges
        .iter()
        .zip(&reversed)
        .map(|(e, &r)| if r { (e.to, e.from) } else { (e.from, e.to) })
        .collect();
    // 2. Layers: longest path, in topological order (Kahn).
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indeg = vec![0usize; n];
    for &(a, b) in &dag {
        if a != b {
            succ[a].push(b);
            indeg[b] += 1;
        }
    }
    let mut layer = vec![0usize; n];
    let mut queue: std::collections::VecDeque<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    while let Some(v) = queue.pop_front() {
        for &w in &succ[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indeg[w] -= 1;
            if indeg[w] == 0 {
                queue.push_back(w);
            }
        }
    }
    // 3. Long edges: a chain of points, one per layer crossed (within the budget).
    let total_dummies: usize = dag
        .iter()
        .map(|&(a, b)| layer[b].saturating_sub(layer[a]).saturating_sub(1))
        .fold(0usize, usize::saturating_add);
    let use_dummies = total_dummies <= MAX_DUMMIES;
    let mut vlayer = layer.clone(); // layer of every vertex (steps, then points)
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(dag.len());
    for &(a, b) in &dag {
        let mut chain = vec![a];
        if use_dummies && a != b {
            for l in layer[a] + 1..layer[b] {
                vlayer.push(l);
                chain.push(vlayer.len() - 1);
            }
        }
        chain.push(b);
        chains.push(chain);
    }
    let layers_n = vlayer.iter().max().map_or(0, |m| m + 1);
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); layers_n];
    for (v, &l) in vlayer.iter().enumerate() {
        order[l].push(v);
    }
    let vn = vlayer.len();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); vn];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); vn];
    for chain in &chains {
        for w in chain.windows(2) {
            if w[0] != w[1] && vlayer[w[1]] == vlayer[w[0]] + 1 {
                preds[w[1]].push(w[0]);
                succs[w[0]].push(w[1]);
            }
        }
    }
    // 4. Barycentre sweeps.
    let mut pos = vec![0f64; vn];
    let set_pos = |order: &Vec<Vec<usize>>, pos: &mut Vec<f64>| {
        for row in order {
            for (i, &v) in row.iter().enumerate() {
                pos[v] = i as f64;
            }
        }
    };
    set_pos(&order, &mut pos);
    for sweep in 0..SWEEPS {
        let down = sweep % 2 == 0;
        let range: Vec<usize> = if down {
            (1..layers_n).collect()
        } else {
            (0..layers_n.saturating_sub(1)).rev().collect()
        };
        for l in range {
            let neighbours = if down { &preds } else { &succs };
            let mut keyed: Vec<(f64, usize)> = order[l]
                .iter()
                .map(|&v| {
                    let ns = &neighbours[v];
                    let b = if ns.is_empty() {
                        pos[v]
                    } else {
                        ns.iter().map(|&u| pos[u]).sum::<f64>() / ns.len() as f64
                    };
                    (b, v)
                })
                .collect();
            // Stable: ties keep the current order.
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            order[l] = keyed.into_iter().map(|(_, v)| v).collect();
            for (i, &v) in order[l].iter().enumerate() {
                pos[v] = i as f64;
            }
        }
    }
    // 5. Coordinates: each layer centred on the tallest.
    let tallest = order.iter().map(Vec::len).max().unwrap_or(0);
    let mut xy = vec![(0f64, 0f64); vn];
    for (l, row) in order.iter().enumerate() {
        let offset = (tallest - row.len()) as f64 * (BOX_H + GAP_Y) / 2.0;
        for (i, &v) in row.iter().enumerate() {
            xy[v] = (
                MARGIN + l as f64 * (BOX_W + GAP_X),
                MARGIN + offset + i as f64 * (BOX_H + GAP_Y),
            );
        }
    }
    let lines = graph
        .edges
        .iter()
        .zip(&chains)
        .zip(&reversed)
        .map(|((e, chain), &rev)| {
            let mut pts: Vec<(f64, f64)> = Vec::new();
            if e.from == e.to {
                let (x, y) = xy[e.from];
                return vec![
                    (x + BOX_W * 0.7, y),
                    (x + BOX_W * 0.7, y - 10.0),
                    (x + BOX_W * 0.3, y - 10.0),
                    (x + BOX_W * 0.3, y),
                ];
            }
            let mut chain = chain.clone();
            if rev {
                chain.reverse();
            }
            let last = chain.len() - 1;
            for (k, &v) in chain.iter().enumerate() {
                let (x, y) = xy[v];
                let cy = y + BOX_H / 2.0;
                if k == 0 {
                    let right = vlayer[chain[1]] > vlayer[v];
                    pts.push((if right { x + BOX_W } else { x }, cy));
                } else if k == last {
                    let from_left = vlayer[chain[last - 1]] < vlayer[v];
                    pts.push((if from_left { x } else { x + BOX_W }, cy));
                } else {
                    pts.push((x + BOX_W / 2.0, cy));
                }
            }
            pts
        })
        .collect();
    Layout {
        boxes: xy[..n].to_vec(),
        lines,
        width: 2.0 * MARGIN + layers_n as f64 * (BOX_W + GAP_X)
            - GAP_X.min(layers_n as f64 * GAP_X),
        height: 2.0 * MARGIN + tallest as f64 * (BOX_H + GAP_Y) - GAP_Y.min(tallest as f64 * GAP_Y),
        layers: layer,
    }
}

/// `s` escaped for XML text and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn shorten(s: &str, chars: usize) -> String {
    if s.chars().count() <= chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(chars.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The step graph as an SVG element (no XML declaration: it is meant to be inlined in HTML),
/// `title` its accessible name. Step groups carry `class="step <mark>"` and a `<title>`.
pub fn svg(graph: &VersionGraph, title: &str) -> String {
    svg_with_id(graph, title, "g")
}

/// [`svg`] for documents holding several drawings: `id` (letters, digits, `-`) makes the
/// drawing's own ids (its arrow head) unique within the document.
pub fn svg_with_id(graph: &VersionGraph, title: &str, id: &str) -> String {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let lay = layout(graph);
    let (w, h) = (lay.width.max(BOX_W), lay.height.max(BOX_H));
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"graph\" role=\"img\" \
         width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" \
         font-family=\"sans-serif\" font-size=\"12\">\
         <title>{}</title>\
         <defs><marker id=\"{id}-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
         <path d=\"M0,0L10,5L0,10z\" fill=\"#555\"/></marker></defs>",
        xml_escape(title)
    );
    for (e, pts) in graph.edges.iter().zip(&lay.lines) {
        let d: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.0},{y:.0}")).collect();
        let dash = match e.mark {
            Mark::Removed => " stroke-dasharray=\"6 4\"",
            Mark::Changed => " stroke-dasharray=\"2 3\"",
            _ => "",
        };
        let width = if e.mark == Mark::Added { 2.5 } else { 1.2 };
        let (a, b) = (&graph.nodes[e.from], &graph.nodes[e.to]);
        let _ = write!(
            s,
            "<g class=\"edge {}\"><title>{}{} \u{2192} {}{}</title>\
             <polyline points=\"{}\" fill=\"none\" stroke=\"#555\" stroke-width=\"{width}\"{dash} \
             marker-end=\"url(#{id}-arrow)\"/>",
            e.mark.as_str(),
            mark_prefix(e.mark),
            xml_escape(&a.name),
            xml_escape(&b.name),
            e.label
                .as_ref()
                .map(|l| format!(" (route {})", xml_escape(l)))
                .unwrap_or_default(),
            d.join(" ")
        );
        if let (Some(label), Some(&(x0, y0)), Some(&(x1, y1))) = (&e.label, pts.first(), pts.get(1))
        {
            let _ = write!(
                s,
                "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"10\" fill=\"#333\">{}</text>",
                (x0 + x1) / 2.0 - 10.0,
                (y0 + y1) / 2.0 - 4.0,
                xml_escape(&shorten(label, 14))
            );
        }
        s.push_str("</g>");
    }
    for (node, &(x, y)) in graph.nodes.iter().zip(&lay.boxes) {
        let (fill, stroke, width, dash) = match node.mark {
            Mark::Added => ("#e6f4ea", "#1e7b34", 3.0, ""),
            Mark::Removed => ("#fce8e6", "#b3261e", 2.0, " stroke-dasharray=\"7 4\""),
            Mark::Changed => ("#fff4d6", "#8a5a00", 2.0, " stroke-dasharray=\"2 3\""),
            Mark::Same => ("#ffffff", "#777777", 1.0, ""),
        };
        let symbol = node.mark.symbol();
        let label = if symbol.is_empty() {
            shorten(&node.name, NAME_CHARS)
        } else {
            format!("{symbol} {}", shorten(&node.name, NAME_CHARS))
        };
        let _ = write!(
            s,
            "<g class=\"step {}\"><title>{}{} ({}, step {})</title>\
             <rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"{BOX_W:.0}\" height=\"{BOX_H:.0}\" rx=\"6\" \
             fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dash}/>\
             <text x=\"{:.0}\" y=\"{:.0}\" font-weight=\"bold\">{}</text>\
             <text x=\"{:.0}\" y=\"{:.0}\" fill=\"#555\">{}</text></g>",
            node.mark.as_str(),
            mark_prefix(node.mark),
            xml_escape(&node.name),
            xml_escape(&node.kind),
            xml_escape(&node.key),
            x + 8.0,
            y + 19.0,
            xml_escape(&label),
            x + 8.0,
            y + 36.0,
            xml_escape(&shorten(&node.kind, NAME_CHARS)),
        );
    }
    s.push_str("</svg>");
    s
}

fn mark_prefix(mark: Mark) -> &'static str {
    match mark {
        Mark::Added => "added: ",
        Mark::Removed => "removed: ",
        Mark::Changed => "changed: ",
        Mark::Same => "",
    }
}

/// Text for a Mermaid label in double quotes: quotes and angle brackets as Mermaid's entity
/// codes, line breaks as spaces.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Mermaid `flowchart LR` with one subgraph per `(title, graph)`.
pub fn mermaid(graphs: &[(String, &VersionGraph)]) -> String {
    let mut s = String::from("flowchart LR\n");
    for (g, (title, graph)) in graphs.iter().enumerate() {
        let _ = writeln!(s, "  subgraph g{g}[\"{}\"]", mermaid_text(title));
        s.push_str("    direction LR\n");
        for (i, node) in graph.nodes.iter().enumerate() {
            let symbol = node.mark.symbol();
            let prefix = if symbol.is_empty() {
                String::new()
            } else {
                format!("{symbol} ")
            };
            let _ = writeln!(
                s,
                "    g{g}s{i}[\"{prefix}{}<br/>{}\"]",
                mermaid_text(&node.name),
                mermaid_text(&node.kind)
            );
        }
        for e in &graph.edges {
            match &e.label {
                Some(l) => {
                    let _ = writeln!(
                        s,
                        "    g{g}s{} -->|\"{}\"| g{g}s{}",
                        e.from,
                        mermaid_text(l),
                        e.to
                    );
                }
                None => {
                    let _ = writeln!(s, "    g{g}s{} --> g{g}s{}", e.from, e.to);
                }
            }
        }
        s.push_str("  end\n");
    }
    s
}

/// Text for a DOT double-quoted string.
fn dot_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Graphviz `digraph` (left to right) with one cluster per `(title, graph)`.
pub fn dot(graphs: &[(String, &VersionGraph)]) -> String {
    let mut s = String::from(
        "digraph flows {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"sans-serif\"];\n",
    );
    for (g, (title, graph)) in graphs.iter().enumerate() {
        let _ = writeln!(
            s,
            "  subgraph cluster_{g} {{\n    label=\"{}\";",
            dot_text(title)
        );
        for (i, node) in graph.nodes.iter().enumerate() {
            let _ = writeln!(
                s,
                "    g{g}s{i} [label=\"{}\\n{}\"];",
                dot_text(&node.name),
                dot_text(&node.kind)
            );
        }
        for e in &graph.edges {
            match &e.label {
                Some(l) => {
                    let _ = writeln!(
                        s,
                        "    g{g}s{} -> g{g}s{} [label=\"{}\"];",
                        e.from,
                        e.to,
                        dot_text(l)
                    );
                }
                None => {
                    let _ = writeln!(s, "    g{g}s{} -> g{g}s{};", e.from, e.to);
                }
            }
        }
        s.push_str("  }\n");
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(steps: Value, connections: Value) -> Value {
        json!({"flow": {"versions": [{"iteration": 1, "steps": steps, "connections": connections}]}})
    }

    fn chain() -> Value {
        doc(
            json!([
                {"id": 1, "type": "trigger", "name": "Start"},
                {"id": 2, "type": "try-catch", "name": "Try", "routes": [{"name": "Try", "first_step": 3}]},
                {"id": 3, "type": "connector", "name": "Fetch"},
                {"id": 4, "type": "script", "name": "Map"}
            ]),
            json!([{"from": 1, "to": 2}, {"from": 3, "to": 4}, {"from": 1, "to": 4}]),
        )
    }

    #[test]
    fn versions_read_steps_connections_and_routes() {
        let g = &versions(&chain())[0];
        assert_eq!(g.iteration, Some(1));
        assert_eq!(g.nodes.len(), 4);
        assert_eq!(g.nodes[2].kind, "connector");
        let edges: Vec<_> = g
            .edges
            .iter()
            .map(|e| (e.from, e.to, e.label.clone()))
            .collect();
        assert_eq!(
            edges,
            [
                (1, 2, Some("Try".to_string())),
                (0, 1, None),
                (2, 3, None),
                (0, 3, None)
            ]
        );
    }

    #[test]
    fn layers_follow_the_longest_path_and_every_edge_points_right() {
        let g = &versions(&chain())[0];
        let lay = layout(g);
        assert_eq!(lay.layers, [0, 1, 2, 3]);
        for (e, pts) in g.edges.iter().zip(&lay.lines) {
            assert!(lay.boxes[e.from].0 < lay.boxes[e.to].0);
            assert!(pts.first().unwrap().0 < pts.last().unwrap().0);
        }
        // The long edge 1 → 4 passes through one point per layer crossed.
        assert_eq!(lay.lines[3].len(), 4);
    }

    #[test]
    fn cycles_and_self_loops_are_laid_out() {
        let g = &versions(&doc(
            json!([{"id": 1, "name": "A"}, {"id": 2, "name": "B"}, {"id": 3, "name": "C"}]),
            json!([{"from": 1, "to": 2}, {"from": 2, "to": 3}, {"from": 3, "to": 1}, {"from": 2, "to": 2}]),
        ))[0];
        let lay = layout(g);
        assert_eq!(lay.layers, [0, 1, 2]);
        assert_eq!(lay.lines.len(), 4);
    }

    #[test]
    fn barycentre_ordering_removes_a_crossing() {
        // 1 → 4, 2 → 3: list order would cross; the sweep puts 4 above 3.
        let g = &versions(&doc(
            json!([{"id": 1, "name": "A"}, {"id": 2, "name": "B"}, {"id": 3, "name": "C"}, {"id": 4, "name": "D"}]),
            json!([{"from": 1, "to": 4}, {"from": 2, "to": 3}]),
        ))[0];
        let lay = layout(g);
        assert!(lay.boxes[3].1 < lay.boxes[2].1, "{:?}", lay.boxes);
    }

    #[test]
    fn compare_marks_steps_and_connections() {
        let left = chain();
        let right = doc(
            json!([
                {"id": 5, "type": "map", "name": "New"},
                {"id": 1, "type": "trigger", "name": "Start"},
                {"id": 2, "type": "try-catch", "name": "Try", "routes": [{"name": "Try", "first_step": 3}]},
                {"id": 3, "type": "connector", "name": "Fetch v2"}
            ]),
            json!([{"from": 1, "to": 2}, {"from": 3, "to": 5}]),
        );
        let gs = compare_versions(&left, &right);
        assert_eq!(gs.len(), 1);
        let marks: Vec<_> = gs[0]
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.mark))
            .collect();
        assert_eq!(
            marks,
            [
                ("New", Mark::Added),
                ("Start", Mark::Same),
                ("Try", Mark::Same),
                ("Fetch v2", Mark::Changed),
                ("Map", Mark::Removed)
            ]
        );
        let edges: Vec<_> = gs[0].edges.iter().map(|e| (e.from, e.to, e.mark)).collect();
        assert!(edges.contains(&(3, 0, Mark::Added)));
        assert!(edges.contains(&(3, 4, Mark::Removed)));
        assert!(edges.contains(&(1, 2, Mark::Same)));
        assert!(compare_versions(&left, &left).is_empty());
    }

    #[test]
    fn versions_on_one_side_only_are_all_added_or_removed() {
        let left = chain();
        let mut right = chain();
        right["flow"]["versions"][0]["iteration"] = json!(2);
        let gs = compare_versions(&left, &right);
        assert_eq!(gs.len(), 2);
        assert_eq!(gs[0].mark, Mark::Added);
        assert!(gs[0].nodes.iter().all(|n| n.mark == Mark::Added));
        assert_eq!(gs[1].mark, Mark::Removed);
        assert!(gs[1].nodes.iter().all(|n| n.mark == Mark::Removed));
    }

    #[test]
    fn svg_escapes_and_marks_by_more_than_colour() {
        let left = chain();
        let mut right = chain();
        right["flow"]["versions"][0]["steps"][3]["name"] =
            json!("<script>alert(1)</script> & \"x\"");
        let g = &compare_versions(&left, &right)[0];
        let s = svg(g, "Flow <b>");
        assert!(!s.contains("<script"));
        assert!(s.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"));
        assert!(s.contains("<title>Flow &lt;b&gt;</title>"));
        assert!(s.contains("class=\"step changed\""));
        assert!(s.contains("~ &lt;script&gt;"));
        assert!(s.contains("stroke-dasharray=\"2 3\""));
    }

    #[test]
    fn mermaid_and_dot_begin_as_their_tools_expect_and_escape() {
        let mut d = chain();
        d["flow"]["versions"][0]["steps"][0]["name"] = json!("a\"b<c>\\d\n");
        let gs = versions(&d);
        let graphs = [("Flow \"x\"".to_string(), &gs[0])];
        let m = mermaid(&graphs);
        assert!(m.starts_with("flowchart LR\n"));
        assert!(m.contains("a#quot;b#lt;c#gt;\\d "));
        assert!(m.contains("g0s1 -->|\"Try\"| g0s2"));
        let d = dot(&graphs);
        assert!(d.starts_with("digraph"));
        assert!(d.contains("label=\"a\\\"b<c>\\\\d \\ntrigger\""));
        assert!(d.contains("label=\"Flow \\\"x\\\"\""));
    }

    #[test]
    fn a_version_1_document_is_read_after_migrating() {
        let v1 = Document::from_slice(
            std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/reference/export-v1-legacy.json"
            ))
            .unwrap()
            .as_slice(),
            "v1.json",
        )
        .unwrap();
        let value = latest_value(v1, "v1.json").unwrap();
        let gs = versions(&value);
        assert!(!gs.is_empty());
        assert!(gs.iter().any(|g| !g.edges.is_empty()));
    }

    #[test]
    fn many_long_edges_fall_back_to_straight_lines() {
        let n = 400;
        let steps: Vec<Value> = (1..=n)
            .map(|i| json!({"id": i, "name": format!("s{i}")}))
            .collect();
        let mut conns: Vec<Value> = (1..n).map(|i| json!({"from": i, "to": i + 1})).collect();
        conns.extend((1..n).map(|i| json!({"from": i, "to": n})));
        let g = &versions(&doc(Value::from(steps), Value::from(conns)))[0];
        let lay = layout(g);
        assert!(lay.lines.iter().all(|l| l.len() <= 4));
        assert_eq!(lay.layers[n as usize - 1], n as usize - 1);
    }
}
