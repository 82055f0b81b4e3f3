//! Match types of Argo's `setHeaderRoute` / `setMirrorRoute` steps, shared by the Rollout model
//! and the routers that program managed routes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Argo `StringMatch`: exactly one of `exact`, `prefix`, `regex` must be set. Empty strings count
/// as unset (spec 00 §1.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StringMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// The one kind of string match a valid [`StringMatch`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchKind<'a> {
    Exact(&'a str),
    Prefix(&'a str),
    Regex(&'a str),
}

impl StringMatch {
    pub fn exact(value: impl Into<String>) -> Self {
        Self {
            exact: Some(value.into()),
            ..Self::default()
        }
    }

    pub fn prefix(value: impl Into<String>) -> Self {
        Self {
            prefix: Some(value.into()),
            ..Self::default()
        }
    }

    pub fn regex(value: impl Into<String>) -> Self {
        Self {
            regex: Some(value.into()),
            ..Self::default()
        }
    }

    /// The set match kind, if exactly one non-empty kind is set.
    pub fn kind(&self) -> Option<MatchKind<'_>> {
        fn set(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        match (set(&self.exact), set(&self.prefix), set(&self.regex)) {
            (Some(v), None, None) => Some(MatchKind::Exact(v)),
            (None, Some(v), None) => Some(MatchKind::Prefix(v)),
            (None, None, Some(v)) => Some(MatchKind::Regex(v)),
            _ => None,
        }
    }

    /// How many kinds are set (non-empty); a valid match has exactly one.
    pub fn kinds_set(&self) -> usize {
        [&self.exact, &self.prefix, &self.regex]
            .into_iter()
            .filter(|v| v.as_deref().is_some_and(|s| !s.is_empty()))
            .count()
    }
}

/// Argo `HeaderRoutingMatch`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderRoutingMatch {
    pub header_name: String,
    /// Argo makes this a pointer; validation rejects it when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_value: Option<StringMatch>,
}

/// Argo `RouteMatch` (mirror routes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<StringMatch>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::serde_util::null_as_default"
    )]
    pub headers: BTreeMap<String, StringMatch>,
}

/// Argo `SetHeaderRoute` step. An empty `match` list means "remove the route" (spec 00 §6.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetHeaderRoute {
    #[serde(default)]
    pub name: String,
    #[serde(
        default,
        rename = "match",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::serde_util::null_as_default"
    )]
    pub matches: Vec<HeaderRoutingMatch>,
}

/// Argo `SetMirrorRoute` step. An empty `match` list means "remove the route".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetMirrorRoute {
    #[serde(default)]
    pub name: String,
    #[serde(
        default,
        rename = "match",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::serde_util::null_as_default"
    )]
    pub matches: Vec<RouteMatch>,
    /// Percentage of matching traffic to mirror; Argo defaults it to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<i32>,
}

impl SetMirrorRoute {
    /// The mirror percentage with Argo's default of 100 applied.
    pub fn percentage_or_default(&self) -> i32 {
        self.percentage.unwrap_or(100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_strings_count_as_unset() {
        let m = StringMatch {
            exact: Some(String::new()),
            prefix: Some("/api".into()),
            regex: None,
        };
        assert_eq!(m.kind(), Some(MatchKind::Prefix("/api")));
        assert_eq!(m.kinds_set(), 1);
        let two = StringMatch {
            exact: Some("a".into()),
            prefix: Some("b".into()),
            regex: None,
        };
        assert_eq!(two.kind(), None);
        assert_eq!(two.kinds_set(), 2);
        assert_eq!(StringMatch::default().kind(), None);
    }

    #[test]
    fn empty_match_list_deserializes_like_absent() {
        let a: SetHeaderRoute = serde_json::from_str(r#"{"name":"h","match":[]}"#).unwrap();
        let b: SetHeaderRoute = serde_json::from_str(r#"{"name":"h"}"#).unwrap();
        let c: SetHeaderRoute = serde_json::from_str(r#"{"name":"h","match":null}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(c, b);
        assert!(a.matches.is_empty());
    }
}
