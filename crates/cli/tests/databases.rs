//! Outbound PostgreSQL, MySQL (MariaDB) and MQTT from components built by
//! the real Python SDKs, against real servers started on free loopback
//! ports: every value type of each interface version round-trips, denied
//! and refused addresses are the interface's errors (and the server goes
//! on serving), connections are pooled and isolated between requests.

mod support;

use serde_json::{Value, json};
use support::servers::{Mariadb, Mosquitto, Postgres, free_port};
use support::{Gyre, TestApp};

/// SDK 5 at `/...` (postgres 4.2, mysql 3, mqtt 3) and SDK 3 at `/v3/...`
/// (fermyon 2.0 postgres/mysql/mqtt, postgres 3.0 and 4.0), both allowed
/// `allowed`; a third component that may reach nothing at `/none/...`.
fn app(allowed: &str) -> TestApp {
    TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "databases"
[[trigger.http]]
route = "/..."
component = "sdk5"
[component.sdk5]
source = "{{guest:py5-db}}"
allowed_outbound_hosts = [{allowed}]
[[trigger.http]]
route = "/v3/..."
component = "sdk3"
[component.sdk3]
source = "{{guest:py3-db}}"
allowed_outbound_hosts = [{allowed}]
[[trigger.http]]
route = "/none/..."
component = "none"
[component.none]
source = "{{guest:py5-db}}"
"#
    ))
}

/// Runs `steps` on `addr` through `path` (e.g. `/pg?api=async`); the
/// status and the JSON (or error text) the guest answered.
fn run(gyre: &Gyre, path: &str, addr: &str, steps: Value) -> (u16, String) {
    let body = json!({ "addr": addr, "steps": steps }).to_string();
    let resp = gyre.post(path, body.as_bytes());
    (resp.status, resp.text())
}

fn run_ok(gyre: &Gyre, path: &str, addr: &str, steps: Value) -> Value {
    let (status, body) = run(gyre, path, addr, steps);
    if status != 200 {
        panic!("{path}: {status} {body}\n{}", gyre.stderr());
    }
    serde_json::from_str(&body).expect("JSON from the guest")
}

/// One column of the PostgreSQL round trip: its SQL type, the parameter
/// the guest sends, the value and column type it reads back.
struct PgCase {
    sql_type: &'static str,
    param: Value,
    read: Value,
    column_type: &'static str,
}

fn pg_cases() -> Vec<PgCase> {
    let case = |sql_type, param, read, column_type| PgCase {
        sql_type,
        param,
        read,
        column_type,
    };
    vec![
        case(
            "boolean",
            json!(["boolean", true]),
            json!(["boolean", true]),
            "boolean",
        ),
        case("\"char\"", json!(["int8", 7]), json!(["int8", 7]), "int8"),
        case(
            "int2",
            json!(["int16", -300]),
            json!(["int16", -300]),
            "int16",
        ),
        case(
            "int4",
            json!(["int32", 70000]),
            json!(["int32", 70000]),
            "int32",
        ),
        case(
            "int8",
            json!(["int64", 5_000_000_000i64]),
            json!(["int64", 5_000_000_000i64]),
            "int64",
        ),
        // An int32 parameter into a bigint column is widened by the host.
        case("int8", json!(["int32", 42]), json!(["int64", 42]), "int64"),
        case(
            "float4",
            json!(["floating32", 1.5]),
            json!(["floating32", 1.5]),
            "floating32",
        ),
        case(
            "float8",
            json!(["floating64", 2.25]),
            json!(["floating64", 2.25]),
            "floating64",
        ),
        case(
            "text",
            json!(["str", "héllo"]),
            json!(["str", "héllo"]),
            "str",
        ),
        case(
            "varchar(20)",
            json!(["str", "vc"]),
            json!(["str", "vc"]),
            "str",
        ),
        case(
            "bytea",
            json!(["binary", "bytes"]),
            json!(["binary", "bytes"]),
            "binary",
        ),
        case(
            "date",
            json!(["date", [2024, 2, 29]]),
            json!(["date", [2024, 2, 29]]),
            "date",
        ),
        case(
            "time",
            json!(["time", [13, 45, 30, 500_000_000]]),
            json!(["time", [13, 45, 30, 500_000_000]]),
            "time",
        ),
        case(
            "timestamp",
            json!(["datetime", [2024, 2, 29, 13, 45, 30, 0]]),
            json!(["datetime", [2024, 2, 29, 13, 45, 30, 0]]),
            "datetime",
        ),
        case(
            "timestamptz",
            json!(["timestamp", 1_700_000_000]),
            json!(["datetime", [2023, 11, 14, 22, 13, 20, 0]]),
            "timestamp",
        ),
        case(
            "uuid",
            json!(["uuid", "6f1e2c1a-8c1b-4d0e-9a51-3f1f0c2d7b10"]),
            json!(["uuid", "6f1e2c1a-8c1b-4d0e-9a51-3f1f0c2d7b10"]),
            "uuid",
        ),
        case(
            "jsonb",
            json!(["jsonb", "{\"a\": [1, 2]}"]),
            json!(["jsonb", "{\"a\":[1,2]}"]),
            "jsonb",
        ),
        // A str parameter into a uuid column is parsed by the host.
        case(
            "uuid",
            json!(["str", "00000000-0000-0000-0000-000000000001"]),
            json!(["uuid", "00000000-0000-0000-0000-000000000001"]),
            "uuid",
        ),
        // Beyond the 28 digits of common decimal libraries: exact.
        case(
            "numeric",
            json!(["decimal", "12345678901234567890.123456789012345678901"]),
            json!(["decimal", "12345678901234567890.123456789012345678901"]),
            "decimal",
        ),
        case(
            "int4range",
            json!(["range-int32", [[1, "inclusive"], [10, "exclusive"]]]),
            json!(["range-int32", [[1, "inclusive"], [10, "exclusive"]]]),
            "range-int32",
        ),
        case(
            "int8range",
            json!(["range-int64", [[5, "inclusive"], null]]),
            json!(["range-int64", [[5, "inclusive"], null]]),
            "range-int64",
        ),
        case(
            "numrange",
            json!([
                "range-decimal",
                [["1.5", "inclusive"], ["2.5", "exclusive"]]
            ]),
            json!([
                "range-decimal",
                [["1.5", "inclusive"], ["2.5", "exclusive"]]
            ]),
            "range-decimal",
        ),
        case(
            "int4[]",
            json!(["array-int32", [1, null, 3]]),
            json!(["array-int32", [1, null, 3]]),
            "array-int32",
        ),
        case(
            "int8[]",
            json!(["array-int64", [5_000_000_000i64]]),
            json!(["array-int64", [5_000_000_000i64]]),
            "array-int64",
        ),
        case(
            "numeric[]",
            json!(["array-decimal", ["1.10", null]]),
            json!(["array-decimal", ["1.10", null]]),
            "array-decimal",
        ),
        case(
            "text[]",
            json!(["array-str", ["a", null, "c"]]),
            json!(["array-str", ["a", null, "c"]]),
            "array-str",
        ),
        case(
            "interval",
            json!(["interval", {"micros": 1_000_000, "days": 2, "months": 3}]),
            json!(["interval", {"micros": 1_000_000, "days": 2, "months": 3}]),
            "interval",
        ),
        case("text", json!(["db-null"]), json!(["db-null"]), "str"),
        case("inet", json!(["db-null"]), json!(["db-null"]), "other"),
    ]
}

fn pg_round_trip(gyre: &Gyre, path: &str, addr: &str, table: &str, cases: &[PgCase]) {
    let columns: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| format!("c{i} {}", c.sql_type))
        .collect();
    let placeholders: Vec<String> = (1..=cases.len()).map(|i| format!("${i}")).collect();
    let params: Vec<&Value> = cases.iter().map(|c| &c.param).collect();
    let out = run_ok(
        gyre,
        path,
        addr,
        json!([
            {"op": "execute", "sql": format!("DROP TABLE IF EXISTS {table}")},
            {"op": "execute", "sql": format!("CREATE TABLE {table} ({})", columns.join(", "))},
            {"op": "execute", "sql": format!("INSERT INTO {table} VALUES ({})", placeholders.join(", ")), "params": params},
            {"op": "query", "sql": format!("SELECT * FROM {table}")},
        ]),
    );
    assert_eq!(out[2], json!({"changed": 1}), "{path}");
    let result = &out[3];
    let rows = result["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{path}: {result}");
    for (i, case) in cases.iter().enumerate() {
        assert_eq!(
            rows[0][i], case.read,
            "{path}: column {} ({}) read back",
            i, case.sql_type
        );
        assert_eq!(
            result["columns"][i],
            json!([format!("c{i}"), case.column_type]),
            "{path}: type of column {i} ({})",
            case.sql_type
        );
    }
}

#[test]
fn postgres_values_of_every_interface_version_round_trip() {
    let pg = Postgres::start();
    let allowed = format!("\"postgres://127.0.0.1:{}\"", pg.port);
    let app = app(&allowed);
    let gyre = Gyre::up(&app, &[]);
    let addr = pg.url();

    // spin:postgres@4.2.0 through SDK 5 (async and synchronous functions)
    // and 4.0 through SDK 3: the full type set.
    let cases = pg_cases();
    pg_round_trip(&gyre, "/pg?api=async", &addr, "t_async", &cases);
    pg_round_trip(&gyre, "/pg?api=sync", &addr, "t_sync", &cases);
    pg_round_trip(&gyre, "/v3/pg?api=v4", &addr, "t_v4", &cases);

    // spin:postgres@3.0.0: the types it has; the rest read as `unsupported`
    // and columns of those types as `other`.
    let v3: Vec<PgCase> = cases
        .into_iter()
        .filter(|c| {
            [
                "boolean",
                "int8",
                "int16",
                "int32",
                "int64",
                "floating32",
                "floating64",
                "str",
                "binary",
                "date",
                "time",
                "datetime",
                "timestamp",
                "db-null",
            ]
            .contains(&c.param[0].as_str().unwrap_or(""))
                && c.read[0] != "uuid"
        })
        .collect();
    pg_round_trip(&gyre, "/v3/pg?api=v3", &addr, "t_v3", &v3);
    let out = run_ok(
        &gyre,
        "/v3/pg?api=v3",
        &addr,
        json!([{"op": "query", "sql": "SELECT '6f1e2c1a-8c1b-4d0e-9a51-3f1f0c2d7b10'::uuid AS u"}]),
    );
    assert_eq!(
        out[0],
        json!({"columns": [["u", "other"]], "rows": [[["unsupported"]]]})
    );

    // fermyon:spin/postgres@2.0.0 (rdbms-types): unsigned parameters are
    // widened, since PostgreSQL has no unsigned types.
    let out = run_ok(
        &gyre,
        "/v3/pg?api=v2",
        &addr,
        json!([
            {"op": "execute", "sql": "CREATE TABLE t_v2 (a int2, b int4, c int8, d text, e bytea, f float8, g boolean)"},
            {"op": "execute", "sql": "INSERT INTO t_v2 VALUES ($1, $2, $3, $4, $5, $6, $7)", "params": [
                ["uint8", 255], ["uint16", 65535], ["uint32", 4_000_000_000u32], ["str", "x"],
                ["binary", "y"], ["floating64", 0.5], ["boolean", false]]},
            {"op": "query", "sql": "SELECT * FROM t_v2 WHERE a = $1", "params": [["int16", 255]]},
            {"op": "query", "sql": "SELECT now()::date AS d"},
        ]),
    );
    assert_eq!(out[1], json!({"changed": 1}));
    assert_eq!(
        out[2]["rows"],
        json!([[
            ["int16", 255],
            ["int32", 65535],
            ["int64", 4_000_000_000u32],
            ["str", "x"],
            ["binary", "y"],
            ["floating64", 0.5],
            ["boolean", false]
        ]])
    );
    assert_eq!(
        out[3]["rows"][0][0],
        json!(["unsupported"]),
        "a date in 2.0"
    );
    assert_eq!(out[3]["columns"][0], json!(["d", "other"]));
}

#[test]
fn postgres_errors_are_the_interface_errors_and_the_server_goes_on() {
    let pg = Postgres::start();
    let closed = free_port();
    let allowed = format!(
        "\"postgres://127.0.0.1:{}\", \"postgres://127.0.0.1:{closed}\"",
        pg.port
    );
    let app = app(&allowed);
    let gyre = Gyre::up(&app, &[]);
    let addr = pg.url();
    let select = json!([{"op": "query", "sql": "SELECT 1"}]);

    // Denied: the component lists other hosts, or none at all.
    let denied_port = free_port();
    let denied = format!("postgres://gyre:gyre-pw@127.0.0.1:{denied_port}/postgres");
    let expected = format!(
        "Error_ConnectionFailed: address postgres://127.0.0.1:{denied_port} is not permitted"
    );
    for path in [
        "/pg?api=async",
        "/pg?api=sync",
        "/v3/pg?api=v2",
        "/v3/pg?api=v3",
        "/v3/pg?api=v4",
    ] {
        assert_eq!(
            run(&gyre, path, &denied, select.clone()),
            (409, expected.clone()),
            "{path}"
        );
    }
    let expected_none = format!(
        "Error_ConnectionFailed: address postgres://127.0.0.1:{} is not permitted",
        pg.port
    );
    assert_eq!(
        run(&gyre, "/none/pg", &addr, select.clone()),
        (409, expected_none)
    );
    // Key=value connection strings are checked host by host too.
    let kv = format!("host=127.0.0.1 port={denied_port} user=gyre password=gyre-pw");
    assert_eq!(
        run(&gyre, "/pg", &kv, select.clone()),
        (409, expected.clone())
    );
    assert!(
        gyre.stderr().contains("not permitted"),
        "the denial is logged"
    );

    // Refused: allowed, but nothing listens.
    let refused = format!("postgres://gyre:gyre-pw@127.0.0.1:{closed}/postgres");
    for path in ["/pg", "/v3/pg?api=v2"] {
        let (status, body) = run(&gyre, path, &refused, select.clone());
        assert_eq!(status, 409, "{path}");
        assert!(body.starts_with("Error_ConnectionFailed"), "{path}: {body}");
    }
    // Wrong password: a connection failure naming the cause.
    let wrong = format!("postgres://gyre:nope@127.0.0.1:{}/postgres", pg.port);
    let (status, body) = run(&gyre, "/pg", &wrong, select.clone());
    assert_eq!(status, 409);
    assert!(
        body.starts_with("Error_ConnectionFailed") && body.contains("password"),
        "{body}"
    );

    // A bad query: 4.x carries PostgreSQL's structured error.
    let missing = json!([{"op": "query", "sql": "SELECT * FROM no_such_table"}]);
    let (status, body) = run(&gyre, "/pg", &addr, missing.clone());
    assert_eq!(status, 409);
    assert!(
        body.starts_with("Error_QueryFailed: QueryError_DbError") && body.contains("42P01"),
        "{body}"
    );
    let (status, body) = run(&gyre, "/v3/pg?api=v3", &addr, missing);
    assert_eq!(status, 409);
    assert!(
        body.starts_with("Error_QueryFailed: ") && body.contains("no_such_table"),
        "{body}"
    );

    // Parameters the statement does not take, or of a type it cannot.
    let (status, body) = run(
        &gyre,
        "/pg",
        &addr,
        json!([{"op": "query", "sql": "SELECT $1::int4", "params": [["int32", 1], ["int32", 2]]}]),
    );
    assert_eq!(status, 409);
    assert!(body.starts_with("Error_BadParameter"), "{body}");
    let (status, body) = run(
        &gyre,
        "/pg",
        &addr,
        json!([{"op": "query", "sql": "SELECT $1::int2", "params": [["int64", 100_000]]}]),
    );
    assert_eq!(status, 409);
    assert!(
        body.starts_with("Error_BadParameter") && body.contains("does not fit"),
        "{body}"
    );

    // A parameter of another kind than the statement's (an array for a
    // scalar, a date for text) is refused before it reaches the server.
    for param in [
        json!(["array-int32", [1]]),
        json!(["date", [2024, 1, 1]]),
        json!(["interval", {"micros": 1, "days": 0, "months": 0}]),
    ] {
        let (status, body) = run(
            &gyre,
            "/pg",
            &addr,
            json!([{"op": "query", "sql": "SELECT $1::text", "params": [param]}]),
        );
        assert_eq!(status, 409, "{param}");
        assert!(body.starts_with("Error_BadParameter"), "{param}: {body}");
    }

    // The server went on serving all along.
    assert_eq!(gyre.get("/hello").status, 200);
    let out = run_ok(&gyre, "/pg", &addr, select);
    assert_eq!(out[0]["rows"], json!([[["int32", 1]]]));
}

#[test]
fn postgres_connections_are_pooled_and_isolated_between_requests() {
    let pg = Postgres::start();
    let allowed = format!("\"postgres://127.0.0.1:{}\"", pg.port);
    let app = app(&allowed);
    let gyre = Gyre::up(&app, &[]);
    let addr = pg.url();
    run_ok(
        &gyre,
        "/pg",
        &addr,
        json!([{"op": "execute", "sql": "CREATE TABLE iso (n int4)"}]),
    );
    // A guest that begins a transaction and never commits: its writes are
    // rolled back before the connection serves anyone else.
    run_ok(
        &gyre,
        "/pg",
        &addr,
        json!([
            {"op": "execute", "sql": "BEGIN"},
            {"op": "execute", "sql": "INSERT INTO iso VALUES (1)"},
        ]),
    );
    for _ in 0..20 {
        let out = run_ok(
            &gyre,
            "/pg",
            &addr,
            json!([{"op": "query", "sql": "SELECT count(*)::int4 AS n FROM iso"}]),
        );
        assert_eq!(out[0]["rows"], json!([[["int32", 0]]]));
    }
    // Sequential requests reuse one server connection.
    let out = run_ok(
        &gyre,
        "/pg",
        &addr,
        json!([{"op": "query", "sql": "SELECT count(*)::int4 FROM pg_stat_activity WHERE usename = 'gyre'"}]),
    );
    let connections = out[0]["rows"][0][0][1].as_i64().expect("a count");
    assert!(
        connections <= 2,
        "{connections} server connections for 22 sequential requests"
    );
}

#[test]
fn mysql_values_round_trip_and_errors_are_the_interface_errors() {
    let db = Mariadb::start();
    let closed = free_port();
    let allowed = format!(
        "\"mysql://127.0.0.1:{}\", \"mysql://127.0.0.1:{closed}\"",
        db.port
    );
    let app = app(&allowed);
    let gyre = Gyre::up(&app, &[]);
    let addr = db.url();
    for (path, table) in [("/mysql", "t3"), ("/v3/mysql", "t2")] {
        let out = run_ok(
            &gyre,
            path,
            &addr,
            json!([
                {"op": "execute", "sql": format!("CREATE TABLE {table} (
                    a TINYINT, b SMALLINT, c INT, d BIGINT,
                    e TINYINT UNSIGNED, f SMALLINT UNSIGNED, g INT UNSIGNED, h BIGINT UNSIGNED,
                    i FLOAT, j DOUBLE, k VARCHAR(20), l BLOB, m DECIMAL(10,3), n DATE,
                    o DATETIME, p TEXT, q BOOLEAN)")},
                {"op": "execute", "sql": format!("INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"), "params": [
                    ["int8", -8], ["int16", -300], ["int32", -70000], ["int64", -5_000_000_000i64],
                    ["uint8", 200], ["uint16", 60000], ["uint32", 4_000_000_000u32], ["uint64", 18_000_000_000_000_000_000u64],
                    ["floating32", 1.5], ["floating64", 2.25], ["str", "héllo"], ["binary", "raw"],
                    ["str", "12.345"], ["str", "2024-02-29"], ["str", "2024-02-29 13:45:30"], ["db-null"], ["boolean", true]]},
                {"op": "query", "sql": format!("SELECT * FROM {table} WHERE c = ?"), "params": [["int32", -70000]]},
            ]),
        );
        assert_eq!(
            out[2]["rows"],
            json!([[
                ["int8", -8],
                ["int16", -300],
                ["int32", -70000],
                ["int64", -5_000_000_000i64],
                ["uint8", 200],
                ["uint16", 60000],
                ["uint32", 4_000_000_000u32],
                ["uint64", 18_000_000_000_000_000_000u64],
                ["floating32", 1.5],
                ["floating64", 2.25],
                ["str", "héllo"],
                ["binary", "raw"],
                ["str", "12.345"],
                ["str", "2024-02-29"],
                ["str", "2024-02-29 13:45:30"],
                ["db-null"],
                ["boolean", true]
            ]]),
            "{path}"
        );
        let types: Vec<&str> = out[2]["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(|c| c[1].as_str())
            .collect();
        assert_eq!(
            types,
            [
                "int8",
                "int16",
                "int32",
                "int64",
                "uint8",
                "uint16",
                "uint32",
                "uint64",
                "floating32",
                "floating64",
                "str",
                "binary",
                "str",
                "str",
                "str",
                "str",
                "boolean"
            ],
            "{path}"
        );
    }

    let select = json!([{"op": "query", "sql": "SELECT 1"}]);
    let denied = format!("mysql://gyre:gyre-pw@127.0.0.1:{}/gyre", free_port());
    for path in ["/mysql", "/v3/mysql"] {
        assert_eq!(
            run(&gyre, path, &denied, select.clone()),
            (
                409,
                format!("Error_ConnectionFailed: address {denied} is not permitted")
            ),
            "{path}"
        );
    }
    let refused = format!("mysql://gyre:gyre-pw@127.0.0.1:{closed}/gyre");
    for path in ["/mysql", "/v3/mysql"] {
        let (status, body) = run(&gyre, path, &refused, select.clone());
        assert_eq!(status, 409, "{path}");
        assert!(body.starts_with("Error_ConnectionFailed"), "{path}: {body}");
    }
    let (status, body) = run(
        &gyre,
        "/mysql",
        &addr,
        json!([{"op": "query", "sql": "SELECT * FROM no_such_table"}]),
    );
    assert_eq!(status, 409);
    assert!(
        body.starts_with("Error_QueryFailed") && body.contains("no_such_table"),
        "{body}"
    );
    let (status, body) = run(
        &gyre,
        "/mysql",
        &addr,
        json!([{"op": "query", "sql": "SELECT ?", "params": []}]),
    );
    assert_eq!(status, 409);
    assert!(body.starts_with("Error_BadParameter"), "{body}");
    assert_eq!(gyre.get("/hello").status, 200);
    let out = run_ok(&gyre, "/mysql", &addr, select);
    assert_eq!(out[0]["rows"][0][0][1], json!(1), "{out}");
}

#[test]
fn mqtt_messages_reach_the_broker_at_every_qos() {
    let broker = Mosquitto::start();
    let closed = free_port();
    let allowed = format!(
        "\"mqtt://127.0.0.1:{}\", \"mqtt://127.0.0.1:{closed}\"",
        broker.port
    );
    let app = app(&allowed);
    let gyre = Gyre::up(&app, &[]);
    let messages = broker.subscribe("gyre/test");
    let mut expected = Vec::new();
    for (path, sdk) in [("/mqtt", "sdk5"), ("/v3/mqtt", "sdk3")] {
        for qos in ["at-most-once", "at-least-once", "exactly-once"] {
            let body = json!({
                "addr": format!("{}?client_id={sdk}-{qos}", broker.url()),
                "topic": "gyre/test",
                "payload": format!("{sdk} {qos} {{i}}"),
                "qos": qos,
                "count": 5,
            });
            let resp = gyre.post(path, body.to_string().as_bytes());
            assert_eq!(
                (resp.status, resp.text()),
                (200, "published 5".to_string()),
                "{path} {qos}"
            );
            expected.extend((0..5).map(|i| format!("{sdk} {qos} {i}")));
        }
    }
    let mut received = Vec::new();
    while received.len() < expected.len() {
        match messages.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(payload) => received.push(String::from_utf8(payload).expect("UTF-8 payload")),
            Err(_) => break,
        }
    }
    received.sort();
    expected.sort();
    assert_eq!(received, expected);

    let denied = format!("mqtt://127.0.0.1:{}?client_id=spintest", free_port());
    let refused = format!("mqtt://127.0.0.1:{closed}");
    for path in ["/mqtt", "/v3/mqtt"] {
        let body = json!({"addr": denied, "topic": "t", "payload": "p"}).to_string();
        let resp = gyre.post(path, body.as_bytes());
        assert_eq!(
            (resp.status, resp.text()),
            (
                409,
                format!("Error_ConnectionFailed: address {denied} is not permitted")
            ),
            "{path}"
        );
        let body = json!({"addr": refused, "topic": "t", "payload": "p"}).to_string();
        let resp = gyre.post(path, body.as_bytes());
        assert_eq!(resp.status, 409, "{path}");
        assert!(
            resp.text().starts_with("Error_ConnectionFailed"),
            "{path}: {}",
            resp.text()
        );
    }
    assert_eq!(gyre.get("/hello").status, 200);
}
