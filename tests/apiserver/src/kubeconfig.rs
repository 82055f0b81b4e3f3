//! Client configuration for a running server: a `kube::Config` for kube-rs and a kubeconfig file
//! for kubectl (plain HTTP, no credentials: the server does no authentication).

use std::path::Path;

use kube::config::{Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext};

use crate::error::Error;

/// The name of the cluster, user and context in the kubeconfig.
pub const CONTEXT: &str = "test-apiserver";

pub(crate) fn kubeconfig(server_url: &str) -> Kubeconfig {
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: CONTEXT.into(),
            cluster: Some(Cluster {
                server: Some(server_url.to_string()),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: CONTEXT.into(),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: CONTEXT.into(),
            context: Some(Context {
                cluster: CONTEXT.into(),
                user: Some(CONTEXT.into()),
                namespace: Some("default".into()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(CONTEXT.into()),
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        ..Kubeconfig::default()
    }
}

pub(crate) fn write(config: &Kubeconfig, path: &Path) -> Result<(), Error> {
    let yaml = serde_saphyr::to_string(config).map_err(Error::RenderYaml)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::WriteFile {
            path: path.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, yaml).map_err(|source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}
