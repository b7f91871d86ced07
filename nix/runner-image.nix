# The test runner image (Python, pytest, Playwright, Chromium and the `ccci_harness` pytest
# plugin from `harness/`), built with dockerTools instead of a Dockerfile. Load it on the host
# with `docker load < result`; the controller runs test jobs from it (`[runs]` settings).
{ lib, dockerTools, python3, chromium, bashInteractive, coreutils, cacert, fontconfig, dejavu_fonts }:

let
  harnessSrc = ../harness;
  harness = python3.pkgs.buildPythonPackage {
    pname = "ccci-harness";
    version = "0.1.0";
    pyproject = true;
    src = harnessSrc;
    build-system = [ python3.pkgs.setuptools ];
    dependencies = with python3.pkgs; [ pytest playwright requests ];
    doCheck = false;
  };
  python = python3.withPackages (ps: [ harness ps.pytest ps.playwright ps.requests ]);
in
dockerTools.buildLayeredImage {
  name = "ccci/runner";
  tag = "latest";
  contents = [ python chromium bashInteractive coreutils cacert fontconfig dejavu_fonts ];
  config = {
    Env = [
      "SSL_CERT_FILE=${cacert}/etc/ssl/certs/ca-bundle.crt"
      "CCCI_CHROMIUM=${chromium}/bin/chromium"
      "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1"
    ];
    Cmd = [ "${python}/bin/python3" "-m" "pytest" ];
    WorkingDir = "/work";
  };
  meta.platforms = lib.platforms.linux;
}
