//! Shapes of the HTTP API that are not records, shared by the server (`http`) and its client
//! (`ccctl`) so both sides read and write the same types: the run-log stream list and the
//! headers of a log read.

use serde::{Deserialize, Serialize};

/// Header of a log read: the offset to ask for next.
pub const NEXT_OFFSET: &str = "x-next-offset";
/// Header of a log read: the log file's size when it was read.
pub const LOG_SIZE: &str = "x-log-size";
/// Header of a log read: the offset of the first byte in the body.
pub const LOG_OFFSET: &str = "x-log-offset";

/// One entry of the stream list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStream {
    /// Stream name, e.g. `install`.
    pub name: String,
    /// Size of its file in bytes.
    pub size: u64,
}

/// The body of `GET /api/v1/testruns/{name}/logs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStreamList {
    /// The run's name.
    pub run: String,
    /// Its streams in plan order.
    pub streams: Vec<LogStream>,
}
