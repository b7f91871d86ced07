//! Prometheus metrics: controller-runtime-style `ccci_` series and domain metrics.

use prometheus::{Encoder, Registry, TextEncoder};

/// Every metric cc-ci exports, registered in one registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        Self {
            registry: Registry::new(),
        }
    }

    /// The Prometheus text exposition of all metrics.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
