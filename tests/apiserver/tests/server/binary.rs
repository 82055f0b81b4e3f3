//! The `test-apiserver` binary: serves the built-ins plus the CRDs given and writes a kubeconfig.

use std::path::Path;
use std::process::Stdio;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::common::*;

#[tokio::test]
async fn the_binary_serves_crds_and_writes_a_kubeconfig() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("crd.yaml"), ROLLOUT_CRD).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-apiserver"))
        .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--crd")
        .arg(dir.join("crd.yaml"))
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let ready = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("listening on") {
                return line;
            }
        }
        panic!("the binary exited early");
    })
    .await
    .expect("the binary starts");
    assert!(ready.contains("http://127.0.0.1:"), "{ready}");

    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        namespaces
            .items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some("default"))
    );
    assert!(
        rollouts(&client)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    child.kill().await.unwrap();
}
