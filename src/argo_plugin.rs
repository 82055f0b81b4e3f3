//! `rollout-router argo-plugin`: Argo Rollouts' traffic-router plugin, backed by `RolloutTraffic`.
//!
//! Argo starts this as a child process of its controller (spec 50). The controller stays the only
//! writer of routing objects: write calls succeed without writing, and `VerifyWeight` answers
//! from the Rollout's `RolloutTraffic` status, read with one GET per call (no watch: the plugin
//! lives in Argo's process tree and must stay small; no cache: every answer is about now).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use kube::Api;
use rollout_router_argo_plugin::{
    AcceptAll, AppliedWeights, RouterWeights, WeightStatusSource, handshake,
    rpc_types::WeightDestination,
};
use tokio::sync::OnceCell;
use tracing_subscriber::EnvFilter;

use crate::traffic::{Condition, RolloutTraffic, RolloutTrafficStatus};

/// Condition type the controller sets when the Rollout's routing configuration is invalid.
pub const INVALID_CONFIG: &str = "InvalidConfig";

#[derive(Debug, clap::Args)]
pub struct ArgoPluginArgs {
    /// Log filter (tracing `EnvFilter` syntax). Logs go to stderr, which Argo's go-plugin
    /// client re-logs; stdout carries only the handshake line.
    #[arg(long, env = "ROLLOUT_ROUTER_PLUGIN_LOG", default_value = "info")]
    pub log_level: String,
    /// Instead of serving: copy this binary to DIR/rollout-router (mode 0755) and exit. For an
    /// init container in Argo's pod: the rollout-router image is distroless, it has no `cp`.
    #[arg(long, value_name = "DIR")]
    pub install_to: Option<PathBuf>,
}

/// File name the binary is installed under by `--install-to` (Argo's `file://` location).
pub const INSTALLED_NAME: &str = "rollout-router";

/// Runs the plugin until Argo lets it go. Exit status 1 when not started by Argo (spec 50 §2.2)
/// or when serving fails.
pub fn main(args: ArgoPluginArgs) -> ExitCode {
    let ArgoPluginArgs {
        log_level,
        install_to,
    } = args;
    if let Some(dir) = install_to {
        return match install(&dir) {
            Ok(path) => {
                eprintln!("installed the plugin binary as {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "error: cannot install the plugin binary into {}: {e}",
                    dir.display()
                );
                ExitCode::FAILURE
            }
        };
    }
    // Before anything else, and before anything could reach stdout.
    if let Err(e) = handshake::check_cookie() {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(EnvFilter::try_new(&log_level).unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let handler = Arc::new(AcceptAll::new(RolloutTrafficSource::default()));
    match runtime.block_on(rollout_router_argo_plugin::serve(handler)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "plugin failed");
            ExitCode::FAILURE
        }
    }
}

/// Copies the running executable to `dir/rollout-router`, readable and executable by Argo's
/// user, replacing any previous copy atomically (Argo may be starting from it).
fn install(dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let source = std::env::current_exe()?;
    let target = dir.join(INSTALLED_NAME);
    let partial = dir.join(format!(".{INSTALLED_NAME}.partial"));
    std::fs::copy(&source, &partial)?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&partial, &target)?;
    Ok(target)
}

/// Reads a Rollout's `RolloutTraffic` (same namespace and name) for `VerifyWeight`.
#[derive(Default)]
pub struct RolloutTrafficSource {
    /// Built on first use, inside the runtime: from `KUBECONFIG` or, inside Argo's pod, the
    /// in-cluster configuration with Argo's service account. A failure is retried next call.
    client: OnceCell<kube::Client>,
}

impl RolloutTrafficSource {
    /// A source using `client` (tests).
    pub fn with_client(client: kube::Client) -> Self {
        Self {
            client: OnceCell::new_with(Some(client)),
        }
    }

    async fn client(&self) -> Result<&kube::Client, String> {
        self.client
            .get_or_try_init(|| async {
                let config = kube::Config::infer()
                    .await
                    .map_err(|e| format!("no Kubernetes configuration: {e}"))?;
                kube::Client::try_from(config)
                    .map_err(|e| format!("cannot build a Kubernetes client: {e}"))
            })
            .await
    }
}

impl WeightStatusSource for RolloutTrafficSource {
    async fn lookup(&self, namespace: &str, name: &str) -> Result<Option<AppliedWeights>, String> {
        if namespace.is_empty() || name.is_empty() {
            return Err(format!(
                "the Rollout in the call has no namespace or name ({namespace:?}/{name:?})"
            ));
        }
        let client = self.client().await?;
        let api: Api<RolloutTraffic> = Api::namespaced(client.clone(), namespace);
        let traffic = api.get_opt(name).await.map_err(|e| {
            format!("get rollouttraffics.rollout-router.io {namespace}/{name}: {e}")
        })?;
        Ok(traffic
            .and_then(|t| t.status)
            .and_then(|status| applied_weights(&status)))
    }
}

/// What a `RolloutTraffic` status reports as applied, in the plugin's terms; `None` while it
/// reports nothing (not yet computed for any generation).
///
/// Every routing object's weighted place becomes one entry carrying its applied canary weight
/// and data-plane verification. The status does not carry stable or experiment weights per
/// place (they follow from the canary weight and the Rollout), so those are not compared.
pub fn applied_weights(status: &RolloutTrafficStatus) -> Option<AppliedWeights> {
    let invalid_config = status
        .conditions
        .iter()
        .find(|c| c.type_ == INVALID_CONFIG && c.status == "True")
        .map(invalid_cause);
    if status.observed_generation.is_none() && invalid_config.is_none() {
        return None;
    }
    let routers = status
        .routers
        .iter()
        .flat_map(|router| {
            router.objects.iter().map(move |object| RouterWeights {
                router: place_name(&router.name, object),
                canary: WeightDestination {
                    weight: object.applied_weight,
                    ..WeightDestination::default()
                },
                stable: None,
                additional: None,
                verified: object.verified,
            })
        })
        .collect();
    Some(AppliedWeights {
        invalid_config,
        observed_generation: status.observed_generation,
        canary_hash: status.canary_hash.clone(),
        stable_hash: status.stable_hash.clone(),
        routers,
    })
}

fn invalid_cause(condition: &Condition) -> String {
    match (condition.reason.as_str(), condition.message.as_str()) {
        (reason, "") => reason.to_owned(),
        ("", message) => message.to_owned(),
        (reason, message) => format!("{reason}: {message}"),
    }
}

/// `istio VirtualService prod/shop http[primary]`: names the place in VerifyWeight's reasons.
fn place_name(router: &str, object: &crate::traffic::ObjectWeights) -> String {
    let mut name = format!(
        "{router} {} {}/{}",
        object.kind, object.namespace, object.name
    );
    if !object.location.is_empty() {
        name.push(' ');
        name.push_str(&object.location);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::{ObjectWeights, RouterStatus};

    fn object(name: &str, applied: i32, verified: Option<bool>) -> ObjectWeights {
        ObjectWeights {
            kind: "VirtualService".into(),
            namespace: "prod".into(),
            name: name.into(),
            location: "http[primary]".into(),
            desired_weight: 20,
            applied_weight: applied,
            verified,
            ..ObjectWeights::default()
        }
    }

    fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            ..Condition::default()
        }
    }

    #[test]
    fn nothing_observed_reports_nothing() {
        assert_eq!(applied_weights(&RolloutTrafficStatus::default()), None);
    }

    #[test]
    fn every_object_of_every_router_is_a_place() {
        let status = RolloutTrafficStatus {
            observed_generation: Some(4),
            canary_hash: "c".into(),
            stable_hash: "s".into(),
            routers: vec![
                RouterStatus {
                    name: "istio".into(),
                    objects: vec![object("a", 20, None), object("b", 10, None)],
                },
                RouterStatus {
                    name: "alb".into(),
                    objects: vec![object("c", 20, Some(false))],
                },
            ],
            conditions: vec![condition(INVALID_CONFIG, "False", "Valid", "")],
            ..RolloutTrafficStatus::default()
        };
        let applied = applied_weights(&status).unwrap();
        assert_eq!(applied.observed_generation, Some(4));
        assert_eq!(applied.invalid_config, None);
        assert_eq!(
            (applied.canary_hash.as_str(), applied.stable_hash.as_str()),
            ("c", "s")
        );
        let places: Vec<_> = applied
            .routers
            .iter()
            .map(|r| (r.router.as_str(), r.canary.weight, r.verified))
            .collect();
        assert_eq!(
            places,
            vec![
                ("istio VirtualService prod/a http[primary]", 20, None),
                ("istio VirtualService prod/b http[primary]", 10, None),
                ("alb VirtualService prod/c http[primary]", 20, Some(false)),
            ]
        );
        assert!(
            applied
                .routers
                .iter()
                .all(|r| r.stable.is_none() && r.additional.is_none())
        );
    }

    #[test]
    fn invalid_config_names_reason_and_message_even_without_a_generation() {
        let status = RolloutTrafficStatus {
            conditions: vec![condition(
                INVALID_CONFIG,
                "True",
                "RouteNotFound",
                "VirtualService prod/shop has no route primary",
            )],
            ..RolloutTrafficStatus::default()
        };
        let applied = applied_weights(&status).unwrap();
        assert_eq!(
            applied.invalid_config.as_deref(),
            Some("RouteNotFound: VirtualService prod/shop has no route primary")
        );
        assert_eq!(applied.observed_generation, None);
    }
}
