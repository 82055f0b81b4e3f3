//! Protocol-level interoperability with HashiCorp's real go-plugin client: builds `tests/go-host`
//! (Go, GOPATH mode, Debian packages, no module downloads) and lets it launch the test server
//! (`argo-plugin-test-server`: weights from a JSON file, decoded arguments dumped) exactly as
//! Argo does, call every method and check the replies. The root crate's `tests/argo_plugin.rs`
//! runs the same host against the real `rollout-router argo-plugin` and an API server. Skipped, with the reason printed, when Go or
//! the packages are missing (`tests/go-host/install-deps.sh` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

mod common;
#[path = "common/go_host.rs"]
mod go_host;

use go_host::{GoHost, Verify};

const PLUGIN: &str = env!("CARGO_BIN_EXE_argo-plugin-test-server");

#[test]
fn started_by_hand_it_says_so_and_exits_1() {
    let output = Command::new(PLUGIN)
        .env_remove("ARGO_ROLLOUTS_RPC_PLUGIN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("This binary is a plugin"), "{stderr}");

    let wrong = Command::new(PLUGIN)
        .env("ARGO_ROLLOUTS_RPC_PLUGIN", "metricprovider")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(wrong.stdout.is_empty());
}

fn write_status(path: &Path, status: Value) {
    std::fs::write(path, status.to_string()).unwrap();
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn argo_shaped_host_calls_every_method() {
    if let Some(reason) = go_host::go_missing() {
        eprintln!("skipping the Go interoperability test: {reason}");
        return;
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-interop");
    let _ = std::fs::remove_dir_all(work.join("dump"));
    std::fs::create_dir_all(work.join("dump")).unwrap();
    let host = go_host::build(&work);
    let status = work.join("status.json");
    let _ = std::fs::remove_file(&status);

    let mut host = GoHost::start(
        &host,
        PLUGIN,
        &[],
        &[
            ("ROLLOUT_ROUTER_PLUGIN_TEST_STATUS", status.as_os_str()),
            (
                "ROLLOUT_ROUTER_PLUGIN_TEST_DUMP",
                work.join("dump").as_os_str(),
            ),
            ("RUST_LOG", OsStr::new("info")),
        ],
    );
    let experiment = ["shop-exp:6c8fd9d9f:10"];
    let not_verified = Verify {
        verified: 0,
        error: String::new(),
        call_error: String::new(),
    };
    // Nothing reported yet: not verified, no error.
    assert_eq!(host.verify(20, &experiment), not_verified);

    // Still the old weights applied: not verified.
    write_status(
        &status,
        json!({"prod/shop": {"routers": [{"router": "istio",
            "canary": {"weight": 0, "podTemplateHash": "7bf84f9696"},
            "stable": {"weight": 100, "podTemplateHash": "5d58bd77d4"},
            "additional": []}]}}),
    );
    assert_eq!(host.verify(20, &experiment), not_verified);

    // The weights Argo asks for, experiment included: verified.
    write_status(
        &status,
        json!({"prod/shop": {"routers": [{"router": "istio",
            "canary": {"weight": 20, "podTemplateHash": "7bf84f9696"},
            "stable": {"weight": 70, "podTemplateHash": "5d58bd77d4"},
            "additional": [{"weight": 10, "serviceName": "shop-exp",
                "podTemplateHash": "6c8fd9d9f"}]}]}}),
    );
    let verified = host.verify(20, &experiment);
    assert_eq!(
        (verified.verified, verified.error.as_str()),
        (1, ""),
        "{verified:?}"
    );
    // The same report no longer matches once Argo asks for another weight.
    assert_eq!(host.verify(40, &experiment), not_verified);

    // Invalid configuration: an error naming the cause.
    write_status(
        &status,
        json!({"prod/shop": {"invalidConfig": "VirtualService prod/shop has no route named primary"}}),
    );
    let invalid = host.verify(20, &experiment);
    assert_eq!(invalid.verified, 0);
    assert!(
        invalid.error.contains("no route named primary"),
        "{invalid:?}"
    );

    let (exit, log) = host.finish();
    assert!(exit.success(), "the Go host reported failures:\n{log}");
    assert!(log.contains("all checks passed"), "{log}");

    // What the gob decoder made of Argo-shaped arguments.
    let dump = work.join("dump");
    let update_hash = read_json(&dump.join("UpdateHash.json"));
    assert_eq!(update_hash["rollout"], common::expected_rollout_json());
    assert_eq!(
        update_hash["additionalDestinations"],
        json!([{"weight": 10, "serviceName": "shop-exp", "podTemplateHash": "6c8fd9d9f"}])
    );
    assert_eq!(
        read_json(&dump.join("SetHeaderRoute.json")),
        json!({"setHeaderRoute": {"name": "header-route", "match": [
            {"headerName": "X-Canary", "headerValue": {"exact": "", "prefix": "y", "regex": ""}}
        ]}})
    );
    assert_eq!(
        read_json(&dump.join("SetMirrorRoute.json")),
        json!({"setMirrorRoute": {"name": "mirror-route", "percentage": 35, "match": [{
            "method": {"exact": "GET", "prefix": "", "regex": ""},
            "path": null,
            "headers": {"user-agent": {"exact": "", "prefix": "", "regex": ".*Firefox.*"}}
        }]}})
    );
}
