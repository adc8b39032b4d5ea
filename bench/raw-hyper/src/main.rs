//! Baseline server for `bench/run.sh`: hyper on one listener answering every
//! request with the response the tiny `hello-wat` guest gives under Gyre
//! (`200`, chunked body `Hello, Gyre!\n`), on the same runtime settings. The
//! difference between the two is what Gyre costs per request.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("Serving http://{}", listener.local_addr()?);
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async {
                let body = StreamBody::new(futures::stream::iter([Ok::<_, Infallible>(
                    Frame::data(Bytes::from_static(b"Hello, Gyre!\n")),
                )]));
                Ok::<_, Infallible>(hyper::Response::new(body))
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
