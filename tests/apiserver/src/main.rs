//! `test-apiserver`: the in-memory API server as a process, for exploring and demos.
//!
//! ```text
//! test-apiserver --listen 127.0.0.1:8001 --kubeconfig /tmp/kubeconfig --crd rollout-crd.yaml
//! kubectl --kubeconfig /tmp/kubeconfig get rollouts
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use test_apiserver::{ServerOptions, TestApiServer};

/// Serves the built-in kinds rollout-router touches plus the given CRDs, in memory.
#[derive(Debug, Parser)]
#[command(name = "test-apiserver", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write a kubeconfig for the server.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// CustomResourceDefinition YAML files to serve (repeatable).
    #[arg(long = "crd")]
    crds: Vec<PathBuf>,
    /// Changes kept for watch replay before older resourceVersions answer 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 60)]
    bookmark_seconds: u64,
}

impl Args {
    async fn run(self) -> anyhow::Result<()> {
        let Args {
            listen,
            kubeconfig,
            crds,
            history,
            bookmark_seconds,
        } = self;
        let options = ServerOptions {
            listen,
            history_capacity: history,
            bookmark_interval: Duration::from_secs(bookmark_seconds.max(1)),
            ..ServerOptions::default()
        };
        let server = TestApiServer::start_with(options)
            .await
            .context("starting the server")?;
        for crd in &crds {
            let types = server
                .register_crd_yaml(crd)
                .with_context(|| format!("registering {}", crd.display()))?;
            for rt in types {
                eprintln!(
                    "serving {}/{} {}",
                    rt.group,
                    rt.versions.join(","),
                    rt.plural
                );
            }
        }
        server
            .write_kubeconfig(&kubeconfig)
            .context("writing the kubeconfig")?;
        eprintln!(
            "test-apiserver listening on {}; kubeconfig written to {}",
            server.url(),
            kubeconfig.display()
        );
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        server.shutdown().await;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Args::parse().run().await
}
