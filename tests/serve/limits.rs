//! What `cc-ci serve` does at its edges: slow clients cannot hold connections, the state
//! directory is absolute whatever was given, and its log file is plain text without noise.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::Serve;

/// Whether the server closed `s` (EOF or reset) within `wait`.
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A 408 or similar answer before closing is fine; keep reading until EOF.
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[tokio::test]
async fn half_sent_requests_neither_exhaust_the_server_nor_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cc-ci.toml");
    std::fs::write(
        &config,
        "[http]\nheader_read_timeout_seconds = 2\nmax_connections = 16\n",
    )
    .unwrap();
    let server = Serve::new(&dir.path().join("state"))
        .args(&["--config", config.to_str().unwrap()])
        .start();
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut slow: Vec<TcpStream> = (0..60)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // Three times the cap of half-sent heads, and a normal request still answers at once.
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/version", server.url))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("a normal request is answered while slow clients hold connections");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered only after {:?}",
        started.elapsed()
    );
    // Every half-sent request is closed: by the cap at once, or by the header timeout (2 s).
    let deadline = Instant::now() + Duration::from_secs(4);
    for (i, s) in slow.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            closed_within(s, left.max(Duration::from_millis(10))),
            "half-sent request {i} is still open 4 s after the 2 s header timeout"
        );
    }
}

#[test]
fn a_relative_state_dir_is_made_absolute_and_the_log_file_is_plain() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let server = Serve::new(std::path::Path::new("./rel-state"))
        .current_dir(dir.path())
        .stderr_to(&log)
        .start();
    server.terminate();
    let (ok, stderr) = server.wait_exit();
    assert!(ok, "{stderr}");
    let absolute = std::fs::canonicalize(dir.path().join("rel-state")).unwrap();
    let listening = stderr
        .lines()
        .find(|l| l.contains("listening"))
        .unwrap_or_else(|| panic!("no listening line in {stderr}"));
    assert!(
        listening.contains(&format!("state_dir={}", absolute.display())),
        "the state directory is logged as given, not resolved: {listening}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escape codes in a log file: {stderr:?}"
    );
    // The readiness probe answered 503 while starting (the helper polls it): not an error.
    assert!(
        !stderr.lines().any(|l| l.contains("ERROR")),
        "errors logged during a clean start and stop: {stderr}"
    );
}

#[test]
fn serve_help_names_config_keys_by_their_docs_not_a_rust_type() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cc-ci"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let config = help
        .lines()
        .skip_while(|l| !l.contains("--config"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(config.contains("docs/operations.md"), "{help}");
    assert!(!help.contains("`Config`"), "{help}");
    assert!(help.contains("--no-runs"), "{help}");
}
