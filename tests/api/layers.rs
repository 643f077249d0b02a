//! The layering of `src/`, checked from the source: no file imports a file that imports
//! it back (directly or around a circle), and no module imports a module of a higher
//! layer than its own. The layers are the ones the `# Layout` of `src/lib.rs` lists; a new
//! top-level module must be given its layer here. Imports are read as text (`use` trees
//! and `crate::`/`super::` paths in code, comments and test modules left out), so a path
//! named only in a doc comment draws no arrow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules of `src/`, top layer first; a module may import only modules of its
/// own entry or a later one (two of one entry never both ways: the circle test).
const LAYERS: &[&[&str]] = &[
    &["main"],
    &["cli"],
    &["startup"],
    &["http"],
    &["import"],
    &["service"],
    &["cluster", "events", "redis", "verify"],
    &["store"],
    &["supervise"],
    &[
        "config",
        "resources",
        "metrics",
        "shard",
        "event_schema",
        "faults",
        "shutdown",
        "backoff",
        "telemetry",
    ],
];

/// A module path, e.g. `["cluster", "router"]`; the crate root is empty.
type Module = Vec<String>;

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file defines: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
fn module_of(root: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(root).expect("under src");
    let mut parts: Module = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        parts.clear();
    }
    parts
}

/// The code of a file without comments and without its `#[cfg(test)] mod tests`.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        return vec![tree.to_string()];
    };
    let close = tree.rfind('}').filter(|c| *c > open).unwrap_or(tree.len());
    let (prefix, body) = (&tree[..open], &tree[open + 1..close]);
    let (mut items, mut depth, mut current) = (Vec::new(), 0, String::new());
    for ch in body.chars() {
        match ch {
            ',' if depth == 0 => items.push(std::mem::take(&mut current)),
            '{' => {
                depth += 1;
                current.push(ch);
            }
            '}' => {
                depth -= 1;
                current.push(ch);
            }
            _ => current.push(ch),
        }
    }
    items.push(current);
    items
        .iter()
        .filter(|i| !i.trim().is_empty())
        .flat_map(|i| expand(i.trim()))
        .map(|i| match i.as_str() {
            "self" => prefix.trim_end_matches("::").to_string(),
            _ => format!("{prefix}{i}"),
        })
        .collect()
}

/// Every `crate::`/`super::`/`self::` path the code names.
fn paths_in(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let word_start = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let tail = &rest[at + 4..];
        if !word_start {
            rest = tail;
            continue;
        }
        let end = tail.find(';').unwrap_or(tail.len());
        let tree: String = tail[..end].chars().filter(|c| !c.is_whitespace()).collect();
        paths.extend(expand(&tree));
        rest = &tail[end..];
    }
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .collect();
    paths.extend(words.into_iter().map(str::to_string));
    paths
        .into_iter()
        .map(|p| p.split(" as ").next().unwrap_or_default().to_string())
        .filter(|p| {
            ["crate::", "super::", "self::"]
                .iter()
                .any(|s| p.starts_with(s))
        })
        .collect()
}

/// The file-level import graph of `src/`: module → modules (files) it imports.
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&root, &mut files);
    let modules: BTreeMap<Module, PathBuf> = files
        .iter()
        .map(|f| (module_of(&root, f), f.clone()))
        .collect();
    let mut edges = BTreeMap::new();
    for (module, file) in &modules {
        let code = code_of(&std::fs::read_to_string(file).expect("read source"));
        let mut to = BTreeSet::new();
        for path in paths_in(&code) {
            let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            let mut base: Module = match parts.first() {
                Some(&"crate") => Vec::new(),
                _ => module.clone(),
            };
            if parts.first() == Some(&"crate") {
                parts.remove(0);
            }
            while let Some(&first) = parts.first() {
                match first {
                    "super" => {
                        base.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                parts.remove(0);
            }
            let full: Module = base
                .into_iter()
                .chain(parts.iter().map(|p| p.to_string()))
                .collect();
            // The longest prefix that is a file of the crate.
            let target = (1..=full.len())
                .rev()
                .map(|n| full[..n].to_vec())
                .find(|m| modules.contains_key(m));
            if let Some(target) = target.filter(|t| t != module) {
                to.insert(target);
            }
        }
        edges.insert(module.clone(), to);
    }
    edges
}

fn layer_of(top: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top))
        .unwrap_or_else(|| panic!("top-level module `{top}` has no layer in tests/api/layers.rs"))
}

#[test]
fn no_module_of_src_imports_a_higher_layer() {
    let mut upward = Vec::new();
    for (from, targets) in graph() {
        let Some(from_top) = from.first() else {
            continue;
        };
        for to in targets {
            let to_top = &to[0];
            if to_top != from_top && layer_of(to_top) < layer_of(from_top) {
                upward.push(format!("{} -> {}", from.join("::"), to.join("::")));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports of a higher layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_file_of_src_imports_a_file_that_imports_it_back() {
    let edges = graph();
    // Depth-first search for a back edge; report the circle it closes.
    fn visit(
        at: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(start) = path.iter().position(|m| m == at) {
            return Some(path[start..].to_vec());
        }
        if !done.insert(at.clone()) {
            return None;
        }
        path.push(at.clone());
        for next in edges.get(at).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in edges.keys() {
        let mut path = Vec::new();
        if let Some(circle) = visit(module, &edges, &mut path, &mut done) {
            let names: Vec<String> = circle.iter().map(|m| m.join("::")).collect();
            panic!("import circle: {}", names.join(" -> "));
        }
    }
    assert!(edges.len() > 50, "read only {} files of src/", edges.len());
}
