//! Many instances, one state: three `gyre up -f REF` processes of one app,
//! each in its own network namespace (a bridge and veth pairs), behind a
//! real HAProxy health-checking `/.well-known/spin/health`, with key-value
//! on Redis and rows in PostgreSQL. One instance is SIGKILLed under a load
//! of writes: every acknowledged write must be there afterwards, HAProxy
//! must stop sending to the dead instance within its check interval, the
//! survivors must keep serving, and the restarted instance must rejoin.
//!
//! Needs root for `ip netns`; where namespaces cannot be made, the
//! instances share loopback on separate ports (and say so).

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::servers::{Postgres, RedisServer, Registry, free_port, wait_for_host_port};
use support::{Gyre, TestApp, gyre_command, shared_cache_dir};

/// HAProxy's health-check interval and the failures that mark a server down.
const CHECK_INTERVAL: Duration = Duration::from_millis(300);
const FALL: u32 = 2;
const RISE: u32 = 2;
const INSTANCES: usize = 3;

/// A bridge on the host and one namespace per instance, each with a veth
/// into the bridge; or, without namespaces, loopback.
struct Network {
    namespaces: Vec<String>,
    bridge: Option<String>,
    /// The host's address, where Redis, PostgreSQL and the registry listen.
    host: String,
    /// Each instance's address.
    instance_ips: Vec<String>,
}

impl Network {
    fn new(count: usize) -> Network {
        let tag = std::process::id() % 10_000;
        let subnet = format!("10.{}.{}", 200 + tag % 50, tag % 250);
        let bridge = format!("gyb{tag}");
        let namespaces: Vec<String> = (0..count).map(|i| format!("gyre-test-{tag}-{i}")).collect();
        let mut network = Network {
            namespaces: Vec::new(),
            bridge: None,
            host: format!("{subnet}.1"),
            instance_ips: Vec::new(),
        };
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ip(&["link", "add", &bridge, "type", "bridge"]) {
            eprintln!(
                "NOTE: cannot create network namespaces here (needs root and iproute2): the instances share loopback on separate ports"
            );
            network.host = "127.0.0.1".into();
            network.instance_ips = vec!["127.0.0.1".into(); count];
            return network;
        }
        network.bridge = Some(bridge.clone());
        let ok = ip(&[
            "addr",
            "add",
            &format!("{}/24", network.host),
            "dev",
            &bridge,
        ]) && ip(&["link", "set", &bridge, "up"]);
        assert!(ok, "cannot configure bridge {bridge}");
        for (i, ns) in namespaces.iter().enumerate() {
            let host_end = format!("gyv{tag}x{i}");
            let ns_end = format!("gyp{tag}x{i}");
            let address = format!("{subnet}.{}", 11 + i);
            let netns = |args: &[&str]| {
                let mut full = vec!["netns", "exec", ns.as_str(), "ip"];
                full.extend_from_slice(args);
                ip(&full)
            };
            let ok = ip(&["netns", "add", ns])
                && {
                    network.namespaces.push(ns.clone());
                    ip(&[
                        "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end,
                    ])
                }
                && ip(&["link", "set", &ns_end, "netns", ns])
                && ip(&["link", "set", &host_end, "master", &bridge])
                && ip(&["link", "set", &host_end, "up"])
                && netns(&["addr", "add", &format!("{address}/24"), "dev", &ns_end])
                && netns(&["link", "set", &ns_end, "up"])
                && netns(&["link", "set", "lo", "up"]);
            assert!(ok, "cannot set up namespace {ns}");
            network.instance_ips.push(address);
        }
        network
    }

    /// `program` run inside instance `i`'s namespace.
    fn command(&self, i: usize, program: &Path) -> (PathBuf, Vec<String>) {
        match self.namespaces.get(i) {
            Some(ns) => (
                PathBuf::from("ip"),
                vec![
                    "netns".into(),
                    "exec".into(),
                    ns.clone(),
                    program.display().to_string(),
                ],
            ),
            None => (program.to_path_buf(), Vec::new()),
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if let Some(bridge) = &self.bridge {
            let _ = Command::new("ip").args(["link", "del", bridge]).status();
        }
    }
}

/// A real HAProxy in front of the instances.
struct Haproxy {
    child: Child,
    front: u16,
    stats: u16,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(backends: &[(String, u16)]) -> Haproxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let front = free_port();
        let stats = free_port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, (ip, port))| format!("  server g{i} {ip}:{port} check\n"))
            .collect();
        let config = format!(
            "global\n  maxconn 4096\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  retries 2\n  option redispatch\n\
             frontend web\n  bind 127.0.0.1:{front}\n  default_backend gyre\n\
             backend gyre\n  balance roundrobin\n  option httpchk GET /.well-known/spin/health\n  http-check expect status 200\n  default-server inter {}ms fall {FALL} rise {RISE}\n{servers}\
             listen stats\n  bind 127.0.0.1:{stats}\n  stats enable\n  stats uri /stats\n",
            CHECK_INTERVAL.as_millis()
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let binary = std::env::var_os("GYRE_HAPROXY")
            .map_or_else(|| PathBuf::from("haproxy"), PathBuf::from);
        let mut child = Command::new(&binary)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("`haproxy` is needed by this test (apt-get install haproxy): {e}")
            });
        wait_for_host_port("127.0.0.1", front, &mut child, "haproxy");
        Haproxy {
            child,
            front,
            stats,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.front)
    }

    /// `(status, total sessions)` of each server, from the stats CSV.
    fn servers(&self) -> HashMap<String, (String, u64)> {
        let csv = support::request(
            "GET",
            &format!("http://127.0.0.1:{}/stats;csv", self.stats),
            &[],
            None,
        )
        .text();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .expect("a header")
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let column = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .expect("a stats column")
        };
        let (px, sv, status, stot) = (
            column("pxname"),
            column("svname"),
            column("status"),
            column("stot"),
        );
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > stot && f[px] == "gyre" && f[sv].starts_with('g'))
            .map(|f| {
                (
                    f[sv].to_string(),
                    (f[status].to_string(), f[stot].parse().unwrap_or(0)),
                )
            })
            .collect()
    }

    /// Waits until server `name`'s status starts with `want`; returns when.
    fn wait_status(&self, name: &str, want: &str, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        loop {
            let status = self
                .servers()
                .get(name)
                .map(|s| s.0.clone())
                .unwrap_or_default();
            if status.starts_with(want) {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not become {want} (is {status})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the writers saw.
#[derive(Default)]
struct Writes {
    kv: Vec<String>,
    rows: Vec<String>,
    /// When each failed request was sent.
    failures: Vec<Instant>,
    total: u64,
}

fn writers(
    haproxy: &Haproxy,
    pg_url: &str,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Writes>>, Vec<std::thread::JoinHandle<()>>) {
    let writes = Arc::new(Mutex::new(Writes::default()));
    let threads = (0..4)
        .map(|t| {
            let writes = writes.clone();
            let stop = stop.clone();
            let kv_url = haproxy.url("/kv/set/");
            let pg = haproxy.url("/pg");
            let pg_url = pg_url.to_string();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{t}-{n}");
                    n += 1;
                    let sent = Instant::now();
                    let kv = support::request("POST", &format!("{kv_url}{key}"), &[], Some(key.as_bytes()));
                    let insert = serde_json::json!({
                        "addr": pg_url,
                        "steps": [{ "op": "execute", "sql": "INSERT INTO writes (id) VALUES ($1)", "params": [["str", key]] }],
                    })
                    .to_string();
                    let sent_row = Instant::now();
                    let row = support::request("POST", &pg, &[], Some(insert.as_bytes()));
                    let mut w = writes.lock().expect("lock");
                    w.total += 2;
                    if kv.status == 200 {
                        w.kv.push(key.clone());
                    } else {
                        w.failures.push(sent);
                    }
                    if row.status == 200 {
                        w.rows.push(key);
                    } else {
                        w.failures.push(sent_row);
                    }
                }
            })
        })
        .collect();
    (writes, threads)
}

fn gyre_binary() -> PathBuf {
    std::env::var_os("GYRE_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_gyre")), PathBuf::from)
}

struct Fleet {
    network: Network,
    reference: String,
    runtime_config: PathBuf,
    env: Vec<(String, String)>,
    ports: Vec<u16>,
}

impl Fleet {
    fn start(&self, i: usize) -> Gyre {
        let (program, mut args) = self.network.command(i, &gyre_binary());
        args.extend(
            [
                "up",
                "--listen",
                &format!("{}:{}", self.network.instance_ips[i], self.ports[i]),
                "-f",
                &self.reference,
                "-k",
                "-q",
                "--runtime-config-file",
                &self.runtime_config.display().to_string(),
            ]
            .map(String::from),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let dir = self.runtime_config.parent().expect("a directory");
        Gyre::start_program(&program, dir, &args, &env)
    }
}

#[test]
fn three_instances_share_state_and_survive_losing_one() {
    let network = Network::new(INSTANCES);
    let host = network.host.clone();
    let extra: Vec<&str> = if host == "127.0.0.1" {
        vec![]
    } else {
        vec![host.as_str()]
    };
    let redis = RedisServer::start_bound(&extra);
    let postgres = Postgres::start_listening(&extra);
    let registry = Registry::start_on(&host);
    let pg_url = format!("postgres://gyre:gyre-pw@{host}:{}/postgres", postgres.port);

    let app = TestApp::new(&format!(
        r#"spin_manifest_version = 2
[application]
name = "shared-state"
[[trigger.http]]
route = "/kv/..."
component = "state"
[[trigger.http]]
route = "/pg"
component = "db"
[component.state]
source = "{{guest:py5-state}}"
key_value_stores = ["default"]
[component.db]
source = "{{guest:py5-db}}"
allowed_outbound_hosts = ["postgres://{host}:{}"]
"#,
        postgres.port
    ));
    let home = tempfile::tempdir().expect("home");
    let env = vec![
        (
            "GYRE_REGISTRY_CACHE_DIR".to_string(),
            home.path().join("registry").display().to_string(),
        ),
        (
            "DOCKER_CONFIG".to_string(),
            home.path().join("docker").display().to_string(),
        ),
        (
            "GYRE_CACHE_DIR".to_string(),
            shared_cache_dir().display().to_string(),
        ),
    ];
    let reference = format!("{}/team/shared-state:v1", registry.addr());
    let push = gyre_command()
        .current_dir(app.path())
        .args(["registry", "push", "-k", &reference])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("push");
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    let runtime_config = home.path().join("runtime-config.toml");
    std::fs::write(
        &runtime_config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://{host}:{}\"\n",
            redis.port
        ),
    )
    .expect("runtime config");
    let ports: Vec<u16> = (0..INSTANCES).map(|_| free_port()).collect();
    let fleet = Fleet {
        network,
        reference,
        runtime_config,
        env,
        ports,
    };

    let mut instances: Vec<Option<Gyre>> = (0..INSTANCES).map(|i| Some(fleet.start(i))).collect();
    let backends: Vec<(String, u16)> = (0..INSTANCES)
        .map(|i| (fleet.network.instance_ips[i].clone(), fleet.ports[i]))
        .collect();
    let haproxy = Haproxy::start(&backends);
    for i in 0..INSTANCES {
        haproxy.wait_status(&format!("g{i}"), "UP", Duration::from_secs(30));
    }
    let create = serde_json::json!({
        "addr": pg_url,
        "steps": [{ "op": "execute", "sql": "CREATE TABLE writes (id text PRIMARY KEY)" }],
    });
    let created = support::request(
        "POST",
        &haproxy.url("/pg"),
        &[],
        Some(create.to_string().as_bytes()),
    );
    assert_eq!(created.status, 200, "{}", created.text());

    // Writes from four clients; one instance dies under them.
    let stop = Arc::new(AtomicBool::new(false));
    let (writes, threads) = writers(&haproxy, &pg_url, stop.clone());
    std::thread::sleep(Duration::from_millis(1500));
    let before_kill = haproxy.servers();
    let killed_at = Instant::now();
    instances[1].take().expect("instance 1").kill();
    let down_at = haproxy.wait_status("g1", "DOWN", Duration::from_secs(10));
    let detection = down_at - killed_at;
    std::thread::sleep(Duration::from_millis(1500));
    let after_kill = haproxy.servers();

    // Back, in the same namespace, on the same port.
    instances[1] = Some(fleet.start(1));
    let up_at = haproxy.wait_status("g1", "UP", Duration::from_secs(30));
    let rejoined = haproxy.servers()["g1"].1;
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("writer");
    }
    let after_rejoin = haproxy.servers();

    let writes = writes.lock().expect("lock");
    let late_failures = writes
        .failures
        .iter()
        .filter(|sent| **sent > down_at + Duration::from_millis(50) && **sent < up_at)
        .count();
    eprintln!(
        "scale-out: {} requests, {} key-value and {} row writes acknowledged, {} failed (all while instance 1 was dying); kill→DOWN {} ms (check every {} ms, fall {FALL}); rejoined {} ms after restart",
        writes.total,
        writes.kv.len(),
        writes.rows.len(),
        writes.failures.len(),
        detection.as_millis(),
        CHECK_INTERVAL.as_millis(),
        (up_at - down_at).as_millis(),
    );

    // HAProxy noticed within its check interval (fall × interval, plus
    // one interval of phase and scheduling slack on a busy machine).
    assert!(
        detection <= CHECK_INTERVAL * (FALL + 1) + Duration::from_secs(1),
        "kill→DOWN took {} ms",
        detection.as_millis()
    );
    assert_eq!(
        late_failures, 0,
        "no request failed once HAProxy had marked the instance down"
    );
    for survivor in ["g0", "g2"] {
        assert!(
            after_kill[survivor].1 > before_kill[survivor].1,
            "{survivor} kept serving after the kill"
        );
    }
    assert!(
        after_rejoin["g1"].1 > rejoined,
        "the restarted instance serves again"
    );
    assert!(
        writes.kv.len() > 50 && writes.rows.len() > 50,
        "the load ran"
    );

    // Every acknowledged write is there.
    for chunk in writes.kv.chunks(100) {
        let mut args = vec!["EXISTS"];
        args.extend(chunk.iter().map(String::as_str));
        assert_eq!(
            redis.int(&args),
            chunk.len() as i64,
            "acknowledged keys are all in Redis"
        );
    }
    let rows = Command::new("psql")
        .arg(format!(
            "postgres://gyre:gyre-pw@127.0.0.1:{}/postgres",
            postgres.port
        ))
        .args(["-Atc", "SELECT id FROM writes"])
        .output()
        .expect("psql (apt-get install postgresql-client)");
    assert!(
        rows.status.success(),
        "{}",
        String::from_utf8_lossy(&rows.stderr)
    );
    let stored: std::collections::HashSet<String> = String::from_utf8_lossy(&rows.stdout)
        .lines()
        .map(String::from)
        .collect();
    let missing: Vec<&String> = writes
        .rows
        .iter()
        .filter(|k| !stored.contains(*k))
        .collect();
    assert!(missing.is_empty(), "acknowledged rows missing: {missing:?}");
    drop(instances);
    drop(haproxy);
    drop(fleet);
}
