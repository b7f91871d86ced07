# The development shell: the Rust toolchain with nextest, Docker's CLI, Python for the harness
# and its linters, Chromium for the browser tests, git, openssl (test certificates) and nix.
{ pkgs }:

pkgs.mkShell {
  packages = with pkgs; [
    cargo
    rustc
    rustfmt
    clippy
    cargo-nextest
    docker-client
    git
    openssl
    curl
    python3
    ruff
    chromium
    nix
  ];
  RUST_BACKTRACE = "1";
}
