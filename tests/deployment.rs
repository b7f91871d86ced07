//! `ProxyDeployment` and `AppDeployment` on the real local swarm: the stand-in proxy recipe
//! (`tests/fixtures/recipes/proxy-standin`, in the traefik recipe's shape) deployed in wildcard
//! mode with a test CA's certificate, routed to over TLS, healed after hand changes, its
//! certificate rotated, and removed alone.

mod app;
pub mod harness;
mod proxy;
mod proxy_mode;
mod proxy_run;
mod unfetchable;
