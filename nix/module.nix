# The NixOS module `services.cc-ci`: Docker with a single-node swarm and the `proxy` network,
# the controller as a systemd service, its configuration file rendered from `settings`, secret
# *file* options (sops-nix / agenix paths), and the proxy, long-lived apps and recipes declared
# as Nix attribute sets, rendered to record manifests (nix/lib/render.nix) that the controller
# applies at every start; records removed from here are pruned at the next start.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkEnableOption mkIf mkOption types optionalAttrs;
  cfg = config.services.cc-ci;
  render = import ./lib/render.nix;
  toml = pkgs.formats.toml { };
  docker = config.virtualisation.docker.package;

  secretPath = types.nullOr (types.either types.path types.str);

  envOption = mkOption {
    type = types.attrsOf types.str;
    default = { };
    description = "Values overriding the recipe's `.env.sample`.";
  };

  deploymentOptions = {
    git = mkOption { type = types.str; description = "Git URL of the recipe."; };
    version = mkOption { type = types.str; description = "Recipe version (a release tag)."; };
    domain = mkOption { type = types.str; description = "The app's domain."; };
    env = envOption;
    keepVolumes = mkOption {
      type = types.bool;
      default = false;
      description = "Keep volumes (and generated secrets) when the declaration is removed.";
    };
  };

  proxyModule = {
    options = deploymentOptions // {
      name = mkOption { type = types.str; default = "traefik"; description = "Record name."; };
      wildcardCertFile = mkOption {
        type = secretPath;
        default = null;
        description = ''
          Wildcard certificate (PEM) for `*.<base domain>`, e.g. a sops-nix secret path owned by
          the `cc-ci` user. Set with `wildcardKeyFile` for the traefik recipe's wildcard mode;
          replacing the file rotates the certificate (a new swarm secret version).
        '';
      };
      wildcardKeyFile = mkOption {
        type = secretPath;
        default = null;
        description = "Key of the wildcard certificate (PEM).";
      };
    };
  };

  appModule = {
    options = deploymentOptions // {
      secretFiles = mkOption {
        type = types.attrsOf types.str;
        default = { };
        description = "Secret name (as in `SECRET_<NAME>_VERSION`, lowercase) → file holding its value.";
      };
    };
  };

  recipeModule = {
    options = {
      git = mkOption { type = types.str; description = "Git URL of the recipe."; };
      forgeRepo = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Forge repository polled for `!testme`, as `owner/name`.";
      };
      defaultBranch = mkOption { type = types.nullOr types.str; default = null; };
      suitePath = mkOption { type = types.nullOr types.str; default = null; };
      env = envOption;
      stages = mkOption {
        type = types.nullOr (types.listOf (types.enum [ "install" "upgrade" "backup-restore" ]));
        default = null;
      };
      timeouts = mkOption {
        type = types.submodule {
          options = {
            convergeSeconds = mkOption { type = types.nullOr types.ints.positive; default = null; };
            stageSeconds = mkOption { type = types.nullOr types.ints.positive; default = null; };
            runSeconds = mkOption { type = types.nullOr types.ints.positive; default = null; };
          };
        };
        default = { };
      };
      allow = mkOption { type = types.listOf types.str; default = [ ]; };
      suspended = mkOption { type = types.bool; default = false; };
    };
  };

  manifestsDir = pkgs.writeTextDir "manifests.json" (builtins.toJSON (render.manifests {
    inherit (cfg) proxy apps recipes;
  }));

  configFile = toml.generate "cc-ci.toml" (lib.recursiveUpdate
    ({
      listen = cfg.listen;
      state_dir = cfg.stateDir;
      manifests = "${manifestsDir}";
      log_format = "json";
      # A server's records name forge URLs, never paths on its own disk (`settings` may override).
      sources.allow_local_paths = false;
    }
    // optionalAttrs (cfg.apiTokenFile != null) { token_file = toString cfg.apiTokenFile; }
    // optionalAttrs (cfg.forgeTokenFile != null || cfg.webhookSecretFile != null) {
      forge = optionalAttrs (cfg.forgeTokenFile != null) { token_file = toString cfg.forgeTokenFile; }
        // optionalAttrs (cfg.webhookSecretFile != null) { webhook_secret_file = toString cfg.webhookSecretFile; };
    })
    cfg.settings);
in
{
  options.services.cc-ci = {
    enable = mkEnableOption "cc-ci, the CI server for Co-op Cloud recipes";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The cc-ci package (binaries `cc-ci` and `ccctl`).";
    };

    listen = mkOption {
      type = types.str;
      default = "127.0.0.1:8080";
      description = "Address of the HTTP API, dashboard and metrics.";
    };

    stateDir = mkOption {
      type = types.str;
      default = "/var/lib/cc-ci";
      description = "Store, run logs, artifacts and generated secrets.";
    };

    settings = mkOption {
      type = toml.type;
      default = { };
      example = lib.literalExpression ''{ runs = { base_domain = "ci.example.org"; max_concurrent_runs = 2; }; }'';
      description = "Further keys of the configuration file (`[runtime]`, `[runs]`, …), merged last.";
    };

    apiTokenFile = mkOption {
      type = secretPath;
      default = null;
      description = "File holding the API token for writes (generated in the state directory when null).";
    };
    forgeTokenFile = mkOption {
      type = secretPath;
      default = null;
      description = "File holding the Gitea bot's token (`[forge] token_file`).";
    };
    webhookSecretFile = mkOption {
      type = secretPath;
      default = null;
      description = "File holding the webhook HMAC secret (`[forge] webhook_secret_file`).";
    };

    swarm.advertiseAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "`docker swarm init --advertise-addr` of the single-node swarm.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open TCP 80 and 443 for the proxy.";
    };

    proxy = mkOption {
      type = types.nullOr (types.submodule proxyModule);
      default = null;
      description = "The reverse proxy (the coop-cloud traefik recipe), a ProxyDeployment record.";
    };

    apps = mkOption {
      type = types.attrsOf (types.submodule appModule);
      default = { };
      description = "Long-lived apps (e.g. drone), AppDeployment records.";
    };

    recipes = mkOption {
      type = types.attrsOf (types.submodule recipeModule);
      default = { };
      description = "Recipes enrolled for testing, Recipe records.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [{
      assertion = cfg.proxy == null
        || ((cfg.proxy.wildcardCertFile == null) == (cfg.proxy.wildcardKeyFile == null));
      message = "services.cc-ci.proxy: wildcardCertFile and wildcardKeyFile go together";
    }];

    virtualisation.docker.enable = true;

    users.users.cc-ci = {
      isSystemUser = true;
      group = "cc-ci";
      extraGroups = [ "docker" ];
      home = cfg.stateDir;
    };
    users.groups.cc-ci = { };

    environment.systemPackages = [ cfg.package ];

    networking.firewall.allowedTCPPorts = lib.optionals cfg.openFirewall [ 80 443 ];

    # Idempotent, and re-run on every activation: a oneshot that does not remain active is
    # started again whenever switch-to-configuration starts multi-user.target, and before every
    # start of cc-ci. No run-once marker: it looks at the swarm each time.
    systemd.services.cc-ci-swarm = {
      description = "cc-ci: single-node Docker swarm and the attachable proxy network";
      after = [ "docker.service" ];
      requires = [ "docker.service" ];
      wantedBy = [ "multi-user.target" ];
      path = [ docker ];
      serviceConfig.Type = "oneshot";
      script = ''
        state=$(docker info --format '{{.Swarm.LocalNodeState}}')
        if [ "$state" != active ]; then
          echo "initialising a single-node swarm (was: $state)"
          docker swarm init --advertise-addr ${lib.escapeShellArg cfg.swarm.advertiseAddress}
        fi
        if ! docker network inspect proxy >/dev/null 2>&1; then
          echo "creating the attachable overlay network proxy"
          docker network create --driver overlay --attachable proxy
        fi
      '';
    };

    systemd.services.cc-ci = {
      description = "cc-ci, the CI server for Co-op Cloud recipes";
      after = [ "network-online.target" "docker.service" "cc-ci-swarm.service" ];
      wants = [ "network-online.target" ];
      requires = [ "docker.service" "cc-ci-swarm.service" ];
      wantedBy = [ "multi-user.target" ];
      # A changed declaration restarts cc-ci: manifests are applied and pruned at start.
      restartTriggers = [ configFile manifestsDir ];
      path = [ docker pkgs.git ];
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/cc-ci serve --config ${configFile}";
        User = "cc-ci";
        Group = "cc-ci";
        Restart = "on-failure";
        RestartSec = 5;
        StateDirectory = lib.mkIf (cfg.stateDir == "/var/lib/cc-ci") "cc-ci";
        StateDirectoryMode = "0700";
        WorkingDirectory = cfg.stateDir;
        NoNewPrivileges = true;
        PrivateTmp = true;
        ProtectSystem = "strict";
        ReadWritePaths = [ cfg.stateDir ];
      };
    };
  };
}
