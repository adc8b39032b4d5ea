//! The body types every response shares, whichever executor made it.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty};

/// Errors a response body may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every response Gyre sends.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// Largest request or response body buffered by the Spin and WAGI
/// executors (Spin's host buffer cap).
pub(crate) const MAX_BUFFERED_BODY: usize = 128 << 20;

pub(crate) fn empty_response(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    response
}
