//! Interoperability with HashiCorp's real go-plugin client: builds `tests/go-host` (Go, GOPATH
//! mode, Debian packages, no module downloads) and lets it launch the plugin exactly as Argo
//! does, call every method and check the replies. Skipped, with the reason printed, when Go or
//! the packages are missing (`tests/go-host/install-deps.sh` installs them).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the failure report"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

mod common;

const PLUGIN: &str = env!("CARGO_BIN_EXE_argo-plugin-test-server");
const GO_PLUGIN_SOURCES: &str = "/usr/share/gocode/src/github.com/hashicorp/go-plugin";

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

/// Why the Go host cannot be built here, if it cannot.
fn go_missing() -> Option<String> {
    if Command::new("go").arg("version").output().is_err() {
        return Some("`go` is not on PATH".into());
    }
    if !Path::new(GO_PLUGIN_SOURCES).is_dir() {
        return Some(format!("{GO_PLUGIN_SOURCES} is missing"));
    }
    None
}

fn build_go_host(work: &Path) -> PathBuf {
    let package = work.join("gopath/src/argohost");
    std::fs::create_dir_all(&package).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go-host/main.go");
    std::fs::copy(source, package.join("main.go")).unwrap();
    let binary = work.join("argohost");
    let output = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg("argohost")
        .env("GO111MODULE", "off")
        .env(
            "GOPATH",
            format!("{}:/usr/share/gocode", work.join("gopath").display()),
        )
        .env("GOCACHE", work.join("gocache"))
        .env("GOFLAGS", "")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "go build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn argo_shaped_host_calls_every_method() {
    if let Some(reason) = go_missing() {
        eprintln!("skipping the Go interoperability test: {reason}");
        return;
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-interop");
    let _ = std::fs::remove_dir_all(work.join("dump"));
    std::fs::create_dir_all(work.join("dump")).unwrap();
    let host = build_go_host(&work);
    let status = work.join("status.json");

    let mut child = Command::new(&host)
        .arg(PLUGIN)
        .arg(&status)
        // go-plugin passes the host's environment to the plugin, as Argo does.
        .env("ROLLOUT_ROUTER_PLUGIN_TEST_STATUS", &status)
        .env("ROLLOUT_ROUTER_PLUGIN_TEST_DUMP", work.join("dump"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(120);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the Go host did not finish in time:\n{}",
                log.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = log.join().unwrap();
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
