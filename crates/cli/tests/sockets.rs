//! `wasi:sockets` under `allowed_outbound_hosts`, from Python guests: TCP
//! through WASI 0.3 (`wasi:sockets/types@0.3.0`, SDK 5), the release
//! candidate (`@0.3.0-rc-2026-03-15`, SDK 4) and 0.2.6 (`tcp` +
//! `tcp-create-socket`), UDP through 0.3. Connections go to echo servers
//! on loopback; a denied one must never reach its server. The runtime
//! config's `block_networks` overrides the allow-list, for sockets and for
//! outbound HTTP (IP literals and names that resolve into a blocked range).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::servers::Upstream;
use support::{Gyre, TestApp};

/// A TCP server on `ip` that answers each connection with `echo:` and what
/// it read up to the client's end of sending, counting connections.
struct TcpEcho {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl TcpEcho {
    fn start(ip: &str) -> TcpEcho {
        let listener = TcpListener::bind((ip, 0)).expect("bind the TCP echo server");
        let addr = listener.local_addr().expect("local address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut data = Vec::new();
                    if stream.read_to_end(&mut data).is_ok() {
                        let _ = stream.write_all(b"echo:");
                        let _ = stream.write_all(&data);
                    }
                });
            }
        });
        TcpEcho { addr, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A UDP server answering each datagram with `udp:` and its contents.
fn udp_echo(ip: &str) -> SocketAddr {
    let socket = UdpSocket::bind((ip, 0)).expect("bind the UDP echo server");
    let addr = socket.local_addr().expect("local address");
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let mut reply = b"udp:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = socket.send_to(&reply, from);
        }
    });
    addr
}

fn manifest(components: &[(&str, &str, &str)]) -> String {
    let mut manifest = String::from(
        "spin_manifest_version = 2\n[application]\nname = \"sockets\"\n\
         [variables]\nnet = { default = \"127.0.0.0/30\" }\n",
    );
    for (id, guest, allowed) in components {
        manifest.push_str(&format!(
            "[[trigger.http]]\nroute = \"/{id}/...\"\ncomponent = \"{id}\"\n\
             [component.{id}]\nsource = \"{{guest:{guest}}}\"\nallowed_outbound_hosts = [{allowed}]\n"
        ));
    }
    manifest
}

fn call(gyre: &Gyre, path: &str, body: &str) -> (u16, String) {
    let response = gyre.post(path, body.as_bytes());
    (response.status, response.text())
}

#[test]
fn connections_follow_the_allow_list_in_every_sockets_version() {
    let allowed = TcpEcho::start("127.0.0.1");
    let unlisted = TcpEcho::start("127.0.0.1");
    let udp = udp_echo("127.0.0.1");
    let udp_unlisted = udp_echo("127.0.0.1");
    let grants = format!(
        "\"tcp://127.0.0.1:{}\", \"udp://127.0.0.1:{}\"",
        allowed.addr.port(),
        udp.port()
    );
    let app = TestApp::new(&manifest(&[
        ("v3", "py5-state", &grants),
        ("rc", "py4-state", &grants),
        ("web", "py5-state", "\"https://example.com\""),
    ]));
    let gyre = Gyre::up(&app, &[]);

    let (a, u) = (allowed.addr, udp);
    let (x, ux) = (unlisted.addr, udp_unlisted);
    // (path, body, status, answer)
    let cases = [
        (
            format!("/v3/tcp?addr={a}"),
            "hello 0.3",
            200,
            "echo:hello 0.3".to_string(),
        ),
        (
            format!("/v3/tcp?addr={a}&api=p2"),
            "hello 0.2",
            200,
            "echo:hello 0.2".into(),
        ),
        (
            format!("/rc/tcp?addr={a}"),
            "hello rc",
            200,
            "echo:hello rc".into(),
        ),
        (
            format!("/rc/tcp?addr={a}&api=p2"),
            "rc p2",
            200,
            "echo:rc p2".into(),
        ),
        (format!("/v3/udp?addr={u}"), "ping", 200, "udp:ping".into()),
        (
            format!("/rc/udp?addr={u}"),
            "ping rc",
            200,
            "udp:ping rc".into(),
        ),
        // The same host on another port; UDP to another port; an app without
        // any socket grant.
        (
            format!("/v3/tcp?addr={x}"),
            "x",
            409,
            "access-denied".into(),
        ),
        (
            format!("/v3/tcp?addr={x}&api=p2"),
            "x",
            409,
            "access-denied".into(),
        ),
        (
            format!("/rc/tcp?addr={x}"),
            "x",
            409,
            "access-denied".into(),
        ),
        (
            format!("/v3/udp?addr={ux}"),
            "x",
            409,
            "access-denied".into(),
        ),
        (
            format!("/web/tcp?addr={a}"),
            "x",
            409,
            "access-denied".into(),
        ),
        // Nothing listens: not on a chosen address, not on the wildcard.
        (
            "/v3/listen?addr=127.0.0.1:0".into(),
            "",
            409,
            "access-denied".into(),
        ),
        (
            "/v3/listen?addr=0.0.0.0:0".into(),
            "",
            409,
            "access-denied".into(),
        ),
        (
            "/rc/listen?addr=0.0.0.0:0".into(),
            "",
            409,
            "access-denied".into(),
        ),
    ];
    for (path, body, status, answer) in &cases {
        assert_eq!(call(&gyre, path, body), (*status, answer.clone()), "{path}");
    }
    assert_eq!(allowed.accepted(), 4, "each allowed TCP call connects once");
    assert_eq!(
        unlisted.accepted(),
        0,
        "a denied connect never reaches the server"
    );
    assert!(
        gyre.stderr().contains(&format!(
            "component `v3`: Outbound network destination not allowed: tcp://{x}"
        )),
        "the denial is logged with the component and address:\n{}",
        gyre.stderr()
    );
}

#[test]
fn cidr_and_templated_cidr_entries_allow_a_range_of_addresses() {
    // 127.0.0.0/30 holds .1 and .2; .9 is outside it.
    let inside = TcpEcho::start("127.0.0.2");
    let outside = TcpEcho::start("127.0.0.9");
    let app = TestApp::new(&manifest(&[
        ("cidr", "py5-state", "\"tcp://127.0.0.0/30:*\""),
        ("templated", "py5-state", "\"tcp://{{ net }}:*\""),
        ("any", "py5-state", "\"*://127.0.0.0/30:*\""),
    ]));
    let gyre = Gyre::up(&app, &[]);
    let (i, o) = (inside.addr, outside.addr);
    for id in ["cidr", "templated", "any"] {
        assert_eq!(
            call(&gyre, &format!("/{id}/tcp?addr={i}"), id),
            (200, format!("echo:{id}")),
            "{id}: {i} is in 127.0.0.0/30"
        );
        assert_eq!(
            call(&gyre, &format!("/{id}/tcp?addr={o}&api=p2"), id),
            (409, "access-denied".into()),
            "{id}: {o} is outside 127.0.0.0/30"
        );
    }
    assert_eq!(inside.accepted(), 3);
    assert_eq!(outside.accepted(), 0);
}

#[test]
fn block_networks_wins_over_the_allow_list_for_sockets_and_http() {
    let blocked = TcpEcho::start("127.0.0.1");
    let open = TcpEcho::start("127.0.0.2");
    let upstream = Upstream::start();
    let (b, o, up) = (blocked.addr, open.addr, upstream.port);
    let grants = format!(
        "\"tcp://{b}\", \"tcp://{o}\", \"http://127.0.0.1:{up}\", \"http://localhost:{up}\""
    );
    let app = TestApp::new(&manifest(&[("v3", "py5-state", &grants)]));
    app.write(
        "runtime-config.toml",
        b"[outbound_networking]\nblock_networks = [\"127.0.0.1/32\", \"::1\"]\n",
    );
    let gyre = Gyre::up(&app, &["--runtime-config-file", "runtime-config.toml"]);
    // (path, status, answer)
    let cases = [
        (format!("/v3/tcp?addr={b}"), 409, "access-denied"),
        (format!("/v3/tcp?addr={b}&api=p2"), 409, "access-denied"),
        (format!("/v3/tcp?addr={o}"), 200, "echo:x"),
        (
            format!("/v3/fetch?url=http://127.0.0.1:{up}/"),
            409,
            "ErrorCode_DestinationIpProhibited",
        ),
        // Both of localhost's addresses are blocked.
        (
            format!("/v3/fetch?url=http://localhost:{up}/"),
            409,
            "ErrorCode_DestinationIpProhibited",
        ),
    ];
    for (path, status, answer) in &cases {
        assert_eq!(
            call(&gyre, path, "x"),
            (*status, answer.to_string()),
            "{path}"
        );
    }
    assert_eq!(
        blocked.accepted(),
        0,
        "nothing connected to the blocked address"
    );
    assert_eq!(
        upstream.connections(),
        0,
        "no HTTP connection to the blocked upstream"
    );
    assert_eq!(open.accepted(), 1);
    let log = gyre.stderr();
    assert!(
        log.contains(&format!(
            "connection to {b} refused: the address is in `block_networks`"
        )),
        "{log}"
    );
    assert!(
        log.contains("outbound HTTP to `localhost` refused"),
        "{log}"
    );
}
