//! The AWS Load Balancer Controller `forward` action written to `<prefix>/actions.<name>`: a typed
//! value, its exact serialization (spec 30 §2.2) and a tolerant reader for what is on the object.

use serde_json::Value;

use crate::go_json::{write_key, write_string};

/// Bounds AWS accepts for target-group stickiness (spec 30 §2.2, Argo #1577).
pub const STICKINESS_MIN_SECONDS: i64 = 1;
pub const STICKINESS_MAX_SECONDS: i64 = 604_800;

/// One `TargetGroups` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroup {
    /// Omitted from the JSON when empty (Argo #4890: an experiment Service name can be briefly
    /// empty).
    pub service_name: String,
    /// `servicePort` rendered as a decimal string; LBC also accepts port names here.
    pub service_port: String,
    pub weight: i64,
}

/// `TargetGroupStickinessConfig`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stickiness {
    pub enabled: bool,
    pub duration_seconds: i64,
}

/// A `{"Type":"forward","ForwardConfig":{...}}` action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardAction {
    pub target_groups: Vec<TargetGroup>,
    pub stickiness: Option<Stickiness>,
}

impl ForwardAction {
    /// The annotation value: compact JSON, keys in the order Argo's Go structs declare them,
    /// `ServicePort` as a string, `Weight` always present (also `0`, Argo #493).
    pub fn to_annotation(&self) -> String {
        let mut out = String::with_capacity(64 + 64 * self.target_groups.len());
        out.push('{');
        write_key(&mut out, "Type");
        write_string(&mut out, "forward");
        out.push(',');
        write_key(&mut out, "ForwardConfig");
        out.push('{');
        write_key(&mut out, "TargetGroups");
        out.push('[');
        for (i, tg) in self.target_groups.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            if !tg.service_name.is_empty() {
                write_key(&mut out, "ServiceName");
                write_string(&mut out, &tg.service_name);
                out.push(',');
            }
            write_key(&mut out, "ServicePort");
            write_string(&mut out, &tg.service_port);
            out.push(',');
            write_key(&mut out, "Weight");
            out.push_str(&tg.weight.to_string());
            out.push('}');
        }
        out.push(']');
        if let Some(s) = &self.stickiness {
            out.push(',');
            write_key(&mut out, "TargetGroupStickinessConfig");
            out.push('{');
            write_key(&mut out, "Enabled");
            out.push_str(if s.enabled { "true" } else { "false" });
            out.push(',');
            write_key(&mut out, "DurationSeconds");
            out.push_str(&s.duration_seconds.to_string());
            out.push('}');
        }
        out.push_str("}}");
        out
    }

    /// Reads an action annotation as the AWS Load Balancer Controller would: keys compared
    /// case-insensitively, `ServicePort` as string or number, `Weight` as number. Errors say what
    /// is wrong, for an `InvalidObject` naming the annotation.
    pub fn parse(annotation: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(annotation).map_err(|e| format!("not valid JSON: {e}"))?;
        let kind = field(&value, "type").and_then(Value::as_str).unwrap_or("");
        if !kind.eq_ignore_ascii_case("forward") {
            return Err(format!("Type is {kind:?}, expected \"forward\""));
        }
        let forward = field(&value, "forwardConfig").ok_or("ForwardConfig is missing")?;
        let groups = field(forward, "targetGroups")
            .and_then(Value::as_array)
            .ok_or("ForwardConfig.TargetGroups is missing or not a list")?;
        let target_groups = groups
            .iter()
            .enumerate()
            .map(|(i, tg)| {
                let service_name = field(tg, "serviceName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let service_port = match field(tg, "servicePort") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                };
                // LBC defaults a missing weight to 0 (Argo #493 relied on that).
                let weight = match field(tg, "weight") {
                    None | Some(Value::Null) => 0,
                    Some(w) => w
                        .as_i64()
                        .ok_or_else(|| format!("TargetGroups[{i}].Weight is not an integer"))?,
                };
                Ok(TargetGroup {
                    service_name,
                    service_port,
                    weight,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let stickiness = field(forward, "targetGroupStickinessConfig").map(|s| Stickiness {
            enabled: field(s, "enabled")
                .and_then(Value::as_bool)
                .unwrap_or_default(),
            duration_seconds: field(s, "durationSeconds")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
        });
        Ok(Self {
            target_groups,
            stickiness,
        })
    }

    /// The weight of the target group for `service`, if the action has one.
    pub fn weight_of(&self, service: &str) -> Option<i64> {
        self.target_groups
            .iter()
            .find(|tg| tg.service_name == service)
            .map(|tg| tg.weight)
    }
}

/// A field of a JSON object, its name compared case-insensitively (LBC's JSON decoding does).
fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    let map = object.as_object()?;
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tg(name: &str, weight: i64) -> TargetGroup {
        TargetGroup {
            service_name: name.into(),
            service_port: "443".into(),
            weight,
        }
    }

    #[test]
    fn serializes_with_stickiness_and_round_trips() {
        let action = ForwardAction {
            target_groups: vec![tg("app-canary", 0), tg("", 10), tg("app-stable", 90)],
            stickiness: Some(Stickiness {
                enabled: true,
                duration_seconds: 3600,
            }),
        };
        let s = action.to_annotation();
        assert_eq!(
            s,
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"app-canary","ServicePort":"443","Weight":0},{"ServicePort":"443","Weight":10},{"ServiceName":"app-stable","ServicePort":"443","Weight":90}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":3600}}}"#
        );
        assert_eq!(ForwardAction::parse(&s).unwrap(), action);
    }

    #[test]
    fn parses_like_lbc() {
        let a = ForwardAction::parse(
            r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":80},{"serviceName":"c","servicePort":"http","weight":5}]}}"#,
        )
        .unwrap();
        assert_eq!(
            a.target_groups,
            [
                TargetGroup {
                    service_name: "s".into(),
                    service_port: "80".into(),
                    weight: 0
                },
                TargetGroup {
                    service_name: "c".into(),
                    service_port: "http".into(),
                    weight: 5
                }
            ]
        );
        assert_eq!(a.weight_of("c"), Some(5));
        assert_eq!(a.weight_of("x"), None);
        for bad in [
            "nope",
            r#"{"Type":"fixed-response"}"#,
            r#"{"Type":"forward"}"#,
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"Weight":"x"}]}}"#,
        ] {
            assert!(ForwardAction::parse(bad).is_err(), "{bad}");
        }
    }
}
