//! The core in layers, measured from the code's own paths (issue #24).
//!
//! Every file of `crates/core/src` is read as tokens (comments and literals skipped); every path that names
//! something in the crate (`use crate::…`, `super::…`, `self::…`, a child module, or a name a `use` brought in,
//! in declarations and in code alike) is resolved through the module tree and the `use` re-exports to the module
//! that defines it, and that module to its *unit* (a top-level module, or a folder of one that belongs to another
//! layer today). The units sit on layers, bottom to top, in [`LAYERS`]: a path from a unit to a unit on a higher
//! layer is an arrow up. Test code (`#[cfg(test)]` items and modules) is not measured: tests may use anything.
//! A `pub use` of a higher layer's item keeps an old public path working after the item moved up (the module's
//! own code does not use it): it is listed apart, as a *re-export up*, and not counted as an arrow.
//!
//! The test prints the facts (units, layers, arrows up with where they are, circles between units) and fails on
//! an arrow up, a circle, a function over [`MAX_FN_LINES`] lines outside tests, or two public types of one name
//! across the core, the CLI and the Python extension, unless it is in the allowlists below. The allowlists are
//! today's known offenders and only shrink: an entry that no longer happens fails too, so that it is removed with
//! the fix, and a long function may not grow past its listed length.
//!
//! Self-contained on purpose (a small lexer, no `syn`): it reads paths, not types, so it needs no parser.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// The layers, bottom to top, and the units on each (`a::b` is the module `crate::a::b` and everything in it;
/// a unit is the longest listed prefix of a module's path). The target order is `params → numerics → ops → qmodel →
/// metric/eval → analysis → quantize → search → job → config/pipeline`, with the base modules below it all.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "base",
        &[
            "error",
            "tensor",
            "graph",
            "data",
            "progress",
            "backend",
            "runner",
            "profile",
            "cpu",
            "runtime_library",
            "builder",
            "executor",
            "heap",
        ],
    ),
    ("params", &["params"]),
    ("numerics", &["numerics"]),
    ("ops", &["ops"]),
    (
        "qmodel",
        &[
            "quantize::model",
            "quantize::placement",
            "quantize::precision",
            "quantize::footprint",
        ],
    ),
    ("metric/eval", &["metric", "eval"]),
    ("analysis", &["saturation", "sensitivity"]),
    ("quantize", &["quantize"]),
    ("search", &["search"]),
    ("job", &["job", "output", "render"]),
    ("config/pipeline", &["config", "pipeline"]),
];

/// Today's arrows up (`from unit -> to unit`). Only shrinks.
const ALLOWED_UP: &[&str] = &[];

/// Public paths kept after their item moved to a higher layer (`from unit -> to unit`). Only shrinks: callers
/// move to the new path, then the re-export goes.
const ALLOWED_REEXPORTS_UP: &[&str] = &[];

/// Today's circles: the units of each strongly connected component of the unit graph, sorted, joined by ` ~ `.
/// Only shrinks.
const ALLOWED_CIRCLES: &[&str] = &[];

/// Functions longer than this (from `fn` to its closing brace) are too long to read as one step.
const MAX_FN_LINES: usize = 80;

/// Today's long functions outside tests: `crate-relative file::name` and its length now, which it may not exceed.
/// Only shrinks.
const ALLOWED_LONG_FNS: &[(&str, usize)] = &[];

/// Public type names declared more than once across the core, the CLI and the Python extension. Only shrinks.
const ALLOWED_SAME_NAMES: &[&str] = &[];

#[test]
fn the_core_is_in_layers() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR"));
    let krate = Crate::read(&core.join("src"));
    let facts = Layering::measure(&krate);
    println!("{}", facts.describe());

    let mut failures = Vec::new();
    let up: BTreeSet<String> = facts
        .arrows_up()
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    check_allowlist("arrow up", &up, ALLOWED_UP, &mut failures);
    let circles: BTreeSet<String> = facts.circles().iter().map(|c| c.join(" ~ ")).collect();
    check_allowlist("circle", &circles, ALLOWED_CIRCLES, &mut failures);
    let reexports: BTreeSet<String> = facts
        .reexports_up
        .keys()
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    check_allowlist(
        "re-export up",
        &reexports,
        ALLOWED_REEXPORTS_UP,
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_function_is_over_80_lines_outside_tests() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut long = BTreeMap::new();
    for name in [
        "core", "cli", "py", "ir", "onnx", "tract", "ort", "openvino",
    ] {
        let krate = Crate::read(&crates.join(name).join("src"));
        for file in &krate.files {
            for f in &file.fns {
                if f.lines > MAX_FN_LINES {
                    long.insert(format!("{name}/{}::{}", file.rel, f.name), f.lines);
                }
            }
        }
    }
    println!(
        "functions over {MAX_FN_LINES} lines outside tests: {}",
        long.len()
    );
    for (name, lines) in &long {
        println!("  {name}: {lines}");
    }
    let mut failures = Vec::new();
    let names: BTreeSet<String> = long.keys().cloned().collect();
    let allowed: Vec<&str> = ALLOWED_LONG_FNS.iter().map(|(name, _)| *name).collect();
    check_allowlist("function over 80 lines", &names, &allowed, &mut failures);
    for (name, cap) in ALLOWED_LONG_FNS {
        if let Some(&lines) = long.get(*name) {
            if lines > *cap {
                failures.push(format!(
                    "{name} grew to {lines} lines (allowed {cap}, and it should shrink)"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_two_public_types_share_a_name() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut places: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in ["core", "cli", "py"] {
        let krate = Crate::read(&crates.join(name).join("src"));
        for file in &krate.files {
            for (ty, line) in &file.pub_types {
                places
                    .entry(ty.clone())
                    .or_default()
                    .push(format!("{name}/{}:{line}", file.rel));
            }
        }
    }
    let same: BTreeMap<&String, &Vec<String>> =
        places.iter().filter(|(_, at)| at.len() > 1).collect();
    println!("public types declared more than once: {}", same.len());
    for (name, at) in &same {
        println!("  {name}: {}", at.join(", "));
    }
    let names: BTreeSet<String> = same.keys().map(|name| name.to_string()).collect();
    let mut failures = Vec::new();
    check_allowlist(
        "public type name used twice",
        &names,
        ALLOWED_SAME_NAMES,
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// New offenders and allowlist entries that no longer happen (remove them: the list only shrinks).
fn check_allowlist(
    what: &str,
    found: &BTreeSet<String>,
    allowed: &[&str],
    failures: &mut Vec<String>,
) {
    let allowed: BTreeSet<String> = allowed.iter().map(|s| s.to_string()).collect();
    for new in found.difference(&allowed) {
        failures.push(format!("new {what}: {new}"));
    }
    for gone in allowed.difference(found) {
        failures.push(format!(
            "{what} fixed, remove it from the allowlist: {gone}"
        ));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Measuring

/// The unit graph of the core and where each arrow comes from.
struct Layering {
    /// unit → (layer index, files, lines).
    units: BTreeMap<String, (usize, usize, usize)>,
    /// (from unit, to unit) → places (`file:line path`).
    arrows: BTreeMap<(String, String), Vec<String>>,
    /// `pub use` of a higher unit's item: (from unit, to unit) → places.
    reexports_up: BTreeMap<(String, String), Vec<String>>,
}

impl Layering {
    fn measure(krate: &Crate) -> Layering {
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

    fn layer(&self, unit: &str) -> usize {
        self.units
            .get(unit)
            .map(|u| u.0)
            .unwrap_or_else(|| unit_of(&split(unit)).1)
    }

    fn arrows_up(&self) -> impl Iterator<Item = (&String, &String)> {
        self.arrows
            .keys()
            .filter(|(from, to)| self.layer(to) > self.layer(from))
            .map(|(f, t)| (f, t))
    }

    /// Circles between units.
    fn circles(&self) -> Vec<Vec<String>> {
        circles(self.units.keys().cloned(), self.arrows.keys().cloned())
    }

    /// The same between top-level modules (`quantize::model` counted as `quantize`), for comparison with the
    /// folders as they are.
    fn folder_circles(&self) -> Vec<Vec<String>> {
        let top = |unit: &String| unit.split("::").next().unwrap().to_string();
        let arrows = self
            .arrows
            .keys()
            .map(|(from, to)| (top(from), top(to)))
            .filter(|(from, to)| from != to);
        circles(self.units.keys().map(top).collect::<BTreeSet<_>>(), arrows)
    }

    fn describe(&self) -> String {
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
fn circles(
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

struct Tarjan<'a> {
    next: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    counter: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: usize) {
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

fn split(path: &str) -> Vec<String> {
    path.split("::").map(str::to_string).collect()
}

/// The unit of a module (the longest listed prefix of its path) and its layer; an unlisted module fails.
fn unit_of(module: &[String]) -> (String, usize) {
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

// ---------------------------------------------------------------------------------------------------------------
// Reading a crate

/// The non-test files of one crate, found from `lib.rs` / `main.rs` through its `mod` declarations.
struct Crate {
    files: Vec<File>,
    /// module path → its scope: child modules, and names brought in by `use` (name → (module, path)).
    scopes: BTreeMap<Vec<String>, Scope>,
}

#[derive(Default)]
struct Scope {
    children: BTreeSet<String>,
    uses: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

struct File {
    /// Relative to the crate's `src`.
    rel: String,
    module: Vec<String>,
    line_count: usize,
    paths: Vec<PathUse>,
    fns: Vec<FnSpan>,
    pub_types: Vec<(String, usize)>,
}

/// A path that may name something in the crate, as written, and the module it is written in.
struct PathUse {
    module: Vec<String>,
    segments: Vec<String>,
    line: usize,
    /// Written in a `pub use`.
    reexport: bool,
}

struct FnSpan {
    name: String,
    lines: usize,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let root = ["lib.rs", "main.rs"]
            .iter()
            .map(|f| src.join(f))
            .find(|p| p.exists())
            .expect("lib.rs or main.rs");
        let mut krate = Crate {
            files: Vec::new(),
            scopes: BTreeMap::new(),
        };
        // (file, module path, directory its child modules live in)
        let mut queue = vec![(root, Vec::new(), src.to_path_buf())];
        while let Some((path, module, dir)) = queue.pop() {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let rel = path
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mut reader = Reader::new(&text, &module, &mut krate.scopes);
            let mods = reader.read();
            let file = File {
                rel,
                module: module.clone(),
                line_count: text.lines().count(),
                paths: reader.paths,
                fns: reader.fns,
                pub_types: reader.pub_types,
            };
            krate.files.push(file);
            for m in mods {
                let child_dir = dir.join(&m.name);
                let file = match &m.path_attr {
                    // `#[path]` outside an inline module: relative to the declaring file's directory.
                    Some(p) => path.parent().unwrap().join(p),
                    None if child_dir.with_extension("rs").exists() => {
                        child_dir.with_extension("rs")
                    }
                    None => child_dir.join("mod.rs"),
                };
                let mut child_module = module.clone();
                child_module.extend(m.inline_parents.iter().cloned());
                child_module.push(m.name.clone());
                let grandchildren = if file.file_name().unwrap() == "mod.rs" {
                    file.parent().unwrap().to_path_buf()
                } else {
                    file.with_extension("")
                };
                queue.push((file, child_module, grandchildren));
            }
        }
        krate.files.sort_by(|a, b| a.rel.cmp(&b.rel));
        krate
    }

    /// The module defining what `segments`, written in `module`, names; `None` when it is outside the crate.
    fn resolve(&self, module: &[String], segments: &[String]) -> Option<Vec<String>> {
        let absolute = self.absolute(module, segments, 0)?;
        Some(self.walk(&absolute, 0))
    }

    /// The path from the crate root, or `None` for a path into another crate.
    fn absolute(
        &self,
        module: &[String],
        segments: &[String],
        depth: usize,
    ) -> Option<Vec<String>> {
        let (first, rest) = segments.split_first()?;
        let mut base: Vec<String> = match first.as_str() {
            "crate" => Vec::new(),
            "self" => module.to_vec(),
            "super" => {
                let mut base = module.to_vec();
                base.pop();
                let mut rest = rest;
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                return Some(base);
            }
            name => {
                let scope = self.scopes.get(module)?;
                if scope.children.contains(name) {
                    let mut base = module.to_vec();
                    base.push(name.to_string());
                    base
                } else if let Some((origin, target)) = scope.uses.get(name) {
                    if depth > 16 {
                        return None;
                    }
                    let mut base = self.absolute(origin, target, depth + 1)?;
                    base.extend(rest.iter().cloned());
                    return Some(base);
                } else {
                    return None;
                }
            }
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// Follows an absolute path down the module tree, through `use`s, to the module that defines its item.
    fn walk(&self, path: &[String], depth: usize) -> Vec<String> {
        let mut module: Vec<String> = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let Some(scope) = self.scopes.get(&module) else {
                return module;
            };
            if scope.children.contains(segment) {
                module.push(segment.clone());
            } else if let Some((origin, target)) = scope.uses.get(segment) {
                if depth > 16 {
                    return module;
                }
                return match self.absolute(origin, target, 0) {
                    Some(mut next) => {
                        next.extend(path[i + 1..].iter().cloned());
                        self.walk(&next, depth + 1)
                    }
                    None => module,
                };
            } else {
                return module;
            }
        }
        module
    }
}

struct ModDecl {
    name: String,
    path_attr: Option<String>,
    /// Inline (non-test) modules the declaration sits in.
    inline_parents: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    PathSep,
    Punct(char),
    Other,
}

/// Reads one file's tokens: module declarations, `use`s, paths, functions' lengths and public types.
struct Reader<'a> {
    toks: Vec<(Tok, usize)>,
    module: Vec<String>,
    scopes: &'a mut BTreeMap<Vec<String>, Scope>,
    paths: Vec<PathUse>,
    fns: Vec<FnSpan>,
    pub_types: Vec<(String, usize)>,
}

impl<'a> Reader<'a> {
    fn new(
        text: &str,
        module: &[String],
        scopes: &'a mut BTreeMap<Vec<String>, Scope>,
    ) -> Reader<'a> {
        scopes.entry(module.to_vec()).or_default();
        Reader {
            toks: lex(text),
            module: module.to_vec(),
            scopes,
            paths: Vec::new(),
            fns: Vec::new(),
            pub_types: Vec::new(),
        }
    }

    fn ident(&self, i: usize) -> Option<&str> {
        match self.toks.get(i) {
            Some((Tok::Ident(s), _)) => Some(s),
            _ => None,
        }
    }

    /// Whether the keyword at `i` follows `pub` or `pub(…)`.
    fn is_pub_before(&self, i: usize) -> bool {
        let before = |back: usize| i.checked_sub(back).and_then(|k| self.ident(k));
        before(1) == Some("pub")
            || (i >= 4
                && self.is(i - 1, &Tok::Punct(')'))
                && self.is(i - 3, &Tok::Punct('('))
                && before(4) == Some("pub"))
    }

    fn is(&self, i: usize, tok: &Tok) -> bool {
        self.toks.get(i).map(|t| &t.0) == Some(tok)
    }

    /// The index after the group opened at `i` (`(`, `[` or `{`), counting all three kinds.
    fn skip_group(&self, i: usize) -> usize {
        let mut depth = 0i32;
        let mut j = i;
        while j < self.toks.len() {
            match self.toks[j].0 {
                Tok::Punct('(' | '[' | '{') => depth += 1,
                Tok::Punct(')' | ']' | '}') => {
                    depth -= 1;
                    if depth == 0 {
                        return j + 1;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        j
    }

    /// The index after the item starting at `i`: its `;` or its closing brace at depth 0.
    fn skip_item(&self, i: usize) -> usize {
        let mut j = i;
        while j < self.toks.len() {
            match self.toks[j].0 {
                Tok::Punct(';') => return j + 1,
                Tok::Punct('{') => return self.skip_group(j),
                Tok::Punct('(' | '[') => j = self.skip_group(j),
                _ => j += 1,
            }
        }
        j
    }

    fn read(&mut self) -> Vec<ModDecl> {
        let mut mods = Vec::new();
        // Inline modules open: (name, brace depth inside them).
        let mut inline: Vec<(String, i32)> = Vec::new();
        let mut depth = 0i32;
        let mut test_attr = false;
        let mut path_attr: Option<String> = None;
        let mut i = 0;
        while i < self.toks.len() {
            let line = self.toks[i].1;
            let module: Vec<String> = self
                .module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(name, _)| name.clone()))
                .collect();
            match &self.toks[i].0 {
                Tok::Punct('#') => {
                    let open = if self.is(i + 1, &Tok::Punct('!')) {
                        i + 2
                    } else {
                        i + 1
                    };
                    if self.is(open, &Tok::Punct('[')) {
                        let end = self.skip_group(open);
                        let attr = &self.toks[open + 1..end - 1];
                        let name = |k: usize| match attr.get(k) {
                            Some((Tok::Ident(s), _)) => s.as_str(),
                            _ => "",
                        };
                        if name(0) == "cfg" && name(2) == "test" && attr.len() == 4 {
                            test_attr = true;
                        }
                        if name(0) == "test" && attr.len() == 1 {
                            test_attr = true;
                        }
                        if name(0) == "path" {
                            if let Some((Tok::Str(p), _)) = attr.get(2) {
                                path_attr = Some(p.clone());
                            }
                        }
                        i = end;
                        continue;
                    }
                    i += 1;
                    continue;
                }
                _ if test_attr => {
                    // A test-only item: skip it whole.
                    test_attr = false;
                    path_attr = None;
                    i = self.skip_item(i);
                    continue;
                }
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    depth -= 1;
                    if inline.last().is_some_and(|(_, d)| *d > depth) {
                        inline.pop();
                    }
                }
                Tok::Ident(kw) if kw == "mod" => {
                    if let Some(name) = self.ident(i + 1).map(str::to_string) {
                        self.scopes
                            .entry(module.clone())
                            .or_default()
                            .children
                            .insert(name.clone());
                        if self.is(i + 2, &Tok::Punct(';')) {
                            mods.push(ModDecl {
                                name,
                                path_attr: path_attr.take(),
                                inline_parents: inline.iter().map(|(n, _)| n.clone()).collect(),
                            });
                            i += 3;
                            continue;
                        }
                        if self.is(i + 2, &Tok::Punct('{')) {
                            depth += 1;
                            let mut inner = module.clone();
                            inner.push(name.clone());
                            self.scopes.entry(inner).or_default();
                            inline.push((name, depth));
                            i += 3;
                            continue;
                        }
                    }
                }
                Tok::Ident(kw) if kw == "use" && !self.is(i + 1, &Tok::Punct('<')) => {
                    let reexport = self.is_pub_before(i);
                    let mut j = i + 1;
                    let mut leaves = Vec::new();
                    self.use_tree(&mut j, Vec::new(), &mut leaves);
                    for (segments, alias) in leaves {
                        if let Some(alias) = alias {
                            let scope = self.scopes.entry(module.clone()).or_default();
                            scope.uses.insert(alias, (module.clone(), segments.clone()));
                        }
                        self.paths.push(PathUse {
                            module: module.clone(),
                            segments,
                            line,
                            reexport,
                        });
                    }
                    i = self.skip_item(i);
                    path_attr = None;
                    continue;
                }
                Tok::Ident(kw) if kw == "fn" => {
                    if let Some(name) = self.ident(i + 1) {
                        let name = name.to_string();
                        let mut j = i + 2;
                        while j < self.toks.len()
                            && !matches!(self.toks[j].0, Tok::Punct(';' | '{'))
                        {
                            j = if matches!(self.toks[j].0, Tok::Punct('(' | '[')) {
                                self.skip_group(j)
                            } else {
                                j + 1
                            };
                        }
                        if self.is(j, &Tok::Punct('{')) {
                            let end = self.skip_group(j);
                            let lines = self.toks[end - 1].1 - line + 1;
                            self.fns.push(FnSpan { name, lines });
                        }
                    }
                }
                Tok::Ident(kw) if kw == "pub" => {
                    let mut j = i + 1;
                    if self.is(j, &Tok::Punct('(')) {
                        j = self.skip_group(j);
                    }
                    if matches!(
                        self.ident(j),
                        Some("struct" | "enum" | "trait" | "type" | "union")
                    ) {
                        if let Some(name) = self.ident(j + 1) {
                            self.pub_types.push((name.to_string(), line));
                        }
                    }
                }
                Tok::Ident(first) if self.is(i + 1, &Tok::PathSep) => {
                    // A path in code: `a::b::c`, unless it continues one (`x::a::b`).
                    let continues = i > 0 && self.is(i - 1, &Tok::PathSep);
                    if !continues && first != "Self" {
                        let mut segments = vec![first.clone()];
                        let mut j = i + 1;
                        while self.is(j, &Tok::PathSep) {
                            match self.ident(j + 1) {
                                Some(s) => segments.push(s.to_string()),
                                None => break,
                            }
                            j += 2;
                        }
                        self.paths.push(PathUse {
                            module,
                            segments,
                            line,
                            reexport: false,
                        });
                        i = j;
                        continue;
                    }
                }
                _ => {}
            }
            path_attr = None;
            i += 1;
        }
        mods
    }

    /// Parses a use tree from `*j`, appending each leaf: its full path and the name it binds (`None` for `*`).
    fn use_tree(
        &self,
        j: &mut usize,
        prefix: Vec<String>,
        leaves: &mut Vec<(Vec<String>, Option<String>)>,
    ) {
        let mut path = prefix;
        if self.is(*j, &Tok::PathSep) {
            *j += 1; // `use ::std::…`
        }
        loop {
            match self.toks.get(*j).map(|t| &t.0) {
                Some(Tok::Punct('{')) => {
                    *j += 1;
                    while !self.is(*j, &Tok::Punct('}')) && *j < self.toks.len() {
                        self.use_tree(j, path.clone(), leaves);
                        if self.is(*j, &Tok::Punct(',')) {
                            *j += 1;
                        }
                    }
                    *j += 1;
                    return;
                }
                Some(Tok::Punct('*')) => {
                    *j += 1;
                    leaves.push((path, None));
                    return;
                }
                Some(Tok::Ident(s)) => {
                    let s = s.clone();
                    *j += 1;
                    if s == "self" && !path.is_empty() && !self.is(*j, &Tok::PathSep) {
                        // `a::{self}` binds `a`.
                    } else {
                        path.push(s);
                    }
                    if self.is(*j, &Tok::PathSep) {
                        *j += 1;
                        continue;
                    }
                    let mut name = path.last().cloned();
                    if self.ident(*j) == Some("as") {
                        name = self.ident(*j + 1).map(str::to_string).filter(|n| n != "_");
                        *j += 2;
                    }
                    leaves.push((path, name));
                    return;
                }
                _ => return,
            }
        }
    }
}

/// Rust source as tokens with their line: identifiers (keywords too), string literals' text, `::`, single
/// punctuation; comments dropped; other literals and lifetimes as `Other`.
fn lex(text: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let count_lines = |from: usize, to: usize, chars: &[char]| {
        chars[from..to].iter().filter(|&&c| c == '\n').count()
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut nest = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    nest += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    nest -= 1;
                    i += 2;
                    if nest == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += count_lines(start, i, &chars);
        } else if let Some(end) = raw_string_end(&chars, i) {
            let body: String = chars[i..end].iter().collect();
            toks.push((Tok::Str(body), line));
            line += count_lines(start, end, &chars);
            i = end;
        } else if c == '"' || ((c == 'b' || c == 'c') && next == Some('"')) {
            i += if c == '"' { 1 } else { 2 };
            let body_start = i;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            let body: String = chars[body_start..i.min(chars.len())].iter().collect();
            i += 1;
            toks.push((Tok::Str(body), line));
            line += count_lines(start, i.min(chars.len()), &chars);
        } else if c == '\'' || (c == 'b' && next == Some('\'')) {
            let q = if c == 'b' { i + 1 } else { i };
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if chars.get(q + 1) == Some(&'\\') {
                i = q + 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(q + 2) == Some(&'\'') {
                i = q + 3;
            } else {
                i = q + 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            toks.push((Tok::Other, line));
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let mut word: String = chars[start..i].iter().collect();
            if word == "r" && chars.get(i) == Some(&'#') {
                // r#ident
                i += 1;
                let s = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                word = chars[s..i].iter().collect();
            }
            toks.push((Tok::Ident(word), line));
        } else if c.is_ascii_digit() {
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || (chars[i] == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())))
            {
                i += 1;
            }
            toks.push((Tok::Other, line));
        } else if c == ':' && next == Some(':') {
            toks.push((Tok::PathSep, line));
            i += 2;
        } else {
            toks.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    toks
}

/// The end of a raw string literal (`r"…"`, `r#"…"#`, `br#"…"#`, `cr"…"`) starting at `i`, if one does.
fn raw_string_end(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if matches!(chars.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if chars.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < chars.len() {
        if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(chars.len())
}
