{
  description = "cc-ci: a CI server for Co-op Cloud recipes (a reconciliation controller over Docker Swarm)";

  # No flake.lock is committed: it cannot be produced on the machines cc-ci is developed on (no
  # nixpkgs there). The first `nix flake lock` (or any build) on a host with network writes it.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";
    sops-nix.url = "github:Mic92/sops-nix";
    sops-nix.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = { self, nixpkgs, sops-nix }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAll (pkgs: rec {
        cc-ci = pkgs.callPackage ./nix/package.nix { };
        runner-image = pkgs.callPackage ./nix/runner-image.nix { };
        default = cc-ci;
      });

      nixosModules.default = { pkgs, lib, ... }: {
        imports = [ ./nix/module.nix ];
        services.cc-ci.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.cc-ci;
      };

      # Pure renderers of `services.cc-ci.{proxy,apps,recipes}` to record manifests.
      lib = import ./nix/lib/render.nix;

      devShells = forAll (pkgs: {
        default = import ./nix/shell.nix { inherit pkgs; };
      });

      # The example host (docs/install.md): traefik and drone, every secret from sops-nix.
      nixosConfigurations.example = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          self.nixosModules.default
          sops-nix.nixosModules.sops
          ./nix/examples/host.nix
        ];
      };
    };
}
