//! Measuring: the unit graph of the core, its arrows up and its circles.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::reading::Crate;
use crate::LAYERS;

/// The unit graph of the core and where each arrow comes from.
pub(crate) struct Layering {
    /// unit → (layer index, files, lines).
    pub(crate) units: BTreeMap<String, (usize, usize, usize)>,
    /// (from unit, to unit) → places (`file:line path`).
    pub(crate) arrows: BTreeMap<(String, String), Vec<String>>,
    /// `pub use` of a higher unit's item: (from unit, to unit) → places.
    pub(crate) reexports_up: BTreeMap<(String, String), Vec<String>>,
}

impl Layering {
    pub(crate) fn measure(krate: &Crate) -> Layering {
        let mut units = BTreeMap::new();
        let mut arrows: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        let mut reexports_up: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for file in &krate.files {
            if file.module.is_empty() {
                continue; // lib.rs: the crate's face, re-exports only
            }
            let (from, layer) = unit_of(&file.module);
            let entry = units.entry(from.clone()).or_insert((layer, 0, 0));
            entry.1 += 1;
            entry.2 += file.line_count;
            for path in &file.paths {
                let Some(target) = krate.resolve(&path.module, &path.segments) else {
                    continue;
                };
                if target.is_empty() {
                    continue;
                }
                let (to, to_layer) = unit_of(&target);
                if to != from {
                    let place = format!("{}:{} {}", file.rel, path.line, path.segments.join("::"));
                    let kind = if path.reexport && to_layer > layer {
                        &mut reexports_up
                    } else {
                        &mut arrows
                    };
                    kind.entry((from.clone(), to)).or_default().push(place);
                }
            }
        }
        Layering {
            units,
            arrows,
            reexports_up,
        }
    }

    pub(crate) fn layer(&self, unit: &str) -> usize {
        self.units
            .get(unit)
            .map(|u| u.0)
            .unwrap_or_else(|| unit_of(&split(unit)).1)
    }

    pub(crate) fn arrows_up(&self) -> impl Iterator<Item = (&String, &String)> {
        self.arrows
            .keys()
            .filter(|(from, to)| self.layer(to) > self.layer(from))
            .map(|(f, t)| (f, t))
    }

    /// Circles between units.
    pub(crate) fn circles(&self) -> Vec<Vec<String>> {
        circles(self.units.keys().cloned(), self.arrows.keys().cloned())
    }

    /// The same between top-level modules (`quantize::model` counted as `quantize`), for comparison with the
    /// folders as they are.
    pub(crate) fn folder_circles(&self) -> Vec<Vec<String>> {
        let top = |unit: &String| unit.split("::").next().unwrap().to_string();
        let arrows = self
            .arrows
            .keys()
            .map(|(from, to)| (top(from), top(to)))
            .filter(|(from, to)| from != to);
        circles(self.units.keys().map(top).collect::<BTreeSet<_>>(), arrows)
    }

    pub(crate) fn describe(&self) -> String {
        let mut out = String::new();
        let files: usize = self.units.values().map(|u| u.1).sum();
        let _ = writeln!(
            out,
            "crates/core/src: {} units, {files} files (lib.rs apart), {} arrows between units",
            self.units.len(),
            self.arrows.len()
        );
        for (layer, (name, _)) in LAYERS.iter().enumerate().rev() {
            let here: Vec<String> = self
                .units
                .iter()
                .filter(|(_, u)| u.0 == layer)
                .map(|(unit, u)| format!("{unit} ({} files, {} lines)", u.1, u.2))
                .collect();
            let _ = writeln!(
                out,
                "  layer {layer} {name}: {}",
                if here.is_empty() {
                    "-".into()
                } else {
                    here.join(", ")
                }
            );
        }
        let up: Vec<_> = self.arrows_up().collect();
        let _ = writeln!(out, "arrows up: {}", up.len());
        for (from, to) in up {
            let places = &self.arrows[&(from.clone(), to.clone())];
            let _ = writeln!(
                out,
                "  {from} ({}) -> {to} ({}): {} paths, e.g.",
                LAYERS[self.layer(from)].0,
                LAYERS[self.layer(to)].0,
                places.len()
            );
            for place in places.iter().take(4) {
                let _ = writeln!(out, "      {place}");
            }
        }
        let _ = writeln!(
            out,
            "re-exports up (old public paths): {}",
            self.reexports_up.len()
        );
        for ((from, to), places) in &self.reexports_up {
            let _ = writeln!(out, "  {from} -> {to}: {}", places.join(", "));
        }
        let circles = self.circles();
        let _ = writeln!(out, "circles: {}", circles.len());
        for circle in circles {
            let _ = writeln!(out, "  {}", circle.join(" ~ "));
        }
        let folders = self.folder_circles();
        let _ = writeln!(out, "circles between top-level modules: {}", folders.len());
        for circle in folders {
            let _ = writeln!(out, "  {}", circle.join(" ~ "));
        }
        out
    }
}

/// Strongly connected components of more than one node (Tarjan's algorithm), each sorted.
pub(crate) fn circles(
    nodes: impl IntoIterator<Item = String>,
    arrows: impl IntoIterator<Item = (String, String)>,
) -> Vec<Vec<String>> {
    let names: Vec<String> = nodes.into_iter().collect();
    let index_of = |name: &String| names.iter().position(|n| n == name);
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for (from, to) in arrows {
        if let (Some(f), Some(t)) = (index_of(&from), index_of(&to)) {
            next[f].push(t);
        }
    }
    let mut tarjan = Tarjan {
        next: &next,
        index: vec![None; names.len()],
        low: vec![0; names.len()],
        on_stack: vec![false; names.len()],
        stack: Vec::new(),
        counter: 0,
        components: Vec::new(),
    };
    for v in 0..names.len() {
        if tarjan.index[v].is_none() {
            tarjan.visit(v);
        }
    }
    let mut circles: Vec<Vec<String>> = tarjan
        .components
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut c: Vec<String> = c.into_iter().map(|i| names[i].clone()).collect();
            c.sort();
            c
        })
        .collect();
    circles.sort();
    circles
}

pub(crate) struct Tarjan<'a> {
    pub(crate) next: &'a [Vec<usize>],
    pub(crate) index: Vec<Option<usize>>,
    pub(crate) low: Vec<usize>,
    pub(crate) on_stack: Vec<bool>,
    pub(crate) stack: Vec<usize>,
    pub(crate) counter: usize,
    pub(crate) components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    pub(crate) fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.counter);
        self.low[v] = self.counter;
        self.counter += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &self.next[v] {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            loop {
                let w = self.stack.pop().unwrap();
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

pub(crate) fn split(path: &str) -> Vec<String> {
    path.split("::").map(str::to_string).collect()
}

/// The unit of a module (the longest listed prefix of its path) and its layer; an unlisted module fails.
pub(crate) fn unit_of(module: &[String]) -> (String, usize) {
    let mut best: Option<(usize, String, usize)> = None;
    for (layer, (_, units)) in LAYERS.iter().enumerate() {
        for unit in *units {
            let parts = split(unit);
            if module.starts_with(&parts) && best.as_ref().is_none_or(|b| parts.len() > b.0) {
                best = Some((parts.len(), unit.to_string(), layer));
            }
        }
    }
    let (_, unit, layer) = best.unwrap_or_else(|| {
        panic!(
            "module crate::{} is on no layer: add it to LAYERS",
            module.join("::")
        )
    });
    (unit, layer)
}
