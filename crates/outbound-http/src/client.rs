//! The network half of outbound HTTP: one pooled client per application,
//! so requests to the same origin reuse connections (HTTP/1.1 keep-alive,
//! HTTP/2 over TLS with ALPN), with connect, first-byte and between-bytes
//! timeouts. Response bodies stream to the guest; nothing is buffered
//! whole.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use gyre_outbound_networking::BlockedNetworks;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use crate::body::{SharedBody, drain};
use crate::resolver::{FilteringResolver, is_prohibited};

/// Timeouts that apply when the guest sets none (Spin's: 600 s each).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Establishing the connection (TCP and TLS).
    pub connect: Duration,
    /// From sending the request to the response head (a connection
    /// established on the way included).
    pub first_byte: Duration,
    /// Between two chunks of the response body.
    pub between_bytes: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let spin_default = Duration::from_secs(600);
        Timeouts {
            connect: spin_default,
            first_byte: spin_default,
            between_bytes: spin_default,
        }
    }
}

/// The application's outbound HTTP client.
pub struct OutboundClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector<FilteringResolver>>, SharedBody>,
    timeouts: Timeouts,
    /// Requests in flight (until their response body is dropped), if bounded.
    in_flight: Option<Arc<tokio::sync::Semaphore>>,
}

impl OutboundClient {
    /// A client with a connection pool and the given default timeouts; at
    /// most `max_in_flight` requests at once when set (0 allows none); no
    /// connection to an address in `blocked`.
    pub fn new(
        timeouts: Timeouts,
        max_in_flight: Option<usize>,
        blocked: Arc<BlockedNetworks>,
    ) -> Self {
        let mut http = HttpConnector::new_with_resolver(FilteringResolver::new(blocked));
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeouts.connect));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(https);
        OutboundClient {
            client,
            timeouts,
            in_flight: max_in_flight.map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
        }
    }

    /// Sends `request` and returns the response with a streaming body, and
    /// a future that keeps the request body alive until the exchange ends.
    pub(crate) async fn send(
        self: Arc<Self>,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let first_byte = options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(self.timeouts.first_byte);
        let between_bytes = options
            .and_then(|o| o.between_bytes_timeout)
            .unwrap_or(self.timeouts.between_bytes)
            .max(Duration::from_nanos(1));
        let permit = match &self.in_flight {
            None => None,
            Some(slots) => Some(
                tokio::time::timeout(first_byte, slots.clone().acquire_owned())
                    .await
                    .map_err(|_| {
                        tracing::warn!(
                            "outbound HTTP request waited {first_byte:?} for one of the app's connections (`[outbound_http] max_connections`)"
                        );
                        HttpError::ConnectionLimitReached
                    })?
                    .map_err(|_| HttpError::ConnectionLimitReached)?,
            ),
        };
        let (mut parts, body) = request.into_parts();
        // The pool keys connections by origin; the `Host` header is set
        // from the URI by hyper for HTTP/1 and must not come from the guest
        // request's own copy when it differs.
        parts.headers.remove(http::header::HOST);
        let body = SharedBody::new(body);
        let request_body = body.handle();
        let request = http::Request::from_parts(parts, body);
        // The first-byte deadline covers the whole wait for the response
        // head, a new connection included; the connector enforces the
        // app's connect timeout within it.
        let response = match tokio::time::timeout(first_byte, self.client.request(request)).await {
            Ok(Ok(response)) => response,
            failed => {
                let error = match failed {
                    Err(_) => HttpError::ConnectionReadTimeout,
                    Ok(Err(e)) => client_error(e),
                    Ok(Ok(_)) => HttpError::InternalError(None),
                };
                // The guest may still be writing the body (SDKs write it
                // while the request is sent): let it finish, so it sees
                // the error where it reads the response, not a closed
                // stream where it writes.
                drain(request_body).await;
                return Err(error);
            }
        };
        Ok(response.map(|incoming| {
            TimedBody {
                incoming,
                between_bytes,
                deadline: Box::pin(tokio::time::sleep(between_bytes)),
                _request_body: request_body,
                _permit: permit,
            }
            .boxed_unsync()
        }))
    }
}

fn client_error(e: hyper_util::client::legacy::Error) -> HttpError {
    if e.is_connect() && is_prohibited(&e) {
        return HttpError::DestinationIpProhibited;
    }
    if e.is_connect() {
        let message = format!("{e:?}");
        if message.contains("ConnectionRefused") {
            return HttpError::ConnectionRefused;
        }
        if message.contains("timed out") || message.contains("TimedOut") {
            return HttpError::ConnectionTimeout;
        }
        if message.contains("dns error") || message.contains("failed to lookup") {
            return HttpError::DnsError {
                rcode: Some(message),
                info_code: None,
            };
        }
        return HttpError::Connect(std::io::Error::other(message));
    }
    HttpError::InternalError(Some(format!("{e:?}")))
}

/// A response body with the between-bytes timeout. It also holds the
/// request body until the guest is done with the response.
struct TimedBody {
    incoming: hyper::body::Incoming,
    between_bytes: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    _request_body: SharedBody,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.between_bytes;
                self.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(HttpError::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}
