//! The connection to the Docker Engine (API version negotiated down to the daemon's) and the
//! engine's typed errors.

use bollard::Docker;

/// The label every object of a stack carries, naming the stack (as `docker stack deploy` sets it).
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";

/// An error talking to the Docker Engine, or a stack the engine refuses.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The daemon could not be reached at all.
    #[error(
        "cannot reach the Docker daemon ({source}); is it running, and may this user use its socket?"
    )]
    Connect {
        /// What went wrong.
        #[source]
        source: bollard::errors::Error,
    },
    /// This node is not a swarm manager (`docker swarm init` has not been run).
    #[error("this Docker node is not a swarm manager: run `docker swarm init` first")]
    NotSwarmManager,
    /// A network the stack marks as external does not exist.
    #[error("network {name:?} is declared as external, but could not be found; create it first")]
    ExternalNetworkMissing {
        /// The network's name.
        name: String,
    },
    /// A secret of the same name exists with different content (secrets are immutable).
    #[error(
        "secret {name:?} already exists with different content; secrets are immutable: bump its version (name) instead"
    )]
    SecretChanged {
        /// The secret's name.
        name: String,
    },
    /// A config of the same name exists with different content (configs are immutable).
    #[error(
        "config {name:?} already exists with different content; configs are immutable: bump its version (name) instead"
    )]
    ConfigChanged {
        /// The config's name.
        name: String,
    },
    /// A service refers to a secret that neither the stack nor the engine has.
    #[error(
        "service {service}: secret {name:?} not found: it is not created by the stack (external?) \
         and the engine has none of that name; create it first (e.g. `abra app secret generate`)"
    )]
    SecretNotFound {
        /// The full name of the service referring to it.
        service: String,
        /// The secret's name.
        name: String,
    },
    /// A service refers to a config that neither the stack nor the engine has.
    #[error(
        "service {service}: config {name:?} not found: it is not created by the stack (external?) \
         and the engine has none of that name; create it first"
    )]
    ConfigNotFound {
        /// The full name of the service referring to it.
        service: String,
        /// The config's name.
        name: String,
    },
    /// Objects were still present when the wait for their removal timed out.
    #[error("timed out after {seconds} s waiting for {what} to be removed")]
    RemoveTimeout {
        /// What was still there.
        what: String,
        /// How long we waited.
        seconds: u64,
    },
    /// Reading the engine's JSON directly (see [`super::raw_services`]) failed.
    #[error("{message}")]
    Raw {
        /// What went wrong.
        message: String,
    },
    /// Any other answer of the Docker Engine API.
    #[error("{action}: {source}")]
    Api {
        /// What we were doing (e.g. `creating service app_web`).
        action: String,
        /// The API error.
        #[source]
        source: bollard::errors::Error,
    },
}

impl EngineError {
    /// Wraps an API error with what we were doing when it happened.
    pub fn api(action: impl Into<String>, source: bollard::errors::Error) -> Self {
        if is_not_manager(&source) {
            return EngineError::NotSwarmManager;
        }
        EngineError::Api {
            action: action.into(),
            source,
        }
    }
}

/// Connects to the local Docker daemon (the Unix socket, or `DOCKER_HOST`) and negotiates the API
/// version down to what the daemon speaks (bollard speaks 1.53, Docker 20.10 speaks 1.41).
pub async fn connect() -> Result<Docker, EngineError> {
    let docker =
        Docker::connect_with_local_defaults().map_err(|source| EngineError::Connect { source })?;
    docker
        .negotiate_version()
        .await
        .map_err(|source| EngineError::Connect { source })
}

/// The HTTP status of an API error answered by the daemon, if it was one.
pub fn status_code(err: &bollard::errors::Error) -> Option<u16> {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The daemon's message of an API error, if it answered one.
pub fn server_message(err: &bollard::errors::Error) -> Option<&str> {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => Some(message),
        _ => None,
    }
}

/// Whether the daemon answered 404 (the object is gone or never existed).
pub fn is_not_found(err: &bollard::errors::Error) -> bool {
    status_code(err) == Some(404)
}

/// Whether the daemon refused because the node is not a swarm manager.
fn is_not_manager(err: &bollard::errors::Error) -> bool {
    status_code(err) == Some(503)
        && server_message(err).is_some_and(|m| m.contains("not a swarm manager"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(status_code: u16, message: &str) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        }
    }

    #[test]
    fn not_found_is_recognised_by_status() {
        assert!(is_not_found(&server_error(404, "no such service")));
        assert!(!is_not_found(&server_error(409, "conflict")));
    }

    #[test]
    fn not_a_manager_becomes_its_own_error() {
        let err = EngineError::api(
            "listing services",
            server_error(
                503,
                "This node is not a swarm manager. Use \"docker swarm init\"",
            ),
        );
        assert!(matches!(err, EngineError::NotSwarmManager), "{err:?}");
        let err = EngineError::api("listing services", server_error(500, "boom"));
        assert!(err.to_string().starts_with("listing services: "), "{err}");
    }
}
