//! Reading back what the canary Ingresses apply: the weight ingress-nginx sends to the canary
//! Service, one entry per canary Ingress.

use rollout_router_core::{
    DesiredTraffic, NginxConfig, ObjectKey, ObservedWeights, RouterError, WeightDestination,
};
use serde_json::Value;

use crate::annotations::{
    CANARY_BY_HEADER, CANARY_WEIGHT, CANARY_WEIGHT_TOTAL, HEADER_ROUTE, prefixed,
};
use crate::canary_ingress::check_owned;
use crate::ingress;
use crate::plan::{DEFAULT_WEIGHT_TOTAL, ingress_pairs};

/// One entry per configured stable Ingress, for its canary Ingress.
///
/// Weights are read from `canary-weight` (absent: 0, as ingress-nginx) and are shares of
/// `canary-weight-total` (absent: 100); the stable weight is the rest. An absent canary Ingress
/// sends nothing to the canary. Service names and pod-template hashes are the desired ones: a
/// canary Ingress routes by Service, and which pods a Service selects is not its business.
/// `verified` stays `None`: ingress-nginx cannot be asked.
pub fn observe(
    config: &NginxConfig,
    desired: &DesiredTraffic,
    objects: &rollout_router_core::ObjectSet,
) -> Result<Vec<ObservedWeights>, RouterError> {
    let prefix = config.annotation_prefix();
    ingress_pairs(config, &desired.rollout)
        .into_iter()
        .map(|pair| {
            let (weight, total, managed_routes) = match objects.get(&pair.canary) {
                None => (0, desired.total, Vec::new()),
                Some(object) => {
                    check_owned(&pair.canary, object, &desired.rollout)?;
                    let total =
                        number(&pair.canary, object, &prefixed(prefix, CANARY_WEIGHT_TOTAL))?
                            .unwrap_or(DEFAULT_WEIGHT_TOTAL);
                    let weight = number(&pair.canary, object, &prefixed(prefix, CANARY_WEIGHT))?
                        .unwrap_or(0);
                    if total <= 0 || weight > total {
                        return Err(RouterError::invalid_object(
                            &pair.canary,
                            format!("metadata.annotations[{}]", prefixed(prefix, CANARY_WEIGHT)),
                            format!("weight {weight} is not a share of total {total}"),
                        ));
                    }
                    let header_programmed =
                        ingress::annotation(object, &prefixed(prefix, CANARY_BY_HEADER)).is_some();
                    let routes = ingress::annotation(object, HEADER_ROUTE)
                        .filter(|_| header_programmed)
                        .map(|r| vec![r.to_owned()])
                        .unwrap_or_default();
                    (weight, total, routes)
                }
            };
            Ok(ObservedWeights {
                object: pair.canary,
                location: String::new(),
                canary: WeightDestination {
                    weight,
                    ..desired.canary.clone()
                },
                stable: WeightDestination {
                    weight: total - weight,
                    ..desired.stable.clone()
                },
                additional: Vec::new(),
                verified: None,
                managed_routes,
            })
        })
        .collect()
}

/// A non-negative integer annotation; `None` when absent.
fn number(key: &ObjectKey, object: &Value, annotation: &str) -> Result<Option<i32>, RouterError> {
    let Some(text) = ingress::annotation(object, annotation) else {
        return Ok(None);
    };
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .map(Some)
        .ok_or_else(|| {
            RouterError::invalid_object(
                key,
                format!("metadata.annotations[{annotation}]"),
                format!("`{text}` is not a non-negative integer"),
            )
        })
}
