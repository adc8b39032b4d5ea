//! Which of the two engines a component lands on, and that the choice is
//! remembered: a table of components (as WAT) and the engine each needs.

use gyre_engine::{CacheOutcome, EngineOptions, GyreEngine};

/// (what it is, the component, whether it needs the concurrent engine).
const COMPONENTS: &[(&str, &str, bool)] = &[
    ("an empty component", "(component)", false),
    (
        "a WASI 0.2-style import Gyre provides synchronously",
        r#"(component (import "wasi:random/random@0.2.0" (instance (export "get-random-u64" (func (result u64))))))"#,
        false,
    ),
    (
        "a component-model async type",
        "(component (type (stream u8)))",
        true,
    ),
    (
        "an async function import",
        r#"(component (import "f" (func async)))"#,
        true,
    ),
    (
        "a Spin 3 interface only the concurrent linker could provide",
        r#"(component (import "spin:key-value/key-value@3.0.0" (instance (export "open" (func)))))"#,
        true,
    ),
    (
        "a WASI 0.3 interface",
        r#"(component (import "wasi:random/random@0.3.0" (instance (export "get-random-u64" (func (result u64))))))"#,
        true,
    ),
];

fn engine(cache: &std::path::Path) -> GyreEngine {
    GyreEngine::new(&EngineOptions {
        pooling: Some(false),
        cache_dir: Some(cache.to_path_buf()),
        ..EngineOptions::default()
    })
    .expect("engine")
}

#[test]
fn each_component_lands_on_the_engine_it_needs_and_a_warm_start_agrees() {
    let cache = tempfile::tempdir().expect("temp dir");
    for (what, wat, concurrent) in COMPONENTS {
        // A cold start decides; a second process with the same cache must
        // find the same engine, from the cache.
        for (start, outcome) in [("cold", CacheOutcome::Miss), ("warm", CacheOutcome::Hit)] {
            let engine = engine(cache.path());
            let loaded = engine
                .load("test", wat.as_bytes())
                .unwrap_or_else(|e| panic!("{what}: {e:#}"));
            assert_eq!(
                loaded.component.engine().get_concurrency_support(),
                *concurrent,
                "{what} ({start} start) is on the wrong engine"
            );
            assert_eq!(loaded.cache, outcome, "{what} ({start} start)");
        }
    }
    // Components the synchronous engine refused are marked, so a warm
    // start does not try it again.
    let markers = std::fs::read_dir(cache.path())
        .expect("cache dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "concurrent"))
        })
        .count();
    let needing = COMPONENTS.iter().filter(|(_, _, c)| *c).count();
    assert_eq!(markers, needing);
}

#[test]
fn without_the_synchronous_engine_everything_runs_on_the_concurrent_one() {
    let engine = GyreEngine::new(&EngineOptions {
        pooling: Some(false),
        cache_dir: None,
        synchronous_engine: false,
        ..EngineOptions::default()
    })
    .expect("engine");
    let loaded = engine.load("test", b"(component)").expect("loads");
    assert!(loaded.component.engine().get_concurrency_support());
    assert_eq!(loaded.cache, CacheOutcome::Disabled);
}
