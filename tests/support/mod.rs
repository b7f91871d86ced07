//! Shared helpers of the integration tests: the one way to start a real `cc-ci serve` child
//! process ([`Serve`], a builder), wait until it listens and is ready, and wait for it to exit.

#![allow(dead_code)]

pub mod gitea;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The token the test servers accept for writes.
pub const TOKEN: &str = "test-token-0123456789";

/// How `cc-ci serve` is started: its state directory, flags and environment.
///
/// The defaults suit control-plane tests: a free port, the token file holding [`TOKEN`], and
/// `--no-runs` (their TestRuns are records only; the lifecycle tests run them).
pub struct Serve {
    state_dir: PathBuf,
    listen: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    token: bool,
    runs: bool,
    stderr_file: Option<PathBuf>,
    cwd: Option<PathBuf>,
}

impl Serve {
    /// A server on `state_dir` with the defaults above.
    pub fn new(state_dir: &Path) -> Serve {
        Serve {
            state_dir: state_dir.to_path_buf(),
            listen: "127.0.0.1:0".into(),
            args: Vec::new(),
            envs: Vec::new(),
            token: true,
            runs: false,
            stderr_file: None,
            cwd: None,
        }
    }

    /// Listens on `addr` (e.g. the port of a server restarted).
    pub fn listen(mut self, addr: &str) -> Serve {
        self.listen = addr.to_string();
        self
    }

    /// Appends command-line arguments.
    pub fn args(mut self, args: &[&str]) -> Serve {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Sets an environment variable of the child.
    pub fn env(mut self, key: &str, value: &str) -> Serve {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// No token file is written or passed: the server generates its own.
    pub fn own_token(mut self) -> Serve {
        self.token = false;
        self
    }

    /// Executes TestRuns (no `--no-runs`).
    pub fn with_runs(mut self) -> Serve {
        self.runs = true;
        self
    }

    /// Writes the child's stderr to `file` (read it with [`Server::stderr`]) instead of the
    /// test's own stderr.
    pub fn stderr_to(mut self, file: &Path) -> Serve {
        self.stderr_file = Some(file.to_path_buf());
        self
    }

    /// Runs the child in `dir` (relative paths resolve there).
    pub fn current_dir(mut self, dir: &Path) -> Serve {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Starts the process without waiting for anything.
    pub fn spawn(self) -> Server {
        let state_dir = match &self.cwd {
            Some(cwd) => cwd.join(&self.state_dir),
            None => self.state_dir.clone(),
        };
        std::fs::create_dir_all(&state_dir).unwrap();
        let token_file = state_dir.join("api-token");
        let _ = std::fs::remove_file(state_dir.join("listen-addr"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cc-ci"));
        cmd.arg("serve")
            .args(["--listen", &self.listen, "--state-dir"])
            .arg(&self.state_dir);
        if self.token {
            std::fs::write(&token_file, TOKEN).unwrap();
            cmd.arg("--token-file").arg(&token_file);
        }
        if !self.runs {
            cmd.arg("--no-runs");
        }
        cmd.args(&self.args).stdout(Stdio::null());
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        match &self.stderr_file {
            Some(file) => cmd.stderr(std::fs::File::create(file).unwrap()),
            None => cmd.stderr(Stdio::inherit()),
        };
        let child = cmd.spawn().expect("spawn cc-ci serve");
        Server {
            child,
            url: String::new(),
            state_dir,
            token_file,
            stderr_file: self.stderr_file,
        }
    }

    /// Starts the process and waits until it listens and `/readyz` answers 200.
    pub fn start(self) -> Server {
        let mut server = self.spawn();
        server.wait_listening();
        server.wait_ready();
        server
    }
}

/// A `cc-ci serve` child process with its own state directory; killed on drop.
pub struct Server {
    /// The child process.
    pub child: Child,
    /// `http://127.0.0.1:PORT` (empty until it listens).
    pub url: String,
    /// Its state directory (kept across restarts when reused).
    pub state_dir: PathBuf,
    /// The token file (holding [`TOKEN`] unless the server generated its own).
    pub token_file: PathBuf,
    stderr_file: Option<PathBuf>,
}

impl Server {
    /// Starts a server on `state_dir` with extra arguments, waiting until `/readyz` answers.
    pub fn start_in(state_dir: &Path, extra: &[&str]) -> Server {
        Serve::new(state_dir).args(extra).start()
    }

    /// Like [`Server::start_in`], listening on `listen` (e.g. the port of a server restarted).
    pub fn start_listening(state_dir: &Path, listen: &str, extra: &[&str]) -> Server {
        Serve::new(state_dir).listen(listen).args(extra).start()
    }

    /// Waits up to 30 s until the server wrote its address; sets [`Server::url`].
    pub fn wait_listening(&mut self) {
        let addr_file = self.state_dir.join("listen-addr");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                if !addr.trim().is_empty() {
                    self.url = format!("http://{}", addr.trim());
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("cc-ci serve exited ({status}): {}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "cc-ci serve did not write {addr_file:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to 30 s until `/readyz` answers 200.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(true) = get_ok(&format!("{}/readyz", self.url)) {
                return;
            }
            assert!(Instant::now() < deadline, "cc-ci serve never became ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the server wrote to stderr so far (only with [`Serve::stderr_to`]).
    pub fn stderr(&self) -> String {
        self.stderr_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to 20 s for the process to exit; answers success and its stderr.
    pub fn wait_exit(mut self) -> (bool, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.success(), self.stderr());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("cc-ci serve did not exit");
            }
            std::thread::sleep(Duration::from_millis(50));
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

/// A tiny blocking GET over a raw TCP socket, so readiness checks need no runtime: whether it
/// answered 200.
pub fn get_ok(url: &str) -> std::io::Result<bool> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    Ok(buf.starts_with("HTTP/1.1 200"))
}
