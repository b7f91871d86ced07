//! Prometheus metrics: controller-runtime-style `ccci_` series and domain metrics.
