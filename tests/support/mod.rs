//! Shared helpers of the integration tests: temporary state directories and a real `cc-ci serve`
//! child process on a free port.

#![allow(dead_code)]

pub mod gitea;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The token the test servers accept for writes.
pub const TOKEN: &str = "test-token-0123456789";

/// A `cc-ci serve` child process with its own state directory; killed on drop.
pub struct Server {
    /// The child process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its state directory (kept across restarts when reused).
    pub state_dir: PathBuf,
    /// File holding [`TOKEN`].
    pub token_file: PathBuf,
}

impl Server {
    /// Starts a server on `state_dir` with extra arguments, waiting until `/readyz` answers.
    pub fn start_in(state_dir: &Path, extra: &[&str]) -> Server {
        Server::start_listening(state_dir, "127.0.0.1:0", extra)
    }

    /// Like [`Server::start_in`], listening on `listen` (e.g. the port of a server restarted).
    pub fn start_listening(state_dir: &Path, listen: &str, extra: &[&str]) -> Server {
        std::fs::create_dir_all(state_dir).unwrap();
        let token_file = state_dir.join("api-token");
        std::fs::write(&token_file, TOKEN).unwrap();
        let addr_file = state_dir.join("listen-addr");
        let _ = std::fs::remove_file(&addr_file);
        let child = Command::new(env!("CARGO_BIN_EXE_cc-ci"))
            .arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--token-file")
            .arg(&token_file)
            // Control-plane tests: their TestRuns are records only (the lifecycle tests run them).
            .arg("--no-runs")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn cc-ci serve");
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                if !addr.trim().is_empty() {
                    break format!("http://{}", addr.trim());
                }
            }
            assert!(
                Instant::now() < deadline,
                "cc-ci serve did not write {addr_file:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let server = Server {
            child,
            url,
            state_dir: state_dir.to_path_buf(),
            token_file,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::blocking_client();
        loop {
            if let Ok(true) = client(&format!("{}/readyz", self.url)) {
                return;
            }
            assert!(Instant::now() < deadline, "cc-ci serve never became ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.state_dir.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod reqwest {
    /// A tiny blocking GET over a raw TCP socket, so readiness checks need no runtime.
    pub fn blocking_client() -> impl Fn(&str) -> std::io::Result<bool> {
        |url: &str| {
            use std::io::{Read, Write};
            let rest = url.strip_prefix("http://").unwrap_or(url);
            let (host, path) = rest
                .split_once('/')
                .map(|(h, p)| (h, format!("/{p}")))
                .unwrap_or((rest, "/".into()));
            let mut s = std::net::TcpStream::connect(host)?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )?;
            let mut buf = String::new();
            s.read_to_string(&mut buf)?;
            Ok(buf.starts_with("HTTP/1.1 200"))
        }
    }
}
