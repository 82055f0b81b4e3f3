//! The controller: `rollout-router run`. Watches Rollouts that carry the plugin block, their
//! ReplicaSets and Experiments, the routing objects they reference (mapped back through an
//! index) and their `RolloutTraffic`; reconciles each Rollout (see `reconcile.rs`).

mod admin;
mod apply;
mod context;
mod metrics;
mod reconcile;
mod run;
mod status;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;

pub use context::Settings;
pub use run::{Controller, LeaderElection, start};

use crate::rollout::DEFAULT_PLUGIN_KEY;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum RouterKind {
    Istio,
    Nginx,
    Alb,
}

#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// The `trafficRouting.plugins` key that opts a Rollout in.
    #[arg(long, env = "ROLLOUT_ROUTER_PLUGIN_KEY", default_value = DEFAULT_PLUGIN_KEY)]
    pub plugin_key: String,
    /// Watch only this namespace (namespaced install). Default: every namespace.
    #[arg(long, env = "ROLLOUT_ROUTER_NAMESPACE")]
    pub namespace: Option<String>,
    /// Routers to enable. A router whose CRDs are not installed is disabled with a warning.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [RouterKind::Istio, RouterKind::Nginx, RouterKind::Alb])]
    pub routers: Vec<RouterKind>,
    /// Address of the admin server: `/metrics`, `/live`, `/ready`.
    #[arg(
        long,
        env = "ROLLOUT_ROUTER_ADMIN_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub admin_addr: SocketAddr,
    /// Compute and log every change, write nothing (no routing objects, no status, no Events).
    #[arg(long)]
    pub dry_run: bool,
    /// Also write `status.canary.weights` on the Rollout in Argo's shape, for rollout
    /// controllers that leave routing to a separate router. Off by default: Argo Rollouts owns
    /// that field, and two writers fight.
    #[arg(long)]
    pub write_rollout_weights: bool,
    /// Disable leader election (a single replica; every replica writes otherwise).
    #[arg(long)]
    pub no_leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, default_value = "rollout-router")]
    pub lease_name: String,
    /// Namespace of the Lease. Default: the pod's namespace (`POD_NAMESPACE`), else `default`.
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Lease duration; a standby takes over this long after the leader stops renewing.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// This replica's identity in the Lease. Default: `POD_NAME`, else the host name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Reconcile every Rollout at least this often (safety net against missed events).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub resync: Duration,
    /// Rollouts reconciled at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u16,
    #[arg(long, value_enum, env = "ROLLOUT_ROUTER_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter (`tracing` syntax), e.g. `info,rollout_router=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
}

/// Parses `15s`, `2m`, `1h`, `500ms` or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 15s, 2m, 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!(
            "`{text}`: unknown unit `{unit}` (use ms, s, m or h)"
        )),
    }
}

impl RunArgs {
    pub fn settings(&self) -> Settings {
        let identity = self.identity.clone().unwrap_or_else(|| {
            std::env::var("HOSTNAME").unwrap_or_else(|_| "rollout-router".to_owned())
        });
        Settings {
            plugin_key: self.plugin_key.clone(),
            namespace: self.namespace.clone(),
            istio: self.routers.contains(&RouterKind::Istio),
            nginx: self.routers.contains(&RouterKind::Nginx),
            alb: self.routers.contains(&RouterKind::Alb),
            dry_run: self.dry_run,
            write_rollout_weights: self.write_rollout_weights,
            resync: self.resync,
            concurrency: self.concurrency,
            manager: "rollout-router".to_owned(),
            identity,
            leader_election: (!self.no_leader_election).then(|| run::LeaderElection {
                lease_name: self.lease_name.clone(),
                lease_namespace: self
                    .lease_namespace
                    .clone()
                    .or_else(|| self.namespace.clone())
                    .unwrap_or_else(|| "default".to_owned()),
                duration: self.lease_duration,
            }),
        }
    }
}

fn init_logging(args: &RunArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// `rollout-router run`.
pub fn main(args: RunArgs) -> ExitCode {
    init_logging(&args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let config = kube::Config::infer().await.map_err(|e| {
            anyhow::anyhow!(
                "no Kubernetes configuration: {e} (set KUBECONFIG, or run in a pod with a \
                 service account)"
            )
        })?;
        let client = kube::Client::try_from(config)?;
        let listener = admin::bind(args.admin_addr)
            .await
            .map_err(|e| anyhow::anyhow!("admin server on {}: {e}", args.admin_addr))?;
        let controller = start(client, args.settings(), Some(listener)).await?;
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            ctrl_c.await?;
            Ok::<_, std::io::Error>(())
        };
        let _ = shutdown.await;
        tracing::info!("shutting down");
        controller.shutdown().await;
        Ok::<_, anyhow::Error>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
