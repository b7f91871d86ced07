# An example host: cc-ci behind the coop-cloud traefik recipe in wildcard mode, with drone as a
# long-lived app, and every secret — the wildcard certificate and key included — from sops-nix.
# Rebuilding the host needs this repository and one age key (/var/lib/sops-nix/key.txt).
{ config, ... }:

let
  base = "ci.example.org";
  secret = name: config.sops.secrets.${name}.path;
in
{
  imports = [ ./hardware-configuration.nix ];

  networking.hostName = "cc-ci";
  system.stateVersion = "24.11";

  sops = {
    defaultSopsFile = ./secrets.yaml;
    age.keyFile = "/var/lib/sops-nix/key.txt";
    # Owned by the cc-ci user: the controller reads them; replacing the certificate in
    # secrets.yaml and switching rotates it (a new swarm secret version, the old one removed).
    secrets = {
      "cc-ci/api-token" = { owner = "cc-ci"; restartUnits = [ "cc-ci.service" ]; };
      "cc-ci/forge-token" = { owner = "cc-ci"; restartUnits = [ "cc-ci.service" ]; };
      "cc-ci/webhook-secret" = { owner = "cc-ci"; restartUnits = [ "cc-ci.service" ]; };
      "cc-ci/wildcard-cert" = { owner = "cc-ci"; };
      "cc-ci/wildcard-key" = { owner = "cc-ci"; };
      "drone/rpc-secret" = { owner = "cc-ci"; };
      "drone/client-secret" = { owner = "cc-ci"; };
    };
  };

  services.cc-ci = {
    enable = true;
    listen = "127.0.0.1:8080";
    openFirewall = true;
    apiTokenFile = secret "cc-ci/api-token";
    forgeTokenFile = secret "cc-ci/forge-token";
    webhookSecretFile = secret "cc-ci/webhook-secret";
    settings.runs = {
      base_domain = base;
      max_concurrent_runs = 1;
    };

    proxy = {
      name = "traefik";
      git = "https://git.coopcloud.tech/coop-cloud/traefik.git";
      version = "3.0.1+v3.3.3";
      domain = "traefik.${base}";
      wildcardCertFile = secret "cc-ci/wildcard-cert";
      wildcardKeyFile = secret "cc-ci/wildcard-key";
    };

    apps.drone = {
      git = "https://git.coopcloud.tech/coop-cloud/drone.git";
      version = "1.4.0+2.25.0";
      domain = "drone.${base}";
      env = {
        GITEA_DOMAIN = "git.coopcloud.tech";
        DRONE_USER_CREATE = "username:ci-admin,admin:true";
      };
      secretFiles = {
        rpc_secret = secret "drone/rpc-secret";
        client_secret = secret "drone/client-secret";
      };
    };

    recipes.custom-html = {
      git = "https://git.coopcloud.tech/coop-cloud/custom-html.git";
      forgeRepo = "coop-cloud/custom-html";
    };
  };

  # The API and dashboard are published through the proxy like any app would be; or put a
  # reverse proxy of your own in front of 127.0.0.1:8080.
  services.openssh.enable = true;
}
