//! The traffic-router plugin with the test handler: `AcceptAll` answering `VerifyWeight` from
//! the JSON file named by `ROLLOUT_ROUTER_PLUGIN_TEST_STATUS`. When
//! `ROLLOUT_ROUTER_PLUGIN_TEST_DUMP` names a directory, every call's decoded arguments are also
//! written there as `<Method>.json`, so tests can check what the gob decoder produced.
//! The real `rollout-router argo-plugin` subcommand runs the same `serve` with its own source.

use std::path::PathBuf;
use std::sync::Arc;

use rollout_router_argo_plugin::netrpc::BoxFuture;
use rollout_router_argo_plugin::rpc_types::{
    RolloutArgs, RpcError, SetHeaderArgs, SetMirrorArgs, SetWeightArgs, UpdateHashArgs,
    VerifyWeightResponse,
};
use rollout_router_argo_plugin::status_file::FileWeightStatus;
use rollout_router_argo_plugin::{AcceptAll, PluginError, TrafficRouterHandler, handshake};
use serde_json::{Value, json};

const DUMP_DIR_ENV: &str = "ROLLOUT_ROUTER_PLUGIN_TEST_DUMP";

/// `AcceptAll` plus a dump of every call's arguments.
struct Recording {
    inner: AcceptAll<FileWeightStatus>,
    dump: Option<PathBuf>,
}

impl Recording {
    fn record(&self, method: &str, args: Value) {
        let Some(dir) = &self.dump else { return };
        let path = dir.join(format!("{method}.json"));
        let text = serde_json::to_string_pretty(&args).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, text) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the call dump");
        }
    }
}

fn destinations(list: &[rollout_router_argo_plugin::rpc_types::WeightDestination]) -> Value {
    serde_json::to_value(list).unwrap_or_default()
}

impl TrafficRouterHandler for Recording {
    fn init_plugin(&self) -> BoxFuture<'_, RpcError> {
        self.inner.init_plugin()
    }

    fn type_name(&self) -> BoxFuture<'_, String> {
        self.inner.type_name()
    }

    fn update_hash(&self, args: UpdateHashArgs) -> BoxFuture<'_, RpcError> {
        self.record(
            "UpdateHash",
            json!({
                "rollout": args.rollout,
                "canaryHash": args.canary_hash,
                "stableHash": args.stable_hash,
                "additionalDestinations": destinations(&args.additional_destinations),
            }),
        );
        self.inner.update_hash(args)
    }

    fn set_weight(&self, args: SetWeightArgs) -> BoxFuture<'_, RpcError> {
        self.record(
            "SetWeight",
            json!({
                "rollout": args.rollout,
                "desiredWeight": args.desired_weight,
                "additionalDestinations": destinations(&args.additional_destinations),
            }),
        );
        self.inner.set_weight(args)
    }

    fn verify_weight(&self, args: SetWeightArgs) -> BoxFuture<'_, VerifyWeightResponse> {
        self.inner.verify_weight(args)
    }

    fn set_header_route(&self, args: SetHeaderArgs) -> BoxFuture<'_, RpcError> {
        self.record(
            "SetHeaderRoute",
            json!({ "setHeaderRoute": args.set_header_route }),
        );
        self.inner.set_header_route(args)
    }

    fn set_mirror_route(&self, args: SetMirrorArgs) -> BoxFuture<'_, RpcError> {
        self.record(
            "SetMirrorRoute",
            json!({ "setMirrorRoute": args.set_mirror_route }),
        );
        self.inner.set_mirror_route(args)
    }

    fn remove_managed_routes(&self, args: RolloutArgs) -> BoxFuture<'_, RpcError> {
        self.record(
            "RemoveManagedRoutes",
            json!({ "rollout": {"metadata": args.rollout.get("metadata")} }),
        );
        self.inner.remove_managed_routes(args)
    }
}

fn main() {
    // Before anything else: started by hand, say so on stderr and exit 1 (spec 50 §2.2).
    if let Err(e) = handshake::check_cookie() {
        eprintln!("{e}");
        std::process::exit(1);
    }
    // Logs go to fd 2 only; stdout carries the handshake line and nothing else.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let handler = Arc::new(Recording {
        inner: AcceptAll::new(FileWeightStatus::from_env()),
        dump: std::env::var_os(DUMP_DIR_ENV).map(PathBuf::from),
    });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result: Result<(), PluginError> =
        runtime.block_on(rollout_router_argo_plugin::serve(handler));
    if let Err(e) = result {
        tracing::error!(error = %e, "plugin failed");
        std::process::exit(1);
    }
}
