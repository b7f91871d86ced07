# The cc-ci package: both binaries of the crate (`cc-ci`, the controller, and `ccctl`, the
# client) built from this repository with the committed Cargo.lock. `git` is on the controller's
# PATH at run time (recipes are fetched with the git command line).
{ lib, rustPlatform, makeWrapper, git }:

rustPlatform.buildRustPackage {
  pname = "cc-ci";
  version = (builtins.fromTOML (builtins.readFile ../Cargo.toml)).package.version;

  src = lib.cleanSourceWith {
    src = ../.;
    filter = path: type:
      let base = baseNameOf path; in
      !(builtins.elem base [ "target" ".cc-ci" ".venv" "result" ]);
  };

  cargoLock.lockFile = ../Cargo.lock;

  nativeBuildInputs = [ makeWrapper ];

  # The test suite needs a Docker Swarm, Chromium and network fixtures: it runs in the
  # project's own CI (`scripts/test`), not in the Nix sandbox.
  doCheck = false;

  postInstall = ''
    wrapProgram $out/bin/cc-ci --prefix PATH : ${lib.makeBinPath [ git ]}
  '';

  meta = {
    description = "A CI server for Co-op Cloud recipes: a reconciliation controller over Docker Swarm";
    license = lib.licenses.agpl3Plus;
    mainProgram = "cc-ci";
    platforms = lib.platforms.linux;
  };
}
