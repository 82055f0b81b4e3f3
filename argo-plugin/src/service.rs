//! The services behind the net/rpc streams: go-plugin's `Control` and `Dispenser` on the control
//! stream, Argo's traffic-router `Plugin` on broker streams, and the handler trait that decides
//! what each traffic-router call answers.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::gob::{GobStruct, GobValue, TypeDesc};
use crate::netrpc::{BoxFuture, CallResult, Reply, RpcDispatch};
use crate::rpc_types::{
    PluginArgs, RolloutArgs, RpcError, RpcVerified, SetHeaderArgs, SetMirrorArgs, SetWeightArgs,
    UpdateHashArgs, VerifyWeightResponse, WeightDestination, string_reply,
    weight_update_deadline_reply,
};

/// The plugin-map name Argo dispenses.
pub const PLUGIN_NAME: &str = "RpcTrafficRouterPlugin";
/// What `Plugin.Type` answers.
pub const TYPE_NAME: &str = "rollout-router";
/// Longest a handler may take before the call is answered with an `RpcError`: a call left
/// unanswered would block an Argo worker forever (spec 50 §1.3).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Decides the answer of every traffic-router call. Arguments carry the Rollout as Argo's JSON.
pub trait TrafficRouterHandler: Send + Sync + 'static {
    fn init_plugin(&self) -> BoxFuture<'_, RpcError>;
    fn type_name(&self) -> BoxFuture<'_, String>;
    fn update_hash(&self, args: UpdateHashArgs) -> BoxFuture<'_, RpcError>;
    fn set_weight(&self, args: SetWeightArgs) -> BoxFuture<'_, RpcError>;
    fn verify_weight(&self, args: SetWeightArgs) -> BoxFuture<'_, VerifyWeightResponse>;
    fn set_header_route(&self, args: SetHeaderArgs) -> BoxFuture<'_, RpcError>;
    fn set_mirror_route(&self, args: SetMirrorArgs) -> BoxFuture<'_, RpcError>;
    fn remove_managed_routes(&self, args: RolloutArgs) -> BoxFuture<'_, RpcError>;
}

/// What the controller reports as applied for one Rollout (its `RolloutTraffic`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AppliedWeights {
    /// Set when the controller found the routing configuration invalid: the cause.
    pub invalid_config: Option<String>,
    /// `metadata.generation` of the Rollout the report was computed from. `None` when the
    /// source does not say; then the report is taken as current.
    pub observed_generation: Option<i64>,
    /// Pod-template hashes the routing is for (empty when not reported): compared with the
    /// Rollout's `status.currentPodHash` and `status.stableRS`.
    pub canary_hash: String,
    pub stable_hash: String,
    /// One entry per weighted place of every configured router.
    pub routers: Vec<RouterWeights>,
}

/// The weights one weighted place (a router, or one route of one routing object) applies now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouterWeights {
    /// Names the place in reasons and logs (`istio VirtualService prod/shop http[primary]`).
    pub router: String,
    pub canary: WeightDestination,
    /// `None` when the place reports only the canary weight (what `RolloutTraffic` carries):
    /// the stable weight then follows from the canary's and is not compared.
    pub stable: Option<WeightDestination>,
    /// `None` when the place does not report experiment destinations: not compared.
    pub additional: Option<Vec<WeightDestination>>,
    /// `Some(false)` while the data plane has not confirmed the weight (ALB target groups).
    pub verified: Option<bool>,
}

/// Where `VerifyWeight` reads applied weights from. The controller backs it with its
/// `RolloutTraffic` reader; `Ok(None)` means nothing is reported for that Rollout yet.
pub trait WeightStatusSource: Send + Sync + 'static {
    fn lookup(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<AppliedWeights>, String>> + Send;
}

/// The handler rollout-router uses: the controller is the only writer of routing objects, so
/// every write call succeeds without writing, and `VerifyWeight` compares what Argo asks for
/// with what the controller reports as applied.
#[derive(Debug, Clone)]
pub struct AcceptAll<S> {
    source: S,
}

impl<S: WeightStatusSource> AcceptAll<S> {
    pub fn new(source: S) -> Self {
        Self { source }
    }
}

impl<S: WeightStatusSource> TrafficRouterHandler for AcceptAll<S> {
    fn init_plugin(&self) -> BoxFuture<'_, RpcError> {
        Box::pin(async { RpcError::ok() })
    }

    fn type_name(&self) -> BoxFuture<'_, String> {
        Box::pin(async { TYPE_NAME.to_owned() })
    }

    fn update_hash(&self, _args: UpdateHashArgs) -> BoxFuture<'_, RpcError> {
        Box::pin(async { RpcError::ok() })
    }

    fn set_weight(&self, _args: SetWeightArgs) -> BoxFuture<'_, RpcError> {
        Box::pin(async { RpcError::ok() })
    }

    fn verify_weight(&self, args: SetWeightArgs) -> BoxFuture<'_, VerifyWeightResponse> {
        Box::pin(async move {
            let key = RolloutKey::of(&args.rollout);
            let applied = self.source.lookup(&key.namespace, &key.name).await;
            verify_weight(&args, applied)
        })
    }

    fn set_header_route(&self, _args: SetHeaderArgs) -> BoxFuture<'_, RpcError> {
        Box::pin(async { RpcError::ok() })
    }

    fn set_mirror_route(&self, _args: SetMirrorArgs) -> BoxFuture<'_, RpcError> {
        Box::pin(async { RpcError::ok() })
    }

    fn remove_managed_routes(&self, _args: RolloutArgs) -> BoxFuture<'_, RpcError> {
        Box::pin(async { RpcError::ok() })
    }
}

/// Namespace and name of a Rollout in Argo's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutKey {
    pub namespace: String,
    pub name: String,
}

impl RolloutKey {
    pub fn of(rollout: &Value) -> RolloutKey {
        let text = |field: &str| {
            rollout
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        RolloutKey {
            namespace: text("namespace"),
            name: text("name"),
        }
    }
}

impl std::fmt::Display for RolloutKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The `VerifyWeight` decision: verified only when the report is about the Rollout's current
/// generation and every weighted place applies exactly the weights (and, where reported, the
/// pod-template hashes) Argo asks for. An invalid configuration is an error naming the cause.
pub fn verify_weight(
    args: &SetWeightArgs,
    applied: Result<Option<AppliedWeights>, String>,
) -> VerifyWeightResponse {
    let key = RolloutKey::of(&args.rollout);
    match weight_check(args, applied) {
        Ok(()) => VerifyWeightResponse {
            verified: RpcVerified::Verified,
            err: RpcError::ok(),
        },
        Err(NotVerified::Pending(reason)) => {
            tracing::info!(rollout = %key, %reason, "weights not applied yet");
            VerifyWeightResponse {
                verified: RpcVerified::NotVerified,
                err: RpcError::ok(),
            }
        }
        Err(NotVerified::Failed(cause)) => VerifyWeightResponse {
            verified: RpcVerified::NotVerified,
            err: RpcError::new(format!("rollout-router: {key}: {cause}")),
        },
    }
}

/// Why a weight is not verified: still converging (Argo re-checks), or an error to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotVerified {
    Pending(String),
    Failed(String),
}

/// [`verify_weight`] without the reply shape.
pub fn weight_check(
    args: &SetWeightArgs,
    applied: Result<Option<AppliedWeights>, String>,
) -> Result<(), NotVerified> {
    let applied = match applied {
        Err(e) => {
            return Err(NotVerified::Failed(format!(
                "cannot read the applied weights: {e}"
            )));
        }
        Ok(None) => {
            return Err(NotVerified::Pending(
                "the controller reports nothing for this Rollout yet".into(),
            ));
        }
        Ok(Some(applied)) => applied,
    };
    let generation = args
        .rollout
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    // A report about an older generation says nothing about the one Argo asks for: not even
    // its InvalidConfig (the user may have fixed the configuration since).
    if let (Some(observed), Some(generation)) = (applied.observed_generation, generation)
        && observed < generation
    {
        return Err(NotVerified::Pending(format!(
            "the controller has observed generation {observed}, not {generation} yet"
        )));
    }
    if let Some(cause) = applied.invalid_config {
        return Err(NotVerified::Failed(format!(
            "the traffic configuration is invalid: {cause}"
        )));
    }
    if applied.routers.is_empty() {
        return Err(NotVerified::Pending(
            "no router reports a weight yet".into(),
        ));
    }
    let expected = Expected::of(args);
    if hash_differs(&applied.canary_hash, &expected.canary_hash) {
        return Err(NotVerified::Pending(format!(
            "routing is for canary hash {} (want {})",
            applied.canary_hash, expected.canary_hash
        )));
    }
    if hash_differs(&applied.stable_hash, &expected.stable_hash) {
        return Err(NotVerified::Pending(format!(
            "routing is for stable hash {} (want {})",
            applied.stable_hash, expected.stable_hash
        )));
    }
    match applied.routers.iter().find_map(|r| expected.mismatch(r)) {
        None => Ok(()),
        Some(reason) => Err(NotVerified::Pending(reason)),
    }
}

/// What Argo asks for, completed from the Rollout: stable gets the rest of the total.
struct Expected {
    canary: i64,
    stable: i64,
    canary_hash: String,
    stable_hash: String,
    additional: Vec<WeightDestination>,
}

impl Expected {
    fn of(args: &SetWeightArgs) -> Expected {
        let rollout = &args.rollout;
        let total = rollout
            .pointer("/spec/strategy/canary/trafficRouting/maxTrafficWeight")
            .and_then(Value::as_i64)
            .filter(|total| *total > 0)
            .unwrap_or(100);
        let additional: i64 = args
            .additional_destinations
            .iter()
            .map(|d| i64::from(d.weight))
            .sum();
        let status = |field: &str| {
            rollout
                .pointer(&format!("/status/{field}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Expected {
            canary: i64::from(args.desired_weight),
            stable: total - i64::from(args.desired_weight) - additional,
            canary_hash: status("currentPodHash"),
            stable_hash: status("stableRS"),
            additional: args.additional_destinations.clone(),
        }
    }

    fn mismatch(&self, router: &RouterWeights) -> Option<String> {
        let name = &router.router;
        if i64::from(router.canary.weight) != self.canary {
            return Some(format!(
                "{name}: canary weight {} (want {})",
                router.canary.weight, self.canary
            ));
        }
        if hash_differs(&router.canary.pod_template_hash, &self.canary_hash) {
            return Some(format!(
                "{name}: canary hash {} (want {})",
                router.canary.pod_template_hash, self.canary_hash
            ));
        }
        if let Some(stable) = &router.stable {
            if i64::from(stable.weight) != self.stable {
                return Some(format!(
                    "{name}: stable weight {} (want {})",
                    stable.weight, self.stable
                ));
            }
            if hash_differs(&stable.pod_template_hash, &self.stable_hash) {
                return Some(format!(
                    "{name}: stable hash {} (want {})",
                    stable.pod_template_hash, self.stable_hash
                ));
            }
        }
        if let Some(additional) = &router.additional
            && let Some(reason) = self.additional_mismatch(additional)
        {
            return Some(format!("{name}: {reason}"));
        }
        (router.verified == Some(false))
            .then(|| format!("{name}: the data plane has not confirmed the weight yet"))
    }

    fn additional_mismatch(&self, have: &[WeightDestination]) -> Option<String> {
        for want in &self.additional {
            let found = have.iter().find(|have| {
                (!want.service_name.is_empty() && have.service_name == want.service_name)
                    || (!want.pod_template_hash.is_empty()
                        && have.pod_template_hash == want.pod_template_hash)
            });
            match found {
                None => {
                    return Some(format!(
                        "no weight for experiment destination {}",
                        want.service_name
                    ));
                }
                Some(have)
                    if have.weight != want.weight
                        || hash_differs(&have.pod_template_hash, &want.pod_template_hash) =>
                {
                    return Some(format!(
                        "experiment destination {} at {} (want {})",
                        want.service_name, have.weight, want.weight
                    ));
                }
                Some(_) => {}
            }
        }
        let extra = have.iter().filter(|have| have.weight != 0).count()
            > self.additional.iter().filter(|w| w.weight != 0).count();
        extra.then(|| "weighted destinations Argo no longer asks for".to_owned())
    }
}

/// Hashes are compared only where both sides name one (service-level routers report none).
fn hash_differs(have: &str, want: &str) -> bool {
    !have.is_empty() && !want.is_empty() && have != want
}

/// go-plugin's `Control` and `Dispenser` services (control stream).
pub struct ControlService {
    dispensed: Arc<BrokerIds>,
}

/// Broker ids handed out by `Dispense` and not yet claimed by a broker stream.
#[derive(Debug, Default)]
pub struct BrokerIds {
    state: Mutex<BrokerState>,
}

#[derive(Debug, Default)]
struct BrokerState {
    next: u32,
    pending: HashSet<u32>,
}

impl BrokerIds {
    fn allocate(&self) -> u32 {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.next = state.next.wrapping_add(1).max(1);
        let id = state.next;
        state.pending.insert(id);
        id
    }

    /// Claims `id` for a broker stream: true once per dispensed id.
    pub fn claim(&self, id: u32) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pending
            .remove(&id)
    }
}

impl ControlService {
    pub fn new(dispensed: Arc<BrokerIds>) -> Self {
        Self { dispensed }
    }
}

fn empty_struct() -> Reply {
    Reply {
        ty: TypeDesc::structure("", vec![]),
        value: GobValue::Struct(GobStruct::new("")),
    }
}

impl RpcDispatch for ControlService {
    fn has_service(&self, service: &str) -> bool {
        matches!(service, "Control" | "Dispenser")
    }

    fn call<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
        body: GobValue,
    ) -> BoxFuture<'a, CallResult> {
        Box::pin(async move {
            match (service, method) {
                ("Control", "Ping") => CallResult::reply(empty_struct()),
                ("Control", "Quit") => {
                    tracing::info!("Control.Quit: shutting down");
                    CallResult {
                        outcome: Ok(empty_struct()),
                        quit: true,
                    }
                }
                ("Dispenser", "Dispense") => match body.as_str() {
                    Some(PLUGIN_NAME) => {
                        let id = self.dispensed.allocate();
                        tracing::debug!(id, "dispensed {PLUGIN_NAME}");
                        CallResult::reply(Reply {
                            ty: TypeDesc::Uint,
                            value: GobValue::Uint(u64::from(id)),
                        })
                    }
                    Some(other) => CallResult::error(format!("unknown plugin type: {other}")),
                    None => CallResult::error("unknown plugin type: (not a string)"),
                },
                _ => CallResult::error(format!("rpc: can't find method {service}.{method}")),
            }
        })
    }
}

/// Argo's traffic-router service (`Plugin.*`, broker streams).
pub struct PluginService {
    handler: Arc<dyn TrafficRouterHandler>,
    timeout: Duration,
}

impl PluginService {
    pub fn new(handler: Arc<dyn TrafficRouterHandler>) -> Self {
        Self {
            handler,
            timeout: CALL_TIMEOUT,
        }
    }

    async fn bounded<T>(&self, method: &str, work: BoxFuture<'_, T>) -> Result<T, String> {
        tokio::time::timeout(self.timeout, work).await.map_err(|_| {
            format!(
                "rollout-router: {method} timed out after {:?}",
                self.timeout
            )
        })
    }

    async fn dispatch(&self, method: &str, body: GobValue) -> CallResult {
        let h = &self.handler;
        match method {
            "InitPlugin" => {
                let result = self.bounded(method, h.init_plugin()).await;
                log_outcome(
                    method,
                    None,
                    &result.as_ref().map(|e| e.error_string.as_str()),
                );
                rpc_error_result(result)
            }
            "Type" => match self.bounded(method, h.type_name()).await {
                Ok(name) => CallResult::reply(string_reply(&name)),
                Err(e) => CallResult::error(e),
            },
            _ => {
                let args = match PluginArgs::from_gob(&body) {
                    Ok(args) => args,
                    Err(e) => {
                        tracing::warn!(method, error = %e, "rejected a call");
                        return CallResult::error(e.to_string());
                    }
                };
                let key = RolloutKey::of(args.rollout());
                let result = self.call_with_args(method, args).await;
                if let Ok(reply) = &result.outcome {
                    log_reply(method, &key, reply);
                } else if let Err(e) = &result.outcome {
                    tracing::warn!(method, rollout = %key, error = %e, "call failed");
                }
                result
            }
        }
    }

    async fn call_with_args(&self, method: &str, args: PluginArgs) -> CallResult {
        let h = &self.handler;
        let wrong = |args: &PluginArgs| {
            CallResult::error(format!("invalid args {} for {method}", kind_name(args)))
        };
        match (method, args) {
            ("UpdateHash", PluginArgs::UpdateHash(a)) => {
                rpc_error_result(self.bounded(method, h.update_hash(a)).await)
            }
            ("SetWeight", PluginArgs::SetWeightAndVerifyWeight(a)) => {
                rpc_error_result(self.bounded(method, h.set_weight(a)).await)
            }
            ("VerifyWeight", PluginArgs::SetWeightAndVerifyWeight(a)) => {
                let response = self
                    .bounded(method, h.verify_weight(a))
                    .await
                    .unwrap_or_else(|e| VerifyWeightResponse {
                        verified: RpcVerified::NotVerified,
                        err: RpcError::new(e),
                    });
                CallResult::reply(response.reply())
            }
            ("SetHeaderRoute", PluginArgs::SetHeader(a)) => {
                rpc_error_result(self.bounded(method, h.set_header_route(a)).await)
            }
            ("SetMirrorRoute", PluginArgs::SetMirror(a)) => {
                rpc_error_result(self.bounded(method, h.set_mirror_route(a)).await)
            }
            ("RemoveManagedRoutes", PluginArgs::RemoveManagedRoutes(a)) => {
                rpc_error_result(self.bounded(method, h.remove_managed_routes(a)).await)
            }
            // Newer Argo versions ask for a weight-update delay; rollout-router never delays.
            ("GetWeightUpdateDeadline", PluginArgs::GetWeightUpdateDeadline(_)) => {
                CallResult::reply(weight_update_deadline_reply(&RpcError::ok()))
            }
            ("ClearWeightUpdateDeadline", PluginArgs::ClearWeightUpdateDeadline(_)) => {
                CallResult::reply(RpcError::ok().reply())
            }
            (
                "UpdateHash"
                | "SetWeight"
                | "VerifyWeight"
                | "SetHeaderRoute"
                | "SetMirrorRoute"
                | "RemoveManagedRoutes"
                | "GetWeightUpdateDeadline"
                | "ClearWeightUpdateDeadline",
                args,
            ) => wrong(&args),
            (other, _) => CallResult::error(format!("rpc: can't find method Plugin.{other}")),
        }
    }
}

fn kind_name(args: &PluginArgs) -> &'static str {
    use crate::rpc_types::registered::*;
    match args {
        PluginArgs::UpdateHash(_) => UPDATE_HASH,
        PluginArgs::SetWeightAndVerifyWeight(_) => SET_WEIGHT_AND_VERIFY,
        PluginArgs::SetHeader(_) => SET_HEADER,
        PluginArgs::SetMirror(_) => SET_MIRROR,
        PluginArgs::RemoveManagedRoutes(_) => REMOVE_MANAGED_ROUTES,
        PluginArgs::GetWeightUpdateDeadline(_) => GET_WEIGHT_UPDATE_DEADLINE,
        PluginArgs::ClearWeightUpdateDeadline(_) => CLEAR_WEIGHT_UPDATE_DEADLINE,
    }
}

fn rpc_error_result(result: Result<RpcError, String>) -> CallResult {
    match result {
        Ok(err) => CallResult::reply(err.reply()),
        Err(timeout) => CallResult::reply(RpcError::new(timeout).reply()),
    }
}

fn log_outcome(method: &str, key: Option<&RolloutKey>, outcome: &Result<&str, &String>) {
    let rollout = key.map(ToString::to_string).unwrap_or_default();
    match outcome {
        Ok("") => tracing::info!(method, rollout, "ok"),
        Ok(error) => tracing::warn!(method, rollout, error, "failed"),
        Err(error) => tracing::warn!(method, rollout, %error, "failed"),
    }
}

/// Logs a reply with the Rollout and its outcome (the issue asks for every call).
fn log_reply(method: &str, key: &RolloutKey, reply: &Reply) {
    let fields = reply.value.as_struct();
    let error = fields
        .and_then(|s| s.field("ErrorString").or_else(|| s.field("Err")))
        .and_then(|v| match v {
            GobValue::String(s) => Some(s.as_str()),
            GobValue::Struct(inner) => inner.field("ErrorString").and_then(GobValue::as_str),
            _ => None,
        })
        .unwrap_or_default();
    let verified = fields
        .and_then(|s| s.field("Verified"))
        .and_then(GobValue::as_i64);
    match (error, verified) {
        ("", Some(v)) => tracing::info!(method, rollout = %key, verified = v, "ok"),
        ("", None) => tracing::info!(method, rollout = %key, "ok"),
        (error, _) => tracing::warn!(method, rollout = %key, error, "answered with an error"),
    }
}

impl RpcDispatch for PluginService {
    fn has_service(&self, service: &str) -> bool {
        service == "Plugin"
    }

    fn call<'a>(
        &'a self,
        _service: &'a str,
        method: &'a str,
        body: GobValue,
    ) -> BoxFuture<'a, CallResult> {
        Box::pin(self.dispatch(method, body))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(desired: i32, additional: Vec<WeightDestination>) -> SetWeightArgs {
        SetWeightArgs {
            rollout: json!({
                "metadata": {"namespace": "prod", "name": "shop", "generation": 3},
                "spec": {"strategy": {"canary": {"trafficRouting": {"maxTrafficWeight": 100}}}},
                "status": {"currentPodHash": "c1", "stableRS": "s1"},
            }),
            desired_weight: desired,
            additional_destinations: additional,
        }
    }

    fn place(name: &str, canary: i32) -> RouterWeights {
        RouterWeights {
            router: name.into(),
            canary: WeightDestination {
                weight: canary,
                ..WeightDestination::default()
            },
            ..RouterWeights::default()
        }
    }

    fn report(places: Vec<RouterWeights>) -> AppliedWeights {
        AppliedWeights {
            observed_generation: Some(3),
            canary_hash: "c1".into(),
            stable_hash: "s1".into(),
            routers: places,
            ..AppliedWeights::default()
        }
    }

    fn experiment(weight: i32) -> WeightDestination {
        WeightDestination {
            weight,
            service_name: "shop-exp".into(),
            pod_template_hash: "e1".into(),
        }
    }

    fn pending(check: Result<(), NotVerified>) -> String {
        match check {
            Err(NotVerified::Pending(reason)) => reason,
            other => panic!("expected pending, got {other:?}"),
        }
    }

    #[test]
    fn verified_when_every_place_applies_the_weight() {
        let applied = report(vec![place("a", 20), place("b", 20)]);
        assert_eq!(weight_check(&args(20, vec![]), Ok(Some(applied))), Ok(()));
    }

    #[test]
    fn one_place_behind_is_not_verified_and_named() {
        let applied = report(vec![place("a", 20), place("b", 10)]);
        let reason = pending(weight_check(&args(20, vec![]), Ok(Some(applied))));
        assert_eq!(reason, "b: canary weight 10 (want 20)");
    }

    #[test]
    fn nothing_reported_is_not_verified_without_error() {
        let reply = verify_weight(&args(20, vec![]), Ok(None));
        assert_eq!(reply.verified, RpcVerified::NotVerified);
        assert_eq!(reply.err, RpcError::ok());
        assert!(
            pending(weight_check(&args(20, vec![]), Ok(Some(report(vec![])))))
                .contains("no router")
        );
    }

    #[test]
    fn an_older_generation_is_not_verified_even_with_matching_weights() {
        let mut applied = report(vec![place("a", 20)]);
        applied.observed_generation = Some(2);
        applied.invalid_config = Some("stale".into());
        let reason = pending(weight_check(&args(20, vec![]), Ok(Some(applied))));
        assert!(reason.contains("generation 2, not 3"), "{reason}");
    }

    #[test]
    fn invalid_config_is_an_error_naming_the_cause() {
        let mut applied = report(vec![place("a", 20)]);
        applied.invalid_config = Some("VirtualService prod/shop has no route primary".into());
        let reply = verify_weight(&args(20, vec![]), Ok(Some(applied)));
        assert_eq!(reply.verified, RpcVerified::NotVerified);
        assert_eq!(
            reply.err.error_string,
            "rollout-router: prod/shop: the traffic configuration is invalid: \
             VirtualService prod/shop has no route primary"
        );
    }

    #[test]
    fn read_errors_are_errors() {
        let reply = verify_weight(&args(20, vec![]), Err("forbidden".into()));
        assert_eq!(reply.verified, RpcVerified::NotVerified);
        assert!(reply.err.error_string.contains("forbidden"));
    }

    #[test]
    fn hashes_must_match_where_reported() {
        let mut applied = report(vec![place("a", 20)]);
        applied.canary_hash = "old".into();
        let reason = pending(weight_check(&args(20, vec![]), Ok(Some(applied.clone()))));
        assert_eq!(reason, "routing is for canary hash old (want c1)");
        applied.canary_hash = String::new();
        assert_eq!(weight_check(&args(20, vec![]), Ok(Some(applied))), Ok(()));
    }

    #[test]
    fn unconfirmed_data_plane_is_not_verified() {
        let mut unconfirmed = place("alb", 20);
        unconfirmed.verified = Some(false);
        let reason = pending(weight_check(
            &args(20, vec![]),
            Ok(Some(report(vec![unconfirmed]))),
        ));
        assert!(reason.contains("not confirmed"), "{reason}");
    }

    #[test]
    fn stable_and_experiments_are_compared_only_where_reported() {
        let ask = args(20, vec![experiment(10)]);
        // Canary-only places (RolloutTraffic): the experiment cannot be compared.
        assert_eq!(
            weight_check(&ask, Ok(Some(report(vec![place("a", 20)])))),
            Ok(())
        );
        let mut full = place("a", 20);
        full.stable = Some(WeightDestination {
            weight: 80,
            pod_template_hash: "s1".into(),
            ..WeightDestination::default()
        });
        full.additional = Some(vec![]);
        let reason = pending(weight_check(&ask, Ok(Some(report(vec![full.clone()])))));
        assert_eq!(reason, "a: stable weight 80 (want 70)");
        full.stable = Some(WeightDestination {
            weight: 70,
            ..WeightDestination::default()
        });
        let reason = pending(weight_check(&ask, Ok(Some(report(vec![full.clone()])))));
        assert_eq!(reason, "a: no weight for experiment destination shop-exp");
        full.additional = Some(vec![experiment(5)]);
        let reason = pending(weight_check(&ask, Ok(Some(report(vec![full.clone()])))));
        assert_eq!(reason, "a: experiment destination shop-exp at 5 (want 10)");
        full.additional = Some(vec![experiment(10)]);
        assert_eq!(weight_check(&ask, Ok(Some(report(vec![full])))), Ok(()));
    }
}
