//! The traffic-router RPC types, as Argo's `rollout/trafficrouting/plugin/rpc/rpc.go` and
//! `utils/plugin/types/types.go` define them: decoded arguments (the Rollout as Argo's JSON) and
//! the replies with their gob shapes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::go_json;
use crate::gob::{EncoderKind, GobStruct, GobValue, TypeDesc};
use crate::netrpc::Reply;

/// Names Argo registers its argument types under (`gob.RegisterName`).
pub mod registered {
    pub const UPDATE_HASH: &str = "UpdateHashArgs";
    pub const SET_WEIGHT_AND_VERIFY: &str = "SetWeightAndVerifyWeightArgs";
    pub const SET_HEADER: &str = "SetHeaderArgs";
    pub const SET_MIRROR: &str = "SetMirrorArgs";
    pub const REMOVE_MANAGED_ROUTES: &str = "RemoveManagedRoutesArgs";
    pub const GET_WEIGHT_UPDATE_DEADLINE: &str = "GetWeightUpdateDeadlineArgs";
    pub const CLEAR_WEIGHT_UPDATE_DEADLINE: &str = "ClearWeightUpdateDeadlineArgs";
}

/// `v1alpha1.WeightDestination`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WeightDestination {
    pub weight: i32,
    pub service_name: String,
    pub pod_template_hash: String,
}

/// `v1alpha1.StringMatch`: empty strings count as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StringMatch {
    pub exact: String,
    pub prefix: String,
    pub regex: String,
}

/// `v1alpha1.HeaderRoutingMatch`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeaderRoutingMatch {
    pub header_name: String,
    pub header_value: Option<StringMatch>,
}

/// `v1alpha1.SetHeaderRoute`: no `match` means "remove this managed route".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SetHeaderRoute {
    pub name: String,
    #[serde(rename = "match")]
    pub matches: Vec<HeaderRoutingMatch>,
}

/// `v1alpha1.RouteMatch`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteMatch {
    pub method: Option<StringMatch>,
    pub path: Option<StringMatch>,
    pub headers: std::collections::BTreeMap<String, StringMatch>,
}

/// `v1alpha1.SetMirrorRoute`. `percentage: None` is nil *or* 0 on the wire (spec 50 §6.8).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SetMirrorRoute {
    pub name: String,
    #[serde(rename = "match")]
    pub matches: Vec<RouteMatch>,
    pub percentage: Option<i32>,
}

/// `UpdateHashArgs`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateHashArgs {
    pub rollout: Value,
    pub canary_hash: String,
    pub stable_hash: String,
    pub additional_destinations: Vec<WeightDestination>,
}

/// `SetWeightAndVerifyWeightArgs` (both `SetWeight` and `VerifyWeight`).
#[derive(Debug, Clone, PartialEq)]
pub struct SetWeightArgs {
    pub rollout: Value,
    pub desired_weight: i32,
    pub additional_destinations: Vec<WeightDestination>,
}

/// `SetHeaderArgs`.
#[derive(Debug, Clone, PartialEq)]
pub struct SetHeaderArgs {
    pub rollout: Value,
    pub set_header_route: SetHeaderRoute,
}

/// `SetMirrorArgs`.
#[derive(Debug, Clone, PartialEq)]
pub struct SetMirrorArgs {
    pub rollout: Value,
    pub set_mirror_route: SetMirrorRoute,
}

/// `RemoveManagedRoutesArgs` (also the shape of the two weight-update-deadline arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutArgs {
    pub rollout: Value,
}

/// Every argument Argo sends, by registered name.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginArgs {
    UpdateHash(UpdateHashArgs),
    SetWeightAndVerifyWeight(SetWeightArgs),
    SetHeader(SetHeaderArgs),
    SetMirror(SetMirrorArgs),
    RemoveManagedRoutes(RolloutArgs),
    GetWeightUpdateDeadline(RolloutArgs),
    ClearWeightUpdateDeadline(RolloutArgs),
}

/// Why an argument could not be turned into [`PluginArgs`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("invalid args: expected an interface value, got {0}")]
    NotAnInterface(String),
    #[error("invalid args: nil")]
    Nil,
    #[error("invalid args: unknown argument type {0:?}")]
    UnknownType(String),
    #[error("invalid args: {type_name} is not a struct")]
    NotAStruct { type_name: String },
    #[error("invalid args: {type_name}.{field}: {message}")]
    Field {
        type_name: String,
        field: String,
        message: String,
    },
}

impl PluginArgs {
    /// Decodes the interface value Argo passes as the argument.
    pub fn from_gob(body: &GobValue) -> Result<PluginArgs, ArgsError> {
        let GobValue::Interface(inner) = body else {
            return Err(ArgsError::NotAnInterface(short_kind(body)));
        };
        let Some(inner) = inner.as_deref() else {
            return Err(ArgsError::Nil);
        };
        let (name, value) = (inner.0.as_str(), &inner.1);
        let fields = Fields::new(name, value)?;
        Ok(match name {
            registered::UPDATE_HASH => PluginArgs::UpdateHash(UpdateHashArgs {
                rollout: fields.rollout(),
                canary_hash: fields.string("CanaryHash")?,
                stable_hash: fields.string("StableHash")?,
                additional_destinations: fields.typed("AdditionalDestinations")?,
            }),
            registered::SET_WEIGHT_AND_VERIFY => {
                PluginArgs::SetWeightAndVerifyWeight(SetWeightArgs {
                    rollout: fields.rollout(),
                    desired_weight: fields.typed::<Option<i32>>("DesiredWeight")?.unwrap_or(0),
                    additional_destinations: fields.typed("AdditionalDestinations")?,
                })
            }
            registered::SET_HEADER => PluginArgs::SetHeader(SetHeaderArgs {
                rollout: fields.rollout(),
                set_header_route: fields.typed("SetHeaderRoute")?,
            }),
            registered::SET_MIRROR => PluginArgs::SetMirror(SetMirrorArgs {
                rollout: fields.rollout(),
                set_mirror_route: fields.typed("SetMirrorRoute")?,
            }),
            registered::REMOVE_MANAGED_ROUTES => PluginArgs::RemoveManagedRoutes(RolloutArgs {
                rollout: fields.rollout(),
            }),
            registered::GET_WEIGHT_UPDATE_DEADLINE => {
                PluginArgs::GetWeightUpdateDeadline(RolloutArgs {
                    rollout: fields.rollout(),
                })
            }
            registered::CLEAR_WEIGHT_UPDATE_DEADLINE => {
                PluginArgs::ClearWeightUpdateDeadline(RolloutArgs {
                    rollout: fields.rollout(),
                })
            }
            other => return Err(ArgsError::UnknownType(other.to_owned())),
        })
    }

    /// The Rollout every argument carries.
    pub fn rollout(&self) -> &Value {
        match self {
            PluginArgs::UpdateHash(a) => &a.rollout,
            PluginArgs::SetWeightAndVerifyWeight(a) => &a.rollout,
            PluginArgs::SetHeader(a) => &a.rollout,
            PluginArgs::SetMirror(a) => &a.rollout,
            PluginArgs::RemoveManagedRoutes(a)
            | PluginArgs::GetWeightUpdateDeadline(a)
            | PluginArgs::ClearWeightUpdateDeadline(a) => &a.rollout,
        }
    }
}

fn short_kind(value: &GobValue) -> String {
    let text = format!("{value:?}");
    text.chars().take(80).collect()
}

/// The fields of an argument struct, read by Go field name.
struct Fields<'a> {
    type_name: &'a str,
    value: &'a GobStruct,
}

impl<'a> Fields<'a> {
    fn new(type_name: &'a str, value: &'a GobValue) -> Result<Self, ArgsError> {
        let value = value.as_struct().ok_or_else(|| ArgsError::NotAStruct {
            type_name: type_name.to_owned(),
        })?;
        Ok(Self { type_name, value })
    }

    fn error(&self, field: &str, message: impl Into<String>) -> ArgsError {
        ArgsError::Field {
            type_name: self.type_name.to_owned(),
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The Rollout as Argo's JSON; an absent Rollout (all zero) is an empty object.
    fn rollout(&self) -> Value {
        self.value
            .field("Rollout")
            .map(go_json::to_json)
            .unwrap_or_else(|| Value::Object(Default::default()))
    }

    fn string(&self, field: &str) -> Result<String, ArgsError> {
        match self.value.field(field) {
            None => Ok(String::new()),
            Some(GobValue::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.error(
                field,
                format!("expected a string, got {}", short_kind(other)),
            )),
        }
    }

    /// Converts through Argo's JSON, so typed fields share the Rollout's naming rules.
    fn typed<T: serde::de::DeserializeOwned + Default>(&self, field: &str) -> Result<T, ArgsError> {
        match self.value.field(field) {
            None => Ok(T::default()),
            Some(value) => serde_json::from_value(go_json::to_json(value))
                .map_err(|e| self.error(field, e.to_string())),
        }
    }
}

/// `types.RpcError`: empty means success.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpcError {
    pub error_string: String,
}

impl RpcError {
    pub fn ok() -> Self {
        Self::default()
    }

    pub fn new(message: impl Into<String>) -> Self {
        Self {
            error_string: message.into(),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.error_string.is_empty()
    }

    pub fn gob_type() -> TypeDesc {
        TypeDesc::structure("RpcError", vec![("ErrorString", TypeDesc::String)])
    }

    fn to_gob(&self) -> GobValue {
        GobValue::Struct(
            GobStruct::new("RpcError")
                .with("ErrorString", GobValue::String(self.error_string.clone())),
        )
    }

    pub fn reply(&self) -> Reply {
        Reply {
            ty: Self::gob_type(),
            value: self.to_gob(),
        }
    }
}

/// `types.RpcVerified`: travels as a signed int.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcVerified {
    NotVerified = 0,
    Verified = 1,
    NotImplemented = 2,
}

/// `VerifyWeightResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyWeightResponse {
    pub verified: RpcVerified,
    pub err: RpcError,
}

impl VerifyWeightResponse {
    pub fn gob_type() -> TypeDesc {
        TypeDesc::structure(
            "VerifyWeightResponse",
            vec![("Verified", TypeDesc::Int), ("Err", RpcError::gob_type())],
        )
    }

    pub fn reply(&self) -> Reply {
        Reply {
            ty: Self::gob_type(),
            value: GobValue::Struct(
                GobStruct::new("VerifyWeightResponse")
                    .with("Verified", GobValue::Int(self.verified as i64))
                    .with("Err", self.err.to_gob()),
            ),
        }
    }
}

/// `WeightUpdateDeadlineResponse{Deadline *time.Time; Err}`: we never delay weight updates,
/// so `Deadline` is always nil (omitted).
pub fn weight_update_deadline_reply(err: &RpcError) -> Reply {
    Reply {
        ty: TypeDesc::structure(
            "WeightUpdateDeadlineResponse",
            vec![
                (
                    "Deadline",
                    TypeDesc::Encoded {
                        name: "Time".into(),
                        kind: EncoderKind::GobEncoder,
                    },
                ),
                ("Err", RpcError::gob_type()),
            ],
        ),
        value: GobValue::Struct(
            GobStruct::new("WeightUpdateDeadlineResponse").with("Err", err.to_gob()),
        ),
    }
}

/// A top-level string reply (`Plugin.Type`).
pub fn string_reply(s: &str) -> Reply {
    Reply {
        ty: TypeDesc::String,
        value: GobValue::String(s.to_owned()),
    }
}
