//! Logging set-up with `tracing`: human-readable by default, JSON on request.
