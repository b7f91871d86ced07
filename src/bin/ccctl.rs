//! The `ccctl` binary: a kubectl-style client of the cc-ci API.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match cc_ci::cli::ccctl::main().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
