//! `rollout-router argo-plugin` end to end: HashiCorp's real go-plugin client (the Argo-shaped
//! Go host of `argo-plugin/tests/go-host`) launches the real binary exactly as Argo does, with
//! `KUBECONFIG` pointing at an in-memory API server; the test changes the Rollout's
//! `RolloutTraffic` between `VerifyWeight` calls and checks the answers and that the plugin only
//! ever GETs that one object. Skipped, saying why, when Go or the packages are missing
//! (`argo-plugin/tests/go-host/install-deps.sh` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use test_apiserver::{RequestMatch, TestApiServer, Verb};

#[path = "../argo-plugin/tests/common/go_host.rs"]
mod go_host;

use go_host::{GoHost, Verify};

const PLUGIN: &str = env!("CARGO_BIN_EXE_rollout-router");
const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crds/rollouttraffics.rollout-router.io.yaml"
);
/// What the Go host's Rollout says (`argo-plugin/tests/go-host/main.go`).
const GENERATION: i64 = 2;
const CANARY_HASH: &str = "7bf84f9696";
const STABLE_HASH: &str = "5d58bd77d4";

#[test]
fn started_by_hand_it_says_so_and_exits_1() {
    let output = Command::new(PLUGIN)
        .arg("argo-plugin")
        .env_remove("ARGO_ROLLOUTS_RPC_PLUGIN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("This binary is a plugin"), "{stderr}");
}

/// One routing object of the status, at `applied` percent.
fn object(name: &str, applied: i64, verified: Option<bool>) -> Value {
    let mut object = json!({
        "kind": "VirtualService", "namespace": "prod", "name": name,
        "location": "http[primary]", "desiredWeight": 20, "appliedWeight": applied,
    });
    if let Some(verified) = verified {
        object["verified"] = json!(verified);
    }
    object
}

/// Stores the `RolloutTraffic` of prod/shop with `status` (what the controller would write).
fn seed_status(server: &TestApiServer, status: Value) {
    server
        .seed(json!({
            "apiVersion": "rollout-router.io/v1alpha1",
            "kind": "RolloutTraffic",
            "metadata": {"namespace": "prod", "name": "shop"},
            "spec": {"rollout": {"name": "shop"}},
            "status": status,
        }))
        .unwrap();
}

fn status(generation: i64, objects: Vec<Value>) -> Value {
    json!({
        "observedGeneration": generation,
        "desiredWeight": 20,
        "canaryHash": CANARY_HASH,
        "stableHash": STABLE_HASH,
        "routers": [{"name": "istio", "objects": objects}],
        "conditions": [{"type": "InvalidConfig", "status": "False", "reason": "Valid",
            "message": "", "lastTransitionTime": "2024-05-06T07:08:09Z"}],
    })
}

#[test]
fn verify_weight_follows_rollout_traffic() {
    if let Some(reason) = go_host::go_missing() {
        eprintln!("skipping the Argo plugin end-to-end test: {reason}");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The server runs on the runtime's workers while this thread drives the Go host.
    let server = runtime.block_on(TestApiServer::start()).unwrap();
    server.register_crd_yaml(CRD).unwrap();
    server
        .seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}))
        .unwrap();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("argo-plugin-e2e");
    std::fs::create_dir_all(&work).unwrap();
    let kubeconfig = work.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let host = go_host::build(&work);
    let mark = server.mark();

    let mut host = GoHost::start(
        &host,
        PLUGIN,
        &["argo-plugin"],
        &[
            ("KUBECONFIG", kubeconfig.as_os_str()),
            ("ROLLOUT_ROUTER_PLUGIN_LOG", OsStr::new("info")),
        ],
    );
    let not_verified = Verify {
        verified: 0,
        error: String::new(),
        call_error: String::new(),
    };
    let experiment = ["shop-exp:6c8fd9d9f:10"];

    // No RolloutTraffic yet.
    assert_eq!(host.verify(20, &[]), not_verified);

    // The weight is applied, but the status is about an older generation of the Rollout.
    seed_status(
        &server,
        status(
            GENERATION - 1,
            vec![object("shop", 20, None), object("shop-internal", 20, None)],
        ),
    );
    assert_eq!(host.verify(20, &[]), not_verified);

    // Current generation, one of the two objects still at the old weight.
    seed_status(
        &server,
        status(
            GENERATION,
            vec![object("shop", 20, None), object("shop-internal", 0, None)],
        ),
    );
    assert_eq!(host.verify(20, &[]), not_verified);

    // Every object applies what Argo asks for: verified (with or without an experiment, whose
    // weights RolloutTraffic does not carry per object).
    seed_status(
        &server,
        status(
            GENERATION,
            vec![object("shop", 20, None), object("shop-internal", 20, None)],
        ),
    );
    let verified = Verify {
        verified: 1,
        ..not_verified.clone()
    };
    assert_eq!(host.verify(20, &[]), verified);
    assert_eq!(host.verify(20, &experiment), verified);
    // The same status does not verify another weight.
    assert_eq!(host.verify(40, &[]), not_verified);

    // Routing for other pod-template hashes than the Rollout's: not verified.
    let mut other_hash = status(GENERATION, vec![object("shop", 20, None)]);
    other_hash["canaryHash"] = json!("0000000000");
    seed_status(&server, other_hash);
    assert_eq!(host.verify(20, &[]), not_verified);

    // A data plane that has not confirmed the weight yet.
    seed_status(
        &server,
        status(GENERATION, vec![object("shop", 20, Some(false))]),
    );
    assert_eq!(host.verify(20, &[]), not_verified);

    // Invalid configuration: an RpcError naming the cause.
    let mut invalid = status(GENERATION, vec![]);
    invalid["conditions"] = json!([{"type": "InvalidConfig", "status": "True",
        "reason": "RouteNotFound", "message": "VirtualService prod/shop has no route primary",
        "lastTransitionTime": "2024-05-06T07:08:09Z"}]);
    seed_status(&server, invalid);
    let answer = host.verify(20, &[]);
    assert_eq!((answer.verified, answer.call_error.as_str()), (0, ""));
    assert_eq!(
        answer.error,
        "rollout-router: prod/shop: the traffic configuration is invalid: \
         RouteNotFound: VirtualService prod/shop has no route primary"
    );

    let (exit, log) = host.finish();
    assert!(exit.success(), "the Go host reported failures:\n{log}");
    assert!(log.contains("all checks passed"), "{log}");
    // Every call is logged with the Rollout and its outcome (go-plugin re-logs our stderr).
    for method in ["UpdateHash", "SetWeight", "SetHeaderRoute", "VerifyWeight"] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("method=\"{method}\"")) && l.contains("prod/shop")),
            "no log line for {method}:\n{log}"
        );
    }

    // The plugin only read: one GET of prod/shop's RolloutTraffic per VerifyWeight, nothing
    // else (no list, no watch, no write, nothing cached across calls).
    let requests = server.requests_since(mark);
    let gets = RequestMatch::any()
        .verb(Verb::Get)
        .resource("rollouttraffics")
        .namespace("prod")
        .name("shop");
    let other: Vec<_> = requests.iter().filter(|r| !gets.matches(r)).collect();
    assert!(other.is_empty(), "unexpected requests: {other:#?}");
    assert_eq!(
        requests.len(),
        9,
        "one GET per VerifyWeight (9 calls above)"
    );
    runtime.block_on(server.shutdown());
}

/// `--install-to` is what an init container runs to put the binary into Argo's pod.
#[test]
fn install_to_copies_an_executable_plugin() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("argo-plugin-install");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(PLUGIN)
        .args(["argo-plugin", "--install-to"])
        .arg(&dir)
        .env_remove("ARGO_ROLLOUTS_RPC_PLUGIN")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty());
    let installed = dir.join("rollout-router");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(PLUGIN).unwrap()
    );
    let mode = std::fs::metadata(&installed).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    // The copy is the plugin: started by hand, it says so.
    let copy = Command::new(&installed)
        .arg("argo-plugin")
        .env_remove("ARGO_ROLLOUTS_RPC_PLUGIN")
        .output()
        .unwrap();
    assert_eq!(copy.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&copy.stderr).contains("This binary is a plugin"));

    let missing = Command::new(PLUGIN)
        .args(["argo-plugin", "--install-to"])
        .arg(dir.join("no/such/dir"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no/such/dir"));
}
