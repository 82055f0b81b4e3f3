//! The real kubectl against the server: apply, get -o yaml, patch (json, merge, status),
//! get --watch and delete. Skipped, with a message, where kubectl is not installed.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use test_apiserver::{RequestMatch, TestApiServer, Verb};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::common::*;

const MANIFEST: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80}
"#;

fn kubectl_path() -> Option<PathBuf> {
    let path = std::env::var_os("KUBECTL")
        .map_or_else(|| PathBuf::from("/usr/bin/kubectl"), PathBuf::from);
    path.exists().then_some(path)
}

struct Kubectl {
    bin: PathBuf,
    dir: PathBuf,
}

impl Kubectl {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", self.dir.join("kubeconfig"))
            .env("KUBECACHEDIR", self.dir.join("cache"))
            .env("HOME", &self.dir)
            .kill_on_drop(true);
        cmd
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.command(args).output().await.expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed: {stderr}");
        stdout
    }
}

fn rollout(server: &TestApiServer) -> Value {
    server
        .get("argoproj.io/v1alpha1", "Rollout", Some("default"), "web")
        .unwrap()
        .expect("the Rollout exists")
}

fn scratch_dir(server: &TestApiServer) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kubectl-{}", server.addr().port()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn kubectl_works_against_the_server() {
    let Some(bin) = kubectl_path() else {
        eprintln!("skipped: kubectl not found at /usr/bin/kubectl (set KUBECTL to another path)");
        return;
    };
    let (server, _client) = server().await;
    let dir = scratch_dir(&server);
    server.write_kubeconfig(dir.join("kubeconfig")).unwrap();
    std::fs::write(dir.join("manifest.yaml"), MANIFEST).unwrap();
    let manifest = dir.join("manifest.yaml");
    let manifest = manifest.to_str().unwrap();
    let k = Kubectl {
        bin,
        dir: dir.clone(),
    };

    // apply: create, then unchanged (no write), then configured (one merge patch for the CR,
    // one strategic merge patch for the Service).
    let out = k.ok(&["apply", "-f", manifest]).await;
    assert!(
        out.contains("rollout.argoproj.io/web created") && out.contains("service/web created"),
        "{out}"
    );
    let mark = server.mark();
    let out = k.ok(&["apply", "-f", manifest]).await;
    assert!(out.contains("rollout.argoproj.io/web unchanged"), "{out}");
    assert_eq!(server.count_since(mark, &RequestMatch::writes()), 0);
    std::fs::write(
        dir.join("manifest.yaml"),
        MANIFEST
            .replace("replicas: 2", "replicas: 3")
            .replace("port: 80", "port: 81"),
    )
    .unwrap();
    let mark = server.mark();
    let out = k.ok(&["apply", "-f", manifest]).await;
    assert!(out.contains("rollout.argoproj.io/web configured"), "{out}");
    let writes = server
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.verb.is_write())
        .collect::<Vec<_>>();
    let types: Vec<(String, Option<String>)> = writes
        .iter()
        .map(|r| (r.resource_path(), r.content_type.clone()))
        .collect();
    assert_eq!(
        types,
        [
            (
                "rollouts".to_string(),
                Some("application/merge-patch+json".to_string())
            ),
            (
                "services".to_string(),
                Some("application/strategic-merge-patch+json".to_string())
            ),
        ]
    );
    assert_eq!(rollout(&server)["spec"]["replicas"], 3);
    let svc = server
        .get("v1", "Service", Some("default"), "web")
        .unwrap()
        .unwrap();
    assert_eq!(svc["spec"]["ports"], json!([{"name": "http", "port": 81}]));

    // get -o yaml
    let yaml = k.ok(&["get", "rollout", "web", "-o", "yaml"]).await;
    let got: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(got["spec"]["replicas"], 3);
    assert_eq!(got["metadata"]["uid"], rollout(&server)["metadata"]["uid"]);
    let table = k.ok(&["get", "rollouts"]).await;
    assert!(
        table.starts_with("NAME") && table.contains("web"),
        "{table}"
    );

    // patch --type=json, with a passing and a failing test.
    k.ok(&["patch", "rollout", "web", "--type=json", "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":3},{"op":"replace","path":"/spec/replicas","value":4}]"#]).await;
    assert_eq!(rollout(&server)["spec"]["replicas"], 4);
    let (ok, _, stderr) = k
        .run(&[
            "patch",
            "rollout",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/spec/replicas","value":3}]"#,
        ])
        .await;
    assert!(!ok, "a failed test op fails the command");
    assert!(stderr.contains("invalid"), "{stderr}");

    // patch --type=merge, and the status subresource.
    k.ok(&[
        "patch",
        "rollout",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"team":"a"}}}"#,
    ])
    .await;
    assert_eq!(rollout(&server)["metadata"]["labels"]["team"], "a");
    let generation = rollout(&server)["metadata"]["generation"].clone();
    k.ok(&[
        "patch",
        "rollout",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Healthy"},"spec":{"replicas":99}}"#,
    ])
    .await;
    let ro = rollout(&server);
    assert_eq!(
        (
            ro["status"]["phase"].as_str(),
            ro["spec"]["replicas"].as_i64()
        ),
        (Some("Healthy"), Some(4))
    );
    assert_eq!(ro["metadata"]["generation"], generation);

    // get --watch: the initial state, then a change, within a deadline.
    let mut watch = k
        .command(&[
            "get",
            "rollouts",
            "--watch",
            "--output-watch-events",
            "--request-timeout=30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let watched = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let first = line
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            seen.push(first.clone());
            if first == "ADDED web" {
                server
                    .wait_for("kubectl's watch", DEADLINE, |s| s.open_watches() > 0)
                    .await
                    .unwrap();
                let mut changed = rollout(&server);
                changed["spec"]["replicas"] = json!(5);
                server.seed(changed).unwrap();
            }
            if first == "MODIFIED web" {
                return;
            }
        }
    })
    .await;
    watch.kill().await.unwrap();
    assert!(watched.is_ok(), "kubectl get --watch printed {seen:?}");
    assert_eq!(seen, ["EVENT NAME", "ADDED web", "MODIFIED web"]);
    assert!(server.count(&RequestMatch::any().verb(Verb::Watch).resource("rollouts")) >= 1);

    // delete (kubectl waits for the object to be gone).
    let out = k.ok(&["delete", "rollout", "web", "--timeout=20s"]).await;
    assert!(out.contains("\"web\" deleted"), "{out}");
    assert!(!rollout_stored(&server, "web"));
    let (ok, _, stderr) = k.run(&["get", "rollout", "web"]).await;
    assert!(
        !ok && stderr.contains("NotFound") || stderr.contains("not found"),
        "{stderr}"
    );
}
