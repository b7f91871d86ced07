//! The HTTP surface: the records API, watch streams, health and metrics endpoints.
