//! In-process cost of one request, without sockets: building a store,
//! instantiating, and a full request through the executor.
//!
//!     cargo run --release -p gyre-trigger-http --example per_request [GUEST.wasm]
//!
//! The guest defaults to `target/guests/hello-wat.wasm` (`tests/apps/build.sh`).

use std::sync::Arc;
use std::time::Instant;

use gyre_engine::{EngineOptions, GuestOutput, GyreEngine, InstanceConfig};
use http_body_util::BodyExt as _;

const ITERATIONS: u32 = 20_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let guest = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/guests/hello-wat.wasm"
        )
        .to_string()
    });
    let engine = Arc::new(GyreEngine::new(&EngineOptions::default())?);
    let loaded = engine.load("bench", &std::fs::read(&guest)?)?;
    let config = InstanceConfig {
        component_id: "bench".into(),
        env: Vec::new(),
        mounts: Vec::new(),
        output: GuestOutput::discard(),
        limits: gyre_engine::InstanceLimits::DEFAULT,
        capabilities: Vec::new(),
    };

    let started = Instant::now();
    for _ in 0..ITERATIONS {
        drop(config.new_store(loaded.component.engine(), |_| {})?);
    }
    println!(
        "store:                 {:?}",
        started.elapsed() / ITERATIONS
    );

    let started = Instant::now();
    for _ in 0..ITERATIONS {
        let mut store = config.new_store(loaded.component.engine(), |_| {})?;
        loaded.pre.instantiate_async(&mut store).await?;
    }
    println!(
        "store + instantiate:   {:?}",
        started.elapsed() / ITERATIONS
    );

    let executor = gyre_trigger_http::executor::ComponentExecutor::new(
        "bench",
        loaded.component.clone(),
        loaded.pre.clone(),
        config,
        gyre_engine::ComponentLimits::DEFAULT,
        &gyre_app::manifest::HttpExecutor::Http,
        gyre_trigger_http::ReusePolicy::SPIN_DEFAULT,
    )?;
    let started = Instant::now();
    for _ in 0..ITERATIONS {
        let request = http::Request::builder().uri("http://localhost/").body(
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )?;
        let response = executor.bench_handle(request).await?;
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    println!(
        "request through executor: {:?}",
        started.elapsed() / ITERATIONS
    );
    Ok(())
}
