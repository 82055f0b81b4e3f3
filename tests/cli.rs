//! The offline commands, run as the real binary: `plan` on every bundled example, `render` on
//! a hand-made status, and malformed input.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the failure report"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rollout-router"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    binary().args(args).current_dir(root()).output().unwrap()
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn examples() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The weight `plan` must show at step `index`: the latest setWeight at or before it
/// (the simulation scales the canary for every step).
fn expected_weight(steps: &[Value], index: usize) -> i64 {
    steps[..=index]
        .iter()
        .rev()
        .find_map(|s| s.get("setWeight").and_then(Value::as_i64))
        .unwrap_or(0)
}

fn rollout_steps(dir: &Path) -> Vec<Value> {
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for doc in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
            if doc.get("kind").and_then(Value::as_str) == Some("Rollout") {
                return doc
                    .pointer("/spec/strategy/canary/steps")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap();
            }
        }
    }
    panic!("no Rollout in {}", dir.display());
}

#[test]
fn plan_prints_one_entry_per_step_with_the_right_weights() {
    let dirs = examples();
    assert!(!dirs.is_empty(), "no bundled examples");
    for dir in dirs {
        let steps = rollout_steps(&dir);
        let out = json(&run(&["plan", dir.to_str().unwrap(), "--output", "json"]));
        let entries = out["steps"].as_array().unwrap();
        let step_entries: Vec<&Value> = entries.iter().filter(|e| e["phase"] == "step").collect();
        assert_eq!(step_entries.len(), steps.len(), "{}", dir.display());
        for (i, entry) in step_entries.iter().enumerate() {
            assert_eq!(entry["index"], i, "{}", dir.display());
            assert_eq!(entry["step"], steps[i], "{}", dir.display());
            let weight = entry["desired"]["canary"]["weight"].as_i64().unwrap();
            assert_eq!(
                weight,
                expected_weight(&steps, i),
                "{} step {i}",
                dir.display()
            );
            assert!(
                !entry["objects"].as_array().unwrap().is_empty(),
                "{} step {i}",
                dir.display()
            );
        }
        // Non-step entries carry indices that cannot be confused with a step's.
        for e in entries.iter().filter(|e| e["phase"] != "step") {
            let index = e["index"].as_i64().unwrap();
            assert!(
                index < 0 || index >= steps.len() as i64,
                "{}: {e}",
                dir.display()
            );
        }
        let last = entries.last().unwrap();
        assert_eq!(
            (
                last["phase"].as_str(),
                last["desired"]["canary"]["weight"].as_i64()
            ),
            (Some("completed"), Some(0))
        );
        // The text output names every step.
        let text = run(&["plan", dir.to_str().unwrap()]);
        assert!(text.status.success());
        let text = String::from_utf8(text.stdout).unwrap();
        for i in 0..steps.len() {
            assert!(
                text.contains(&format!("── step {i}: ")),
                "{}:\n{text}",
                dir.display()
            );
        }
    }
}

#[test]
fn plan_abort_ends_at_zero() {
    let dir = examples().into_iter().next().unwrap();
    let out = json(&run(&[
        "plan",
        dir.to_str().unwrap(),
        "--abort-at",
        "0",
        "-o",
        "json",
    ]));
    let entries = out["steps"].as_array().unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last["phase"], "aborted");
    assert_eq!(last["index"], -2);
    assert_eq!(last["desired"]["canary"]["weight"], 0);
    assert_eq!(entries.len(), 3, "initial, step 0, aborted");
}

#[test]
fn plan_text_says_what_a_router_is_waiting_for() {
    let dir = root().join("examples/istio-subset");
    let dir = dir.to_str().unwrap();
    let out = json(&run(&["plan", dir, "-o", "json"]));
    let waiting: Vec<&str> = out["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["waiting"].as_str())
        .collect();
    assert!(
        !waiting.is_empty(),
        "the DestinationRule delay rule waits at the initial entry"
    );
    let text = String::from_utf8(run(&["plan", dir]).stdout).unwrap();
    for w in waiting {
        assert!(
            text.contains(&format!("   waiting: {w}\n")),
            "{w} not in:\n{text}"
        );
    }
}

#[test]
fn render_prints_the_weight_of_the_status() {
    let fixture = root().join("tests/fixtures/render/rollout.yaml");
    let text = std::fs::read_to_string(&fixture).unwrap();
    // steps: setWeight 20, setHeaderRoute, setWeight 50.
    for (index, weight) in [(0, 20), (1, 20), (2, 50), (3, 100)] {
        let dir = tempdir(&format!("render-{index}"));
        let doc = text.replace("currentStepIndex: 0", &format!("currentStepIndex: {index}"));
        std::fs::write(dir.join("rollout.yaml"), doc).unwrap();
        let out = json(&run(&["render", dir.to_str().unwrap(), "-o", "json"]));
        assert_eq!(out["desired"]["canary"]["weight"], weight, "index {index}");
        assert_eq!(out["report"]["canaryWeight"], weight, "index {index}");
        assert_eq!(out["report"]["stableWeight"], 100 - weight, "index {index}");
        assert_eq!(out["report"]["verified"], Value::Null);
        let vs = &out["objects"][0];
        assert_eq!(vs["kind"], "VirtualService");
    }
}

fn tempdir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn malformed_input_exits_2_naming_the_field() {
    let text = std::fs::read_to_string(root().join("tests/fixtures/render/rollout.yaml")).unwrap();
    let cases = [
        (
            "weight",
            text.replace("setWeight: 50", "setWeight: 150"),
            "spec.strategy.canary.steps[2].setWeight: must be in [0, 100], got 150",
        ),
        (
            "type",
            text.replace("replicas: 10", "replicas: ten"),
            "spec.replicas: invalid type",
        ),
        (
            "missing-vs",
            text.replace("name: shop, routes", "name: nope, routes"),
            "VirtualService prod/nope not found",
        ),
        (
            "header",
            text.replace("{exact: \"on\"}", "{}"),
            "steps[1].setHeaderRoute.match[0].headerValue: must set exactly one of exact, prefix, regex",
        ),
        (
            "unmanaged",
            text.replace(
                "managedRoutes: [{name: h1}]",
                "managedRoutes: [{name: other}]",
            ),
            "steps[1].setHeaderRoute.name: route \"h1\" must be listed",
        ),
        (
            "plugin",
            text.replace("virtualService: {name", "virtualServce: {name"),
            "plugins[\"rollout-router/traffic\"].istio.virtualServce: unknown field",
        ),
        ("yaml", "kind: [".to_owned(), "not valid YAML"),
    ];
    for (name, doc, message) in cases {
        let dir = tempdir(&format!("bad-{name}"));
        std::fs::write(dir.join("rollout.yaml"), doc).unwrap();
        for command in ["plan", "render"] {
            let out = run(&[command, dir.to_str().unwrap()]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {command}: {stderr}");
            assert!(stderr.contains(message), "{name} {command}: {stderr}");
            assert!(
                stderr.contains("rollout.yaml"),
                "{name} {command}: names the document: {stderr}"
            );
            assert!(out.stdout.is_empty(), "{name} {command}: no partial output");
        }
    }
}
