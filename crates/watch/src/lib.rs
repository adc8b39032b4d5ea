//! What `gyre watch` watches, and what a change means.
//!
//! [`WatchPlan::new`] reads the set from the manifest once: each component's
//! `build.watch` globs (relative to its `workdir`), its `source`, its
//! `files`, plus the manifest and the runtime config. A component without
//! `build.watch` is watched through its `source` alone — never the whole
//! tree. `.spin/`, `target/`, `node_modules/` and `.git/` are never walked
//! (a `source` inside `target/` is still seen, as a single file).
//!
//! [`WatchPlan::classify`] turns changed paths into [`Changes`]: components
//! to rebuild (a `build.watch` match), components to reload (their `source`
//! changed), or the whole app to reload (manifest, runtime config, a `files`
//! path). [`Watcher`] delivers debounced batches of paths whose *content*
//! changed (a save that writes the same bytes is no change), and absorbs
//! what a build wrote so that it never starts another build.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use gyre_manifest::{ComponentSource, FileMount, Manifest};
use sha2::Digest as _;

/// Directory names never walked or watched.
pub const NEVER_WATCHED: &[&str] = &[".spin", "target", "node_modules", ".git"];

/// One component's share of the watch set.
#[derive(Debug)]
struct ComponentWatch {
    id: String,
    /// `build.watch`, matched against paths relative to `workdir`.
    build: Option<(PathBuf, GlobSet)>,
    /// The built (or given) Wasm file.
    source: Option<PathBuf>,
    /// `files` entries, as globs relative to the app directory.
    files: Option<GlobSet>,
}

/// The watch set of an application.
#[derive(Debug)]
pub struct WatchPlan {
    app_dir: PathBuf,
    config_files: Vec<PathBuf>,
    components: Vec<ComponentWatch>,
    /// Directories to watch, and whether to walk into them.
    roots: Vec<(PathBuf, bool)>,
}

/// What a batch of changed paths asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Components whose `build.watch` matched.
    pub rebuild: BTreeSet<String>,
    /// Components whose `source` changed.
    pub reload_components: BTreeSet<String>,
    /// The manifest, the runtime config or a `files` path changed.
    pub reload_app: bool,
}

impl Changes {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.rebuild.is_empty() && self.reload_components.is_empty() && !self.reload_app
    }
}

fn glob_set(patterns: impl IntoIterator<Item = String>, what: &str) -> Result<Option<GlobSet>> {
    let mut builder = GlobSetBuilder::new();
    let mut any = false;
    for pattern in patterns {
        let glob =
            Glob::new(&pattern).with_context(|| format!("{what}: invalid glob `{pattern}`"))?;
        builder.add(glob);
        any = true;
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(
        builder
            .build()
            .with_context(|| format!("{what}: invalid globs"))?,
    ))
}

/// The directory part of a glob before its first wildcard, and whether
/// the glob reaches below it (`**`, or a wildcard in a directory part).
fn glob_root(pattern: &str) -> (PathBuf, bool) {
    let mut root = PathBuf::new();
    let parts: Vec<&str> = pattern.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let wild = part.contains(['*', '?', '[', '{']);
        if wild || i == parts.len() - 1 {
            let deep = wild && (part.contains("**") || i < parts.len() - 1);
            return (root, deep);
        }
        root.push(part);
    }
    (root, false)
}

impl WatchPlan {
    /// Reads the watch set from a manifest.
    pub fn new(
        manifest: &Manifest,
        manifest_path: &Path,
        runtime_config: Option<&Path>,
    ) -> Result<Self> {
        let app_dir = manifest_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let mut roots: Vec<(PathBuf, bool)> = vec![(app_dir.clone(), false)];
        let mut config_files = vec![manifest_path.to_path_buf()];
        if let Some(rc) = runtime_config {
            config_files.push(rc.to_path_buf());
            roots.push((parent_of(rc), false));
        }
        let mut components = Vec::new();
        for (id, component) in &manifest.components {
            let source = match &component.source {
                ComponentSource::Local(path) => Some(app_dir.join(path)),
                _ => None,
            };
            if let Some(source) = &source {
                roots.push((parent_of(source), false));
            }
            let build = match &component.build {
                Some(b) if !b.watch.is_empty() => {
                    let workdir = match &b.workdir {
                        Some(w) => app_dir.join(w),
                        None => app_dir.clone(),
                    };
                    for pattern in &b.watch {
                        let (root, deep) = glob_root(pattern);
                        roots.push((workdir.join(root), deep));
                    }
                    let set = glob_set(
                        b.watch.iter().cloned(),
                        &format!("component `{id}`: build.watch"),
                    )?;
                    set.map(|s| (workdir, s))
                }
                _ => None,
            };
            let mut file_patterns = Vec::new();
            for mount in &component.files {
                let pattern = match mount {
                    FileMount::Pattern(p) => p.clone(),
                    FileMount::Placement { source, .. } => source.clone(),
                };
                let (root, deep) = glob_root(&pattern);
                let literal = !pattern.contains(['*', '?', '[', '{']);
                // A literal entry may be a directory: everything below it counts.
                roots.push((
                    app_dir.join(if literal {
                        PathBuf::from(&pattern)
                    } else {
                        root
                    }),
                    deep || literal,
                ));
                file_patterns.push(pattern.trim_end_matches('/').to_string());
                if literal {
                    file_patterns.push(format!("{}/**", pattern.trim_end_matches('/')));
                }
            }
            components.push(ComponentWatch {
                id: id.clone(),
                build,
                source,
                files: glob_set(file_patterns, &format!("component `{id}`: files"))?,
            });
        }
        roots.sort();
        roots.dedup();
        Ok(WatchPlan {
            app_dir,
            config_files,
            components,
            roots,
        })
    }

    /// The directories to watch; `true` means walk into subdirectories
    /// (never into [`NEVER_WATCHED`] ones).
    pub fn roots(&self) -> &[(PathBuf, bool)] {
        &self.roots
    }

    /// What the changed `paths` ask for. Paths are as the watcher reports
    /// them (absolute, or relative to the current directory like the plan).
    pub fn classify(&self, paths: &[PathBuf]) -> Changes {
        let mut changes = Changes::default();
        for path in paths {
            if self.config_files.iter().any(|c| same_file(c, path)) {
                changes.reload_app = true;
                continue;
            }
            for component in &self.components {
                if component
                    .source
                    .as_ref()
                    .is_some_and(|s| same_file(s, path))
                {
                    changes.reload_components.insert(component.id.clone());
                    continue;
                }
                if excluded(path) {
                    continue;
                }
                if let Some((workdir, globs)) = &component.build
                    && let Some(rel) = relative_to(path, workdir)
                    && globs.is_match(&rel)
                {
                    changes.rebuild.insert(component.id.clone());
                }
                if let Some(files) = &component.files
                    && let Some(rel) = relative_to(path, &self.app_dir)
                    && files.is_match(&rel)
                {
                    changes.reload_app = true;
                }
            }
        }
        changes
    }
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Whether a path lies in a directory that is never watched.
pub fn excluded(path: &Path) -> bool {
    path.components()
        .any(|c| NEVER_WATCHED.iter().any(|n| c.as_os_str() == *n))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn same_file(a: &Path, b: &Path) -> bool {
    absolute(a) == absolute(b)
}

fn relative_to(path: &Path, base: &Path) -> Option<PathBuf> {
    absolute(path)
        .strip_prefix(absolute(base))
        .ok()
        .map(Path::to_path_buf)
}

/// Delivers debounced batches of paths whose content changed.
pub struct Watcher {
    inner: notify::RecommendedWatcher,
    /// Roots walked into: a directory created below one is watched too.
    deep_roots: Vec<PathBuf>,
    watched: BTreeSet<PathBuf>,
    events: mpsc::Receiver<notify::Result<notify::Event>>,
    /// Content hash of every path seen, to drop writes that change nothing.
    seen: HashMap<PathBuf, Option<[u8; 32]>>,
}

impl Watcher {
    /// Starts watching the plan's directories.
    pub fn new(plan: &WatchPlan) -> Result<Self> {
        use notify::Watcher as _;
        let (tx, events) = mpsc::channel();
        let mut inner = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })
        .context("cannot start the file watcher")?;
        let mut watched = BTreeSet::new();
        for (root, deep) in plan.roots() {
            if !root.is_dir() {
                continue;
            }
            let dirs: Vec<PathBuf> = if *deep {
                walkdir::WalkDir::new(root)
                    .into_iter()
                    .filter_entry(|e| {
                        e.depth() == 0 || !NEVER_WATCHED.iter().any(|n| e.file_name() == *n)
                    })
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_dir())
                    .map(|e| e.into_path())
                    .collect()
            } else {
                vec![root.clone()]
            };
            for dir in dirs {
                let dir = absolute(&dir);
                if watched.insert(dir.clone()) {
                    inner
                        .watch(&dir, notify::RecursiveMode::NonRecursive)
                        .with_context(|| format!("cannot watch {}", dir.display()))?;
                }
            }
        }
        let deep_roots = plan
            .roots()
            .iter()
            .filter(|(_, deep)| *deep)
            .map(|(root, _)| absolute(root))
            .collect();
        let mut watcher = Watcher {
            inner,
            deep_roots,
            watched: watched.clone(),
            events,
            seen: HashMap::new(),
        };
        // Record what is there now, so the first save of an unchanged file
        // is not taken for a change.
        for dir in &watched {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.is_file() {
                        watcher.changed(&path);
                    }
                }
            }
        }
        Ok(watcher)
    }

    /// Whether `path`'s content differs from when it was last seen
    /// (and remembers it).
    fn changed(&mut self, path: &Path) -> bool {
        let hash = std::fs::read(path).ok().map(|bytes| {
            let digest = sha2::Sha256::digest(&bytes);
            let mut out = [0u8; 32];
            out.copy_from_slice(&digest);
            out
        });
        self.seen.insert(path.to_path_buf(), hash) != Some(hash)
    }

    /// Blocks until something changes, then until `debounce` passes with
    /// no further event; returns the paths whose content changed (possibly
    /// none, after a burst of writes that changed nothing). `None` when
    /// the watcher has stopped.
    pub fn next_batch(&mut self, debounce: Duration) -> Option<Vec<PathBuf>> {
        let first = self.events.recv().ok()?;
        let mut paths = BTreeSet::new();
        collect(first, &mut paths);
        let mut quiet_until = Instant::now() + debounce;
        loop {
            let left = quiet_until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    collect(event, &mut paths);
                    quiet_until = Instant::now() + debounce;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        Some(self.settle(paths))
    }

    /// Watches directories created below a walked root; keeps the files
    /// whose content changed.
    fn settle(&mut self, paths: BTreeSet<PathBuf>) -> Vec<PathBuf> {
        use notify::Watcher as _;
        let mut changed = Vec::new();
        for path in paths {
            if path.is_dir() {
                let path = absolute(&path);
                let below_root = self.deep_roots.iter().any(|r| path.starts_with(r));
                if below_root && !excluded(&path) && self.watched.insert(path.clone()) {
                    let _ = self.inner.watch(&path, notify::RecursiveMode::NonRecursive);
                    // Files written before the watch was in place.
                    for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                        if entry.path().is_file() && self.changed(&entry.path()) {
                            changed.push(entry.path());
                        }
                    }
                }
            } else if self.changed(&path) {
                changed.push(path);
            }
        }
        changed
    }

    /// Takes in every event that arrives within `settle` (what a build
    /// just wrote) and returns the paths whose content changed, without
    /// waiting for a first event.
    pub fn drain(&mut self, settle: Duration) -> Vec<PathBuf> {
        let mut paths = BTreeSet::new();
        let until = Instant::now() + settle;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => collect(event, &mut paths),
                Err(_) => break,
            }
        }
        self.settle(paths)
    }
}

fn collect(event: notify::Result<notify::Event>, paths: &mut BTreeSet<PathBuf>) {
    let Ok(event) = event else { return };
    if matches!(event.kind, notify::EventKind::Access(_)) {
        return;
    }
    paths.extend(event.paths);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> WatchPlan {
        let manifest = gyre_manifest::parse(gyre_manifest::SourceFile::new(
            Path::new("/app/spin.toml"),
            text.to_string(),
        ))
        .expect("valid manifest");
        WatchPlan::new(
            &manifest,
            Path::new("/app/spin.toml"),
            Some(Path::new("/app/rc.toml")),
        )
        .expect("plan")
    }

    const APP: &str = r#"spin_manifest_version = 2
[application]
name = "a"
[[trigger.http]]
route = "/..."
component = "api"
[[trigger.http]]
route = "/static/..."
component = "assets"
[component.api]
source = "api/app.wasm"
[component.api.build]
command = "make"
workdir = "api"
watch = ["*.py", "lib/**/*.py"]
[component.assets]
source = "target/wasm32-wasip1/release/server.wasm"
files = [{ source = "public", destination = "/" }]
"#;

    #[test]
    fn changes_are_classified_by_what_the_manifest_says() {
        let p = plan(APP);
        let cases: &[(&str, Changes)] = &[
            (
                "/app/api/app.py",
                Changes {
                    rebuild: ["api".into()].into(),
                    ..Default::default()
                },
            ),
            (
                "/app/api/lib/x/y.py",
                Changes {
                    rebuild: ["api".into()].into(),
                    ..Default::default()
                },
            ),
            (
                "/app/api/app.wasm",
                Changes {
                    reload_components: ["api".into()].into(),
                    ..Default::default()
                },
            ),
            (
                "/app/target/wasm32-wasip1/release/server.wasm",
                Changes {
                    reload_components: ["assets".into()].into(),
                    ..Default::default()
                },
            ),
            (
                "/app/public/index.html",
                Changes {
                    reload_app: true,
                    ..Default::default()
                },
            ),
            (
                "/app/spin.toml",
                Changes {
                    reload_app: true,
                    ..Default::default()
                },
            ),
            (
                "/app/rc.toml",
                Changes {
                    reload_app: true,
                    ..Default::default()
                },
            ),
            // Not watched: another file, build outputs, dependencies.
            ("/app/README.md", Changes::default()),
            ("/app/api/node_modules/x/y.py", Changes::default()),
            ("/app/api/target/z.py", Changes::default()),
            ("/app/api/app.txt", Changes::default()),
        ];
        for (path, expected) in cases {
            assert_eq!(&p.classify(&[PathBuf::from(path)]), expected, "{path}");
        }
    }

    #[test]
    fn a_component_without_build_watch_watches_only_its_source() {
        let p = plan(APP);
        let roots: Vec<String> = p
            .roots()
            .iter()
            .map(|(r, deep)| format!("{}{}", r.display(), if *deep { "/**" } else { "" }))
            .collect();
        assert_eq!(
            roots,
            [
                "/app",
                "/app/api",
                "/app/api/lib/**",
                "/app/public/**",
                "/app/target/wasm32-wasip1/release"
            ]
        );
    }

    #[test]
    fn glob_roots() {
        assert_eq!(glob_root("src/**/*.rs"), (PathBuf::from("src"), true));
        assert_eq!(glob_root("*.py"), (PathBuf::new(), false));
        assert_eq!(glob_root("Cargo.toml"), (PathBuf::new(), false));
        assert_eq!(glob_root("a/*/b.txt"), (PathBuf::from("a"), true));
    }

    #[test]
    fn the_watcher_reports_content_changes_in_new_directories_and_ignores_same_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::write(root.join("src/a.js"), "a").expect("write");
        let text = "spin_manifest_version = 2\n[application]\nname = \"a\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n[component.web]\nsource = \"dist/web.wasm\"\nbuild = { command = \"make\", watch = [\"src/**/*.js\"] }\n";
        let manifest_path = root.join("spin.toml");
        std::fs::write(&manifest_path, text).expect("write");
        let manifest = gyre_manifest::parse(gyre_manifest::SourceFile::new(
            &manifest_path,
            text.to_string(),
        ))
        .expect("manifest");
        let plan = WatchPlan::new(&manifest, &manifest_path, None).expect("plan");
        let mut watcher = Watcher::new(&plan).expect("watcher");
        let debounce = Duration::from_millis(100);

        // The same bytes again: an event, but no change.
        std::fs::write(root.join("src/a.js"), "a").expect("write");
        assert_eq!(
            watcher.drain(Duration::from_millis(300)),
            Vec::<PathBuf>::new()
        );

        // A file in a directory that did not exist when watching started.
        std::fs::create_dir_all(root.join("src/lib")).expect("mkdir");
        let _ = watcher.drain(Duration::from_millis(300));
        std::fs::write(root.join("src/lib/b.js"), "b").expect("write");
        let batch = watcher.next_batch(debounce).expect("batch");
        let changes = plan.classify(&batch);
        assert_eq!(changes.rebuild, ["web".to_string()].into(), "{batch:?}");
    }
}
