# Pure functions (builtins only, no nixpkgs) rendering the `services.cc-ci` declarations to cc-ci
# record manifests. The module writes their result as JSON into the manifests directory that
# `cc-ci serve` applies at start; every record carries the label `cc-ci.source = "nix"`, so the
# controller prunes records that were removed from the declaration.
#
# Tested offline: `nix-instantiate --eval --strict --json` of these functions, decoded and
# validated by cc-ci itself (tests/nix.rs).
let
  apiVersion = "cc-ci/v1alpha1";

  labels = { "cc-ci.source" = "nix"; };

  # Drops attributes whose value is null, recursively through attribute sets.
  withoutNulls = attrs:
    builtins.listToAttrs (
      builtins.concatMap
        (name:
          let value = attrs.${name}; in
          if value == null then [ ]
          else [{
            inherit name;
            value = if builtins.isAttrs value then withoutNulls value else value;
          }])
        (builtins.attrNames attrs));

  # The spec of a declaration: everything but its name, nulls dropped.
  specOf = decl: withoutNulls (builtins.removeAttrs decl [ "name" ]);

  record = kind: name: decl: {
    inherit apiVersion kind;
    metadata = { inherit name labels; };
    spec = specOf decl;
  };
in
rec {
  inherit labels withoutNulls;

  # `services.cc-ci.proxy` (an attrset with `git`, `version`, `domain`, optional `env`,
  # `wildcardCertFile`, `wildcardKeyFile`, `keepVolumes`, `name` — default "traefik").
  proxyManifest = proxy: record "ProxyDeployment" (proxy.name or "traefik") proxy;

  # One `services.cc-ci.apps.<name>` (`git`, `version`, `domain`, `env`, `secretFiles`, …).
  appManifest = name: app: record "AppDeployment" name app;

  # One `services.cc-ci.recipes.<name>` (`git`, `forgeRepo`, `env`, `stages`, `timeouts`, …).
  recipeManifest = name: recipe: record "Recipe" name recipe;

  # Every record of a declaration `{ proxy ? null; apps ? { }; recipes ? { }; }`, as a list.
  manifests = { proxy ? null, apps ? { }, recipes ? { } }:
    (if proxy == null then [ ] else [ (proxyManifest proxy) ])
    ++ builtins.attrValues (builtins.mapAttrs appManifest apps)
    ++ builtins.attrValues (builtins.mapAttrs recipeManifest recipes);
}
