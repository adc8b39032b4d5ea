//! The developer loop as a user lives it: templates (`new`, `add`,
//! `templates`), `build`, `watch` with in-process hot reload under load,
//! SIGHUP reload, and `doctor`. Every app is built by the real toolchains
//! (componentize-py + spin-sdk 5, the npm JS tooling, clang + wasi-libc).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Gyre, gyre_command, repo_root, shared_cache_dir};

/// The Python SDK 5 venv `tests/apps/build.sh` creates (componentize-py,
/// spin-sdk, wasm-tools): templates' build commands find them on PATH.
fn guest_tools() -> PathBuf {
    let tools = std::env::var_os("GYRE_GUEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/gyre/guest-tools")
        });
    let venv = tools.join("venv-py5");
    assert!(
        venv.join("bin/componentize-py").is_file() && venv.join("bin/wasm-tools").is_file(),
        "{} has no componentize-py/wasm-tools: run `tests/apps/build.sh` (or `scripts/test`) first",
        venv.display()
    );
    venv
}

/// A user's environment: a fresh template store, no git identity (so
/// `authors` is the fixed `USER`), the build tools on PATH, the shared
/// compile cache.
struct UserEnv {
    _home: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl UserEnv {
    fn new() -> Self {
        let home = tempfile::tempdir().expect("home");
        let venv = guest_tools();
        let path = format!(
            "{}:{}",
            venv.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let vars = vec![
            (
                "GYRE_DATA_DIR".into(),
                home.path().join("data").display().to_string(),
            ),
            ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("USER".into(), "tester".into()),
            ("VIRTUAL_ENV".into(), venv.display().to_string()),
            ("PATH".into(), path),
            (
                "GYRE_CACHE_DIR".into(),
                shared_cache_dir().display().to_string(),
            ),
            ("NO_COLOR".into(), "1".into()),
        ];
        UserEnv { _home: home, vars }
    }

    fn pairs(&self) -> Vec<(&str, &str)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Runs `gyre ARGS` in `dir` to completion.
    fn gyre(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = gyre_command();
        cmd.current_dir(dir).args(args).stdin(Stdio::null());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd.output().expect("run gyre")
    }

    /// Runs `gyre ARGS` and asserts it succeeded; returns stderr.
    fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.gyre(dir, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "gyre {args:?} failed:\n{stderr}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// Runs `gyre ARGS`, asserts exit code 1; returns stderr.
    fn fails(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.gyre(dir, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "gyre {args:?}:\n{stderr}");
        stderr
    }
}

/// Every file under `dir` (relative path → bytes), without Gyre's state.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .expect("inside")
                    .to_string_lossy()
                    .into_owned();
                files.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}

/// Compares a produced tree with the committed one under
/// `tests/apps/templates/expected/NAME` (`UPDATE_EXPECT=1` rewrites it).
fn assert_tree(actual: &Path, name: &str) {
    let expected_dir = repo_root().join("tests/apps/templates/expected").join(name);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let _ = std::fs::remove_dir_all(&expected_dir);
        for (rel, bytes) in tree(actual) {
            let path = expected_dir.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, bytes).expect("write");
        }
    }
    let (actual, expected) = (tree(actual), tree(&expected_dir));
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "files of {name}"
    );
    for (rel, bytes) in &expected {
        assert_eq!(
            String::from_utf8_lossy(&actual[rel]),
            String::from_utf8_lossy(bytes),
            "{name}/{rel} differs from the committed expectation"
        );
    }
}

#[test]
fn a_template_in_spins_format_renders_through_new_and_add() {
    let env = UserEnv::new();
    let work = tempfile::tempdir().expect("work");
    let repo = repo_root().join("tests/apps/templates/repo");
    let install = [
        "templates",
        "install",
        "--dir",
        repo.to_str().expect("utf8"),
    ];
    let installed = env.ok(work.path(), &install);
    assert!(
        installed.contains("installed template `greeter`"),
        "{installed}"
    );
    let again = env.ok(work.path(), &install);
    assert!(
        again.contains("skipped `greeter`: already installed; `--upgrade` replaces it"),
        "{again}"
    );
    let list = env.gyre(work.path(), &["templates", "list", "--tag", "test"]);
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        list.contains("greeter") && list.contains("http, test") && !list.contains("http-py"),
        "{list}"
    );

    // new: parameters from -v and defaults, filters, a templated path, a
    // .tmpl suffix dropped, a binary file copied untouched.
    env.ok(
        work.path(),
        &[
            "new",
            "-t",
            "greeter",
            "Happy Pets",
            "-v",
            "greeting=hi",
            "-v",
            "http-path=/pets",
            "-a",
        ],
    );
    assert_tree(&work.path().join("Happy Pets"), "new");

    // add: the component snippet appended, variables merged, the trigger
    // snippet added once; the user's comments and layout are kept.
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).expect("mkdir");
    std::fs::write(
        app.join("spin.toml"),
        "# My application, by hand.\nspin_manifest_version = 2\n\n[application]\nname = \"app\"   # keep this comment\n\n[variables]\nregion = { default = \"eu\" } # and this one\n",
    )
    .expect("write");
    env.ok(&app, &["add", "-t", "greeter", "first", "-a"]);
    // The second add finds `[application.trigger.redis]`: the condition
    // skips its parameter and its snippet.
    env.ok(
        &app,
        &[
            "add",
            "-t",
            "greeter",
            "Second One",
            "-o",
            "components/second",
            "-v",
            "greeting=hi",
            "-a",
        ],
    );
    assert_tree(&app, "add");
}

#[test]
fn template_mistakes_are_explained() {
    let env = UserEnv::new();
    let work = tempfile::tempdir().expect("work");
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["new", "-t", "http-py", "a", "-v", "http-path=nope", "-a"],
            &["-v http-path", "does not match the pattern `^/\\S*$`"],
        ),
        (
            &["new", "-t", "http-py", "a"],
            &[
                "no value for parameter `project-description` (Description)",
                "`-v project-description=VALUE`",
                "`-a`",
            ],
        ),
        (
            &["new", "-t", "http-pyy", "a", "-a"],
            &["there is no template `http-pyy`", "Did you mean `http-py`?"],
        ),
        (
            &["new", "-t", "http-py", "a", "-v", "colour=red", "-a"],
            &["has no parameter `colour`", "http-path"],
        ),
        (
            &["new", "a", "-a"],
            &[
                "choose a template with -t",
                "http-c",
                "http-py",
                "static-fileserver",
            ],
        ),
        (
            &["add", "-t", "http-py", "x", "-a"],
            &["Default file 'spin.toml' not found"],
        ),
        (
            &["add", "-t", "http-empty", "x", "-a", "-f", "nowhere.toml"],
            &["'nowhere.toml' not found"],
        ),
    ];
    for (args, expected) in cases {
        let stderr = env.fails(work.path(), args);
        for piece in *expected {
            assert!(
                stderr.contains(piece),
                "gyre {args:?}: expected {piece:?} in\n{stderr}"
            );
        }
    }
    env.ok(work.path(), &["new", "-t", "http-empty", "taken", "-a"]);
    let stderr = env.fails(work.path(), &["new", "-t", "http-empty", "taken", "-a"]);
    assert!(
        stderr.contains("already exists and is not empty") && stderr.contains("--allow-overwrite"),
        "{stderr}"
    );
    // Nothing half-made is left behind by the failures.
    let left: Vec<String> = std::fs::read_dir(work.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["taken"]);
}

/// `gyre new -t TEMPLATE app -a` → `gyre build` → `gyre up` → the answer.
#[test]
fn every_built_in_template_creates_builds_and_serves() {
    let env = UserEnv::new();
    let work = tempfile::tempdir().expect("work");
    let cases: &[(&str, &str, &str)] = &[
        ("http-c", "/", "Hello from C!\n"),
        ("http-py", "/anything", "Hello from Python!"),
        (
            "static-fileserver",
            "/",
            "Served by Gyre from the <code>assets</code> directory.",
        ),
        ("http-js", "/", "Hello from JavaScript!"),
        ("http-ts", "/x", "Hello from TypeScript!"),
    ];
    for (template, path, expected) in cases {
        let name = format!("my-{template}");
        env.ok(work.path(), &["new", "-t", template, &name, "-a"]);
        let app = work.path().join(&name);
        let built = env.ok(&app, &["build"]);
        assert!(
            built.contains(&format!("built `{name}`")),
            "{template}: {built}"
        );
        let gyre = Gyre::start(&app, &["up", "--listen", "127.0.0.1:0"], &env.pairs());
        let resp = gyre.get(path);
        assert_eq!(resp.status, 200, "{template}: {}", gyre.stderr());
        assert!(
            resp.text().contains(expected),
            "{template}: {:?}",
            resp.text()
        );
    }
    env.ok(work.path(), &["new", "-t", "http-empty", "empty", "-a"]);
    let built = env.ok(&work.path().join("empty"), &["build"]);
    assert!(
        built.contains("None of the components have a build command."),
        "{built}"
    );

    // redis-py: the message reaches the handler, whose output is logged.
    let redis = support::servers::RedisServer::start();
    let address = redis.url();
    env.ok(
        work.path(),
        &[
            "new",
            "-t",
            "redis-py",
            "listener",
            "-a",
            "-v",
            &format!("redis-address={address}"),
        ],
    );
    let app = work.path().join("listener");
    env.ok(&app, &["build"]);
    let mut cmd = gyre_command();
    cmd.current_dir(&app)
        .arg("up")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env.pairs() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("gyre up");
    redis.wait_subscribed("messages");
    redis.command(&["PUBLISH", "messages", "hello from redis"]);
    let log = app.join(".spin/logs/listener_stdout.txt");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("Message received: hello from redis")
    {
        assert!(Instant::now() < deadline, "the message was not handled");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Requests in a loop on a few connections until stopped; counts answers
/// that were not 200 (or not one of `accept`), with what they were.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: String, connections: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..connections)
            .map(|_| {
                let (stop, ok, failures, url) =
                    (stop.clone(), ok.clone(), failures.clone(), url.clone());
                std::thread::spawn(move || {
                    let agent = support::agent();
                    while !stop.load(Ordering::Relaxed) {
                        match agent.get(&url).call() {
                            Ok(r) if r.status() == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => failures
                                .lock()
                                .expect("lock")
                                .push(format!("status {}", r.status())),
                            Err(e) => failures.lock().expect("lock").push(e.to_string()),
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failures,
            threads,
        }
    }

    /// Stops the load; returns (answered 200, failures).
    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let failures = self.failures.lock().expect("lock").clone();
        (self.ok.load(Ordering::Relaxed), failures)
    }
}

/// Polls until `path` answers with a body containing `expected`.
fn wait_for_answer(gyre: &Gyre, path: &str, expected: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let resp = support::request("GET", &gyre.url(path), &[], None);
        if resp.status == 200 && resp.text().contains(expected) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{path} still answers {} {:?}, expected {expected:?}\nstderr:\n{}",
            resp.status,
            resp.text(),
            gyre.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `gyre`'s stderr holds `text` at least `times` times.
fn wait_for_stderr(gyre: &Gyre, text: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while gyre.stderr().matches(text).count() < times {
        assert!(
            Instant::now() < deadline,
            "stderr never showed {text:?} {times} time(s):\n{}",
            gyre.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn set_message(app: &Path, message: &str) {
    let main = app.join("main.c");
    let text = std::fs::read_to_string(&main).expect("main.c");
    let start = text.find("MESSAGE[] = \"").expect("message") + "MESSAGE[] = \"".len();
    let end = start + text[start..].find('"').expect("end of message");
    let edited = format!("{}{message}\\n{}", &text[..start], &text[end..]);
    std::fs::write(&main, edited).expect("write main.c");
}

#[test]
fn watch_rebuilds_and_swaps_a_component_in_place_with_no_failed_request() {
    let env = UserEnv::new();
    let work = tempfile::tempdir().expect("work");
    env.ok(work.path(), &["new", "-t", "http-c", "live", "-a"]);
    let app = work.path().join("live");
    let gyre = Gyre::start(&app, &["watch", "--listen", "127.0.0.1:0"], &env.pairs());
    wait_for_answer(&gyre, "/", "Hello from C!", Duration::from_secs(30));
    let load = Load::start(gyre.url("/"), 4);
    let mut latencies = Vec::new();
    for i in 0..50 {
        let message = format!("version {i}");
        set_message(&app, &message);
        latencies.push(wait_for_answer(
            &gyre,
            "/",
            &message,
            Duration::from_secs(30),
        ));
    }
    let (ok, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during 50 reloads: {:?}",
        failures.len(),
        ok + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok > 50, "the load made only {ok} requests");
    let reloads = gyre
        .stderr()
        .matches("reloaded component `live` in")
        .count();
    assert!(
        reloads >= 50,
        "expected 50 reload lines:\n{}",
        gyre.stderr()
    );
    eprintln!(
        "http-c: edit to new answer, median of 50: {} ms; {ok} requests, 0 failed",
        median(latencies).as_millis()
    );

    // A broken edit: the build fails, the error is shown, the last good
    // version keeps answering.
    std::fs::write(app.join("main.c"), "this is not C").expect("write");
    wait_for_stderr(&gyre, "still serving the previous version", 1);
    let stderr = gyre.stderr();
    assert!(
        stderr.contains("building component `live` failed")
            && stderr.contains("exited with status"),
        "{stderr}"
    );
    let resp = gyre.get("/");
    assert_eq!(
        (resp.status, resp.text()),
        (200, "version 49\n".to_string())
    );
}

#[test]
fn watch_edit_latency_for_a_python_app() {
    let env = UserEnv::new();
    let work = tempfile::tempdir().expect("work");
    env.ok(work.path(), &["new", "-t", "http-py", "pylive", "-a"]);
    let app = work.path().join("pylive");
    let gyre = Gyre::start(&app, &["watch", "--listen", "127.0.0.1:0"], &env.pairs());
    wait_for_answer(&gyre, "/", "Hello from Python!", Duration::from_secs(60));
    let load = Load::start(gyre.url("/"), 2);
    let mut latencies = Vec::new();
    let source = std::fs::read_to_string(app.join("app.py")).expect("app.py");
    for i in 0..3 {
        let message = format!("Python version {i}");
        std::fs::write(
            app.join("app.py"),
            source.replace("Hello from Python!", &message),
        )
        .expect("write");
        latencies.push(wait_for_answer(
            &gyre,
            "/",
            &message,
            Duration::from_secs(120),
        ));
    }
    let (ok, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    eprintln!(
        "http-py: edit to new answer, median of 3: {} ms; {ok} requests, 0 failed",
        median(latencies).as_millis()
    );
}

/// An app whose build copies a prebuilt guest and counts its runs.
fn counting_app(work: &Path, build_watch: &str, files: &str) -> PathBuf {
    let app = work.join("counting");
    std::fs::create_dir_all(app.join("public")).expect("mkdir");
    std::fs::write(app.join("src.txt"), "one").expect("write");
    std::fs::write(app.join("unrelated.txt"), "x").expect("write");
    std::fs::write(
        app.join("spin.toml"),
        format!(
            r#"spin_manifest_version = 2
[application]
name = "counting"
[[trigger.http]]
route = "/..."
component = "hello"
[component.hello]
source = "hello.wasm"
{files}
[component.hello.build]
command = "echo built >> builds.log && cp {guest} hello.wasm && cp src.txt public/stamp.txt"
{build_watch}
"#,
            guest = support::guest("hello-wat"),
        ),
    )
    .expect("write manifest");
    app
}

fn builds(app: &Path) -> usize {
    std::fs::read_to_string(app.join("builds.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn a_build_that_writes_into_a_watched_files_directory_runs_once() {
    let env = UserEnv::new();
    let work = tempfile::tempdir().expect("work");
    let app = counting_app(
        work.path(),
        "watch = [\"src.txt\"]",
        "files = [\"public/**\"]",
    );
    let gyre = Gyre::start(&app, &["watch", "--listen", "127.0.0.1:0"], &env.pairs());
    assert_eq!(builds(&app), 1, "the initial build");
    std::fs::write(app.join("src.txt"), "two").expect("write");
    wait_for_stderr(&gyre, "reloaded application", 1);
    // Long enough for a loop to show itself.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        builds(&app),
        2,
        "one build per edit, none for what the build wrote:\n{}",
        gyre.stderr()
    );
    assert_eq!(gyre.get("/").status, 200);
}

#[test]
fn a_component_without_build_watch_is_not_rebuilt_for_unrelated_changes() {
    let env = UserEnv::new();
    let work = tempfile::tempdir().expect("work");
    let app = counting_app(work.path(), "", "");
    let gyre = Gyre::start(&app, &["watch", "--listen", "127.0.0.1:0"], &env.pairs());
    assert_eq!(builds(&app), 1);
    for file in ["unrelated.txt", "src.txt", "spin.toml.bak"] {
        std::fs::write(app.join(file), "changed").expect("write");
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(builds(&app), 1, "{}", gyre.stderr());
    assert!(!gyre.stderr().contains("reloaded"), "{}", gyre.stderr());
    // Its source is watched: a new build output is swapped in.
    std::fs::copy(support::guest("hello-wat"), app.join("hello.wasm.new")).expect("copy");
    std::fs::rename(app.join("hello.wasm.new"), app.join("hello.wasm")).expect("rename");
    let same = !gyre.stderr().contains("reloaded component `hello`");
    // The same bytes are no change: nothing reloads.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        same && !gyre.stderr().contains("reloaded"),
        "{}",
        gyre.stderr()
    );
    std::fs::copy(support::guest("sink-wat"), app.join("hello.wasm")).expect("copy");
    wait_for_stderr(&gyre, "reloaded component `hello`", 1);
    assert_eq!(builds(&app), 1);
}

#[test]
fn a_manifest_edit_that_adds_a_route_is_served_without_a_restart() {
    let env = UserEnv::new();
    let work = tempfile::tempdir().expect("work");
    let app = counting_app(work.path(), "watch = [\"src.txt\"]", "");
    let manifest = std::fs::read_to_string(app.join("spin.toml")).expect("read");
    std::fs::write(
        app.join("spin.toml"),
        manifest.replace("route = \"/...\"", "route = \"/a\""),
    )
    .expect("write");
    std::fs::copy(support::guest("hello-wat"), app.join("hello.wasm")).expect("copy");
    let gyre = Gyre::start(
        &app,
        &["watch", "--listen", "127.0.0.1:0", "--skip-build"],
        &env.pairs(),
    );
    assert_eq!(gyre.get("/b").status, 404);
    let load = Load::start(gyre.url("/a"), 2);
    std::fs::write(
        app.join("spin.toml"),
        format!(
            "{}\n[[trigger.http]]\nroute = \"/b\"\ncomponent = \"hello\"\n",
            manifest.replace("route = \"/...\"", "route = \"/a\"")
        ),
    )
    .expect("write");
    wait_for_answer(&gyre, "/b", "Hello, Gyre!", Duration::from_secs(20));
    // A manifest that does not parse keeps the app serving.
    std::fs::write(
        app.join("spin.toml"),
        "spin_manifest_version = 2\n[application\n",
    )
    .expect("write");
    wait_for_stderr(&gyre, "the manifest does not load", 1);
    assert!(gyre.stderr().contains("spin.toml:2"), "{}", gyre.stderr());
    assert_eq!(gyre.get("/b").status, 200);
    let (ok, failures) = load.finish();
    assert!(failures.is_empty() && ok > 0, "{failures:?}");
}

#[test]
fn sighup_reloads_a_running_app_with_no_failed_request() {
    let env = UserEnv::new();
    let work = tempfile::tempdir().expect("work");
    let app = counting_app(work.path(), "", "");
    std::fs::copy(support::guest("hello-wat"), app.join("hello.wasm")).expect("copy");
    let gyre = Gyre::start(&app, &["up", "--listen", "127.0.0.1:0"], &env.pairs());
    let load = Load::start(gyre.url("/"), 4);
    for n in 1..=5 {
        Command::new("kill")
            .args(["-HUP", &gyre.pid().to_string()])
            .status()
            .expect("kill");
        wait_for_stderr(&gyre, "reloaded application `counting`", n);
    }
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(ok > 0);
}

#[test]
fn build_reports_the_failing_component_and_doctor_finds_problems() {
    let env = UserEnv::new();
    let work = tempfile::tempdir().expect("work");
    let app = work.path().join("broken");
    std::fs::create_dir_all(&app).expect("mkdir");
    std::fs::write(
        app.join("spin.toml"),
        r#"spin_manifest_version = 2
[application]
name = "broken"
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "web.wasm"
[component.web.build]
command = ["echo preparing", "echo 'error: no such thing' >&2; exit 7", "echo never"]
"#,
    )
    .expect("write");
    let stderr = env.fails(&app, &["build"]);
    for piece in [
        "building component `web` failed",
        "`echo 'error: no such thing' >&2; exit 7` exited with status 7",
        "error: no such thing",
    ] {
        assert!(stderr.contains(piece), "{piece:?} in\n{stderr}");
    }
    assert!(!stderr.contains("never"), "{stderr}");
    let doctor = env.fails(&app, &["doctor"]);
    assert!(
        doctor.contains("its source web.wasm does not exist: run `gyre build`"),
        "{doctor}"
    );

    // A built file that is no component fails `build`, not `up`.
    std::fs::write(
        app.join("spin.toml"),
        "spin_manifest_version = 2\n[application]\nname = \"broken\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n[component.web]\nsource = \"web.wasm\"\nbuild = { command = \"echo not wasm > web.wasm\" }\n",
    )
    .expect("write");
    let stderr = env.fails(&app, &["build"]);
    assert!(
        stderr.contains("what it built will not run") && stderr.contains("component `web`"),
        "{stderr}"
    );

    // doctor on a Python SDK 5 app: handler, engine, and no import left
    // unprovided (its 96 interfaces are all Gyre's now, LLM and the WASI
    // 0.3 release candidate included).
    let py = support::TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"py\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"chat\"\n[component.chat]\nsource = \"{guest:py5-http}\"\n",
    );
    let doctor = env.ok(py.path(), &["doctor"]);
    for piece in [
        "component `chat`",
        "handler  wasi:http/handler@0.3.0",
        "engine   concurrent",
        "no errors",
    ] {
        assert!(doctor.contains(piece), "{piece:?} in\n{doctor}");
    }
    assert!(!doctor.contains("does not provide"), "{doctor}");
    let v1 = support::TestApp::new(
        "spin_manifest_version = \"1\"\nname = \"old\"\ntrigger = { type = \"http\", base = \"/\" }\n[[component]]\nid = \"hello\"\nsource = \"{guest:hello-wat}\"\n[component.trigger]\nroute = \"/...\"\n",
    );
    let doctor = env.ok(v1.path(), &["doctor"]);
    assert!(
        doctor.contains("version 1 manifest") && doctor.contains("synchronous"),
        "{doctor}"
    );
}

/// `gyre new` through a real terminal (tmux): prompts, a bad answer asked
/// again, the app created.
#[test]
fn new_prompts_on_a_terminal_and_asks_again_after_a_bad_answer() {
    let env = UserEnv::new();
    let work = tempfile::tempdir().expect("work");
    let exports: String = env
        .vars
        .iter()
        .filter(|(k, _)| k != "NO_COLOR")
        .map(|(k, v)| format!("{k}='{v}' "))
        .collect();
    let command = format!(
        "cd '{}' && env {exports} {} new -t http-py; sleep 30",
        work.path().display(),
        env!("CARGO_BIN_EXE_gyre")
    );
    let terminal = support::Tmux::start("gyre-new", 120, 30, &command);
    let screen_shows = |text: &str| terminal.screen_shows(text, Duration::from_secs(20));
    screen_shows("Enter a name for your new application");
    terminal.send(&["typed-app", "Enter"]);
    screen_shows("Description");
    terminal.send(&["Made in a terminal", "Enter"]);
    screen_shows("HTTP path");
    terminal.send(&["no-slash", "Enter"]);
    screen_shows("does not match the pattern");
    terminal.send(&["C-u", "/api/...", "Enter"]);
    let screen = screen_shows("Created application `typed-app`");
    assert!(screen.contains("gyre build --up"), "{screen}");
    let manifest =
        std::fs::read_to_string(work.path().join("typed-app/spin.toml")).expect("created");
    assert!(
        manifest.contains("route = \"/api/...\"")
            && manifest.contains("description = \"Made in a terminal\""),
        "{manifest}"
    );
}

#[test]
fn templates_install_from_git_and_uninstall() {
    let env = UserEnv::new();
    let work = tempfile::tempdir().expect("work");
    let repo = work.path().join("repo");
    let fixture = repo_root().join("tests/apps/templates/repo");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&fixture)
        .arg(&repo)
        .status()
        .expect("cp");
    assert!(copied.success());
    for args in [
        &["init", "--quiet"][..],
        &["add", "."],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "commit",
            "--quiet",
            "-m",
            "templates",
        ],
    ] {
        let status = Command::new("git")
            .current_dir(&repo)
            .args(args)
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    }
    let url = repo.to_str().expect("utf8");
    let out = env.ok(work.path(), &["templates", "install", "--git", url]);
    assert!(out.contains("installed template `greeter`"), "{out}");
    let out = env.ok(
        work.path(),
        &["templates", "install", "--git", url, "--upgrade"],
    );
    assert!(out.contains("installed template `greeter`"), "{out}");
    let list =
        String::from_utf8_lossy(&env.gyre(work.path(), &["templates", "list"]).stdout).into_owned();
    assert!(list.contains(&format!("(from {url})")), "{list}");
    env.ok(work.path(), &["templates", "uninstall", "greeter"]);
    let stderr = env.fails(work.path(), &["templates", "uninstall", "greeter"]);
    assert!(
        stderr.contains("template `greeter` is not installed"),
        "{stderr}"
    );
    let stderr = env.fails(work.path(), &["templates", "uninstall", "http-py"]);
    assert!(stderr.contains("built into gyre"), "{stderr}");
    let stderr = env.fails(
        work.path(),
        &["templates", "install", "--git", "/nonexistent/repo"],
    );
    assert!(
        stderr.contains("git clone /nonexistent/repo failed"),
        "{stderr}"
    );
}
