//! Graphviz DOT of a pprof's call graph, the `format=dot` answer of `/pyroscope/render`: one
//! node per function (flat and cumulative value, share of the total), one edge per
//! caller → callee pair, the `node_count` functions with the largest cumulative values kept
//! (the shape of `pprof -dot`, not its exact node pruning).

use crate::pprof::{FrameNames, Profile, ProfileView};
use rustc_hash::{FxHashMap, FxHashSet};
use std::fmt::Write as _;

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    flat: i64,
    cum: i64,
}

/// Renders `profile`'s first sample type as a DOT graph of at most `node_count` nodes.
pub fn render(profile: &Profile, node_count: usize) -> String {
    render_view(&ProfileView::from_profile(profile), node_count)
}

fn empty_graph() -> String {
    "digraph \"unnamed\" {\n}\n".to_owned()
}

fn render_view(view: &ProfileView<'_>, node_count: usize) -> String {
    let names = FrameNames::new(view);
    let mut functions: Vec<String> = Vec::new();
    let mut ids: FxHashMap<String, usize> = FxHashMap::default();
    let mut totals: Vec<Totals> = Vec::new();
    let mut edges: FxHashMap<(usize, usize), i64> = FxHashMap::default();
    let mut total = 0i64;
    let mut stack: Vec<usize> = Vec::new();
    let mut seen: FxHashSet<usize> = FxHashSet::default();
    let mut seen_edges: FxHashSet<(usize, usize)> = FxHashSet::default();
    let mut stacks: Vec<(Vec<usize>, i64)> = Vec::with_capacity(view.samples.len());
    for sample in &view.samples {
        let value = view.sample_values(sample).first().copied().unwrap_or(0);
        if value == 0 {
            continue;
        }
        total = total.wrapping_add(value);
        stack.clear();
        // Frames leaf first: locations are stored leaf first, their lines outermost first.
        for &location in view.sample_locations(sample) {
            let Some(position) = names.location_position(location) else {
                continue;
            };
            for frame in names.frames(position).iter().rev() {
                let frame: &str = frame;
                let id = match ids.get(frame) {
                    Some(&id) => id,
                    None => {
                        functions.push(frame.to_owned());
                        totals.push(Totals::default());
                        ids.insert(frame.to_owned(), functions.len() - 1);
                        functions.len() - 1
                    }
                };
                stack.push(id);
            }
        }
        if let Some(&leaf) = stack.first() {
            totals[leaf].flat = totals[leaf].flat.wrapping_add(value);
        }
        seen.clear();
        seen_edges.clear();
        for (i, &id) in stack.iter().enumerate() {
            if seen.insert(id) {
                totals[id].cum = totals[id].cum.wrapping_add(value);
            }
            if let Some(&caller) = stack.get(i + 1)
                && seen_edges.insert((caller, id))
            {
                let weight = edges.entry((caller, id)).or_insert(0);
                *weight = weight.wrapping_add(value);
            }
        }
        stacks.push((stack.clone(), value));
    }
    if functions.is_empty() {
        return empty_graph();
    }
    // pprof's default node fraction: nodes under 0.5% of the total are not drawn.
    let floor = total.unsigned_abs() / 200;
    let mut order: Vec<usize> = (0..functions.len())
        .filter(|&f| totals[f].cum.unsigned_abs() >= floor)
        .collect();
    // pprof keeps the most "interesting" nodes: entry and leaf nodes, and nodes where the
    // flow of value branches (entropy of their edge weights), weighted by their value.
    let scores = entropy_scores(&totals, &edges);
    order.sort_by(|&a, &b| {
        scores[b]
            .cmp(&scores[a])
            .then(totals[b].flat.cmp(&totals[a].flat))
            .then(totals[b].cum.cmp(&totals[a].cum))
            .then(functions[a].cmp(&functions[b]))
    });
    order.truncate(node_count.max(1));
    let node_of: FxHashMap<usize, usize> = order
        .iter()
        .enumerate()
        .map(|(node, &function)| (function, node + 1))
        .collect();
    let (kind, unit) = view
        .sample_type
        .first()
        .map(|&(kind, unit)| (view.string(kind).to_owned(), view.string(unit).to_owned()))
        .unwrap_or_default();
    let shown: i64 = order.iter().map(|&f| totals[f].flat).sum();
    let max_flat = order
        .iter()
        .map(|&f| totals[f].flat)
        .max()
        .unwrap_or(0)
        .max(1);
    let mut out = String::new();
    out.push_str("digraph \"unnamed\" {\n");
    out.push_str("node [style=filled fillcolor=\"#f8f8f8\"]\n");
    let _ = writeln!(
        out,
        "subgraph cluster_L {{ \"Type: {kind}\" [shape=box fontsize=16 label=\"Type: {kind}\\lShowing nodes accounting for {}, {} of {} total\\l\" tooltip=\"{kind}\"] }}",
        format_value(shown, &unit),
        percent(shown, total),
        format_value(total, &unit),
    );
    for (index, &function) in order.iter().enumerate() {
        let t = totals[function];
        let name = escape(&functions[function]);
        let fontsize = 8 + (42 * t.flat / max_flat).clamp(0, 42);
        // pprof's label: flat (share), then "of" cumulative (share) when they differ.
        let flat = if t.flat == 0 {
            "0".to_owned()
        } else {
            format!(
                "{} ({})",
                format_value(t.flat, &unit),
                percent(t.flat, total)
            )
        };
        let cum = if t.cum == t.flat {
            String::new()
        } else {
            format!(
                "\\nof {} ({})",
                format_value(t.cum, &unit),
                percent(t.cum, total)
            )
        };
        let _ = writeln!(
            out,
            "N{} [label=\"{name}\\n{flat}{cum}\" id=\"node{}\" fontsize={fontsize} shape=box tooltip=\"{name} ({})\" color=\"#b20400\" fillcolor=\"#edd6d5\"]",
            index + 1,
            index + 1,
            format_value(t.cum, &unit),
        );
    }
    // Edges between drawn nodes; an edge that skips hidden frames is residual (dotted).
    let mut drawn: FxHashMap<(usize, usize), (i64, bool)> = FxHashMap::default();
    for (stack, value) in &stacks {
        seen_edges.clear();
        let mut callee: Option<usize> = None;
        let mut skipped = false;
        for &function in stack {
            let Some(&node) = node_of.get(&function) else {
                skipped = callee.is_some();
                continue;
            };
            if let Some(to) = callee
                && to != node
                && seen_edges.insert((node, to))
            {
                let slot = drawn.entry((node, to)).or_insert((0, false));
                slot.0 = slot.0.wrapping_add(*value);
                slot.1 |= skipped;
            }
            callee = Some(node);
            skipped = false;
        }
    }
    let mut drawn: Vec<((usize, usize), (i64, bool))> = drawn.into_iter().collect();
    drawn.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    for ((from, to), (weight, residual)) in drawn {
        let width = 1 + (5 * weight / total.max(1)).clamp(0, 5);
        let arrow = if residual { " ... " } else { " -> " };
        let style = if residual { " style=\"dotted\"" } else { "" };
        let names = format!(
            "{}{arrow}{}",
            escape(&functions[order[from - 1]]),
            escape(&functions[order[to - 1]])
        );
        let _ = writeln!(
            out,
            "N{from} -> N{to} [label=\" {}\" weight={} penwidth={width} color=\"#b2b2b2\" tooltip=\"{names} ({})\" labeltooltip=\"{names} ({})\"{style}]",
            format_value(weight, &unit),
            (100 * weight / total.max(1)).max(1),
            format_value(weight, &unit),
            format_value(weight, &unit),
        );
    }
    out.push_str("}\n");
    out
}

/// pprof's node interest score: `cum × (entropy of incoming edges, or 1 for an entry node +
/// entropy of outgoing edges with the node's own flat value, or 1 for a leaf) + flat`.
fn entropy_scores(totals: &[Totals], edges: &FxHashMap<(usize, usize), i64>) -> Vec<i64> {
    let mut incoming: Vec<Vec<i64>> = vec![Vec::new(); totals.len()];
    let mut outgoing: Vec<Vec<i64>> = vec![Vec::new(); totals.len()];
    for (&(from, to), &weight) in edges {
        if from == to {
            continue;
        }
        outgoing[from].push(weight);
        incoming[to].push(weight);
    }
    let entropy = |weights: &[i64], own: i64| {
        let total: i64 = own.abs()
            + weights
                .iter()
                .filter(|w| **w > 0)
                .map(|w| w.abs())
                .sum::<i64>();
        if total == 0 {
            return 0.0;
        }
        let term = |w: i64| {
            let fraction = w.abs() as f64 / total as f64;
            if fraction > 0.0 {
                -fraction * fraction.log2()
            } else {
                0.0
            }
        };
        weights.iter().map(|&w| term(w)).sum::<f64>() + if own > 0 { term(own) } else { 0.0 }
    };
    totals
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut score = 0.0;
            score += if incoming[i].is_empty() {
                1.0
            } else {
                entropy(&incoming[i], 0)
            };
            score += if outgoing[i].is_empty() {
                1.0
            } else {
                entropy(&outgoing[i], t.flat)
            };
            (score * t.cum as f64) as i64 + t.flat
        })
        .collect()
}

fn percent(value: i64, total: i64) -> String {
    if total == 0 {
        return "0%".to_owned();
    }
    // pprof's `percentage`: 100% near 100, two decimals from 1%, two significant digits below.
    let p = (value as f64 * 100.0 / total as f64).abs();
    if (99.95..=100.05).contains(&p) {
        "100%".to_owned()
    } else if p >= 1.0 {
        format!("{p:.2}%")
    } else if p == 0.0 {
        "0%".to_owned()
    } else {
        let digits = (1 - p.log10().floor() as i32).max(0) as usize;
        format!("{p:.digits$}%")
    }
}

/// A value with its unit scaled as pprof prints them (time and bytes; other units as counts).
fn format_value(value: i64, unit: &str) -> String {
    let v = value as f64;
    let scaled = |steps: &[(f64, &str)]| {
        let mut chosen = steps[0];
        for &step in steps {
            if v.abs() >= step.0 {
                chosen = step;
            }
        }
        let n = v / chosen.0;
        if n.fract() == 0.0 {
            format!("{n:.0}{}", chosen.1)
        } else {
            format!("{n:.2}{}", chosen.1)
        }
    };
    match unit {
        "nanoseconds" => scaled(&[(1.0, "ns"), (1e3, "us"), (1e6, "ms"), (1e9, "s")]),
        "microseconds" => scaled(&[(1.0, "us"), (1e3, "ms"), (1e6, "s")]),
        "milliseconds" => scaled(&[(1.0, "ms"), (1e3, "s")]),
        "bytes" => scaled(&[
            (1.0, "B"),
            (1024.0, "kB"),
            (1048576.0, "MB"),
            (1073741824.0, "GB"),
        ]),
        _ => value.to_string(),
    }
}

fn escape(name: &str) -> String {
    name.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_scale_like_pprof() {
        assert_eq!(format_value(10_000_000, "nanoseconds"), "10ms");
        assert_eq!(format_value(1_500, "bytes"), "1.46kB");
        assert_eq!(format_value(42, "count"), "42");
        assert_eq!(percent(1, 3), "33.33%");
        assert_eq!(percent(1, 300), "0.33%");
        assert_eq!(percent(3, 3), "100%");
    }
}
