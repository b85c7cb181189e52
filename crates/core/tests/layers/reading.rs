//! Reading a crate: its files through the `mod` declarations, and in each file the paths, `use`s, functions
//! and public types.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::lexer::{lex, Tok};

/// The non-test files of one crate, found from `lib.rs` / `main.rs` through its `mod` declarations.
pub(crate) struct Crate {
    pub(crate) files: Vec<File>,
    /// module path → its scope: child modules, and names brought in by `use` (name → (module, path)).
    pub(crate) scopes: BTreeMap<Vec<String>, Scope>,
}

#[derive(Default)]
pub(crate) struct Scope {
    pub(crate) children: BTreeSet<String>,
    pub(crate) uses: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

pub(crate) struct File {
    /// Relative to the crate's `src`.
    pub(crate) rel: String,
    pub(crate) module: Vec<String>,
    pub(crate) line_count: usize,
    pub(crate) paths: Vec<PathUse>,
    pub(crate) fns: Vec<FnSpan>,
    pub(crate) pub_types: Vec<(String, usize)>,
}

/// A path that may name something in the crate, as written, and the module it is written in.
pub(crate) struct PathUse {
    pub(crate) module: Vec<String>,
    pub(crate) segments: Vec<String>,
    pub(crate) line: usize,
    /// Written in a `pub use`.
    pub(crate) reexport: bool,
}

pub(crate) struct FnSpan {
    pub(crate) name: String,
    pub(crate) lines: usize,
}

impl Crate {
    pub(crate) fn read(src: &Path) -> Crate {
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
    pub(crate) fn resolve(&self, module: &[String], segments: &[String]) -> Option<Vec<String>> {
        let absolute = self.absolute(module, segments, 0)?;
        Some(self.walk(&absolute, 0))
    }

    /// The path from the crate root, or `None` for a path into another crate.
    pub(crate) fn absolute(
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
    pub(crate) fn walk(&self, path: &[String], depth: usize) -> Vec<String> {
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

pub(crate) struct ModDecl {
    pub(crate) name: String,
    pub(crate) path_attr: Option<String>,
    /// Inline (non-test) modules the declaration sits in.
    pub(crate) inline_parents: Vec<String>,
}

/// Reads one file's tokens: module declarations, `use`s, paths, functions' lengths and public types.
pub(crate) struct Reader<'a> {
    pub(crate) toks: Vec<(Tok, usize)>,
    pub(crate) module: Vec<String>,
    pub(crate) scopes: &'a mut BTreeMap<Vec<String>, Scope>,
    pub(crate) paths: Vec<PathUse>,
    pub(crate) fns: Vec<FnSpan>,
    pub(crate) pub_types: Vec<(String, usize)>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(
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

    pub(crate) fn ident(&self, i: usize) -> Option<&str> {
        match self.toks.get(i) {
            Some((Tok::Ident(s), _)) => Some(s),
            _ => None,
        }
    }

    /// Whether the keyword at `i` follows `pub` or `pub(…)`.
    pub(crate) fn is_pub_before(&self, i: usize) -> bool {
        let before = |back: usize| i.checked_sub(back).and_then(|k| self.ident(k));
        before(1) == Some("pub")
            || (i >= 4
                && self.is(i - 1, &Tok::Punct(')'))
                && self.is(i - 3, &Tok::Punct('('))
                && before(4) == Some("pub"))
    }

    pub(crate) fn is(&self, i: usize, tok: &Tok) -> bool {
        self.toks.get(i).map(|t| &t.0) == Some(tok)
    }

    /// The index after the group opened at `i` (`(`, `[` or `{`), counting all three kinds.
    pub(crate) fn skip_group(&self, i: usize) -> usize {
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
    pub(crate) fn skip_item(&self, i: usize) -> usize {
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

    pub(crate) fn read(&mut self) -> Vec<ModDecl> {
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
    pub(crate) fn use_tree(
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
