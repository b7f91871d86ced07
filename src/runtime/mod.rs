//! The controller runtime after kube-runtime: watch → cache → scheduler → runner → reconcile.
