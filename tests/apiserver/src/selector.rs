//! `labelSelector` and `fieldSelector` query parameters, parsed and matched as
//! k8s.io/apimachinery's `labels.Parse` and `fields.ParseSelector` do (for the fields every
//! resource supports: `metadata.name` and `metadata.namespace`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::Error;
use crate::object;

#[derive(Clone, Debug, PartialEq, Eq)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl LabelRequirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Equals(k, v) => labels.get(k) == Some(v),
            Self::NotEquals(k, v) => labels.get(k) != Some(v),
            Self::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Self::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Self::Exists(k) => labels.contains_key(k),
            Self::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// Splits on commas that are not inside parentheses (`a in (x,y),b`).
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn parse_set(key: &str, rest: &str, raw: &str) -> Result<(String, Vec<String>), Error> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| Error::BadRequest(format!("unable to parse requirement: {raw}")))?;
    let values = inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    Ok((key.to_string(), values))
}

fn parse_label_requirement(raw: &str) -> Result<LabelRequirement, Error> {
    let s = raw.trim();
    if let Some(key) = s.strip_prefix('!') {
        return Ok(LabelRequirement::DoesNotExist(key.trim().to_string()));
    }
    if let Some((k, v)) = s.split_once("!=") {
        return Ok(LabelRequirement::NotEquals(
            k.trim().into(),
            v.trim().into(),
        ));
    }
    if let Some((k, v)) = s.split_once("==") {
        return Ok(LabelRequirement::Equals(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = s.split_once('=') {
        return Ok(LabelRequirement::Equals(k.trim().into(), v.trim().into()));
    }
    let words: Vec<&str> = s.splitn(2, char::is_whitespace).collect();
    match words.as_slice() {
        [key] if !key.is_empty() => Ok(LabelRequirement::Exists((*key).to_string())),
        [key, rest] => {
            let rest = rest.trim_start();
            if let Some(set) = rest.strip_prefix("notin") {
                let (k, vs) = parse_set(key, set, raw)?;
                Ok(LabelRequirement::NotIn(k, vs))
            } else if let Some(set) = rest.strip_prefix("in") {
                let (k, vs) = parse_set(key, set, raw)?;
                Ok(LabelRequirement::In(k, vs))
            } else {
                Err(Error::BadRequest(format!(
                    "unable to parse requirement: {raw}"
                )))
            }
        }
        _ => Err(Error::BadRequest(format!(
            "unable to parse requirement: {raw}"
        ))),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum FieldRequirement {
    Equals(String, String),
    NotEquals(String, String),
}

/// A parsed label selector and field selector, matched together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    labels: Vec<LabelRequirement>,
    fields: Vec<FieldRequirement>,
}

impl Selector {
    pub(crate) fn parse(
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<Self, Error> {
        let mut sel = Selector::default();
        if let Some(ls) = label_selector.filter(|s| !s.trim().is_empty()) {
            for part in split_top_level(ls) {
                sel.labels.push(parse_label_requirement(part)?);
            }
        }
        if let Some(fs) = field_selector.filter(|s| !s.trim().is_empty()) {
            for part in fs.split(',') {
                let req = if let Some((k, v)) = part.split_once("!=") {
                    FieldRequirement::NotEquals(k.trim().into(), v.trim().into())
                } else if let Some((k, v)) = part.split_once("==") {
                    FieldRequirement::Equals(k.trim().into(), v.trim().into())
                } else if let Some((k, v)) = part.split_once('=') {
                    FieldRequirement::Equals(k.trim().into(), v.trim().into())
                } else {
                    return Err(Error::BadRequest(format!(
                        "invalid selector: '{fs}'; can't understand '{part}'"
                    )));
                };
                let key = match &req {
                    FieldRequirement::Equals(k, _) | FieldRequirement::NotEquals(k, _) => k,
                };
                if key != "metadata.name" && key != "metadata.namespace" {
                    return Err(Error::BadRequest(format!(
                        "field label not supported: {key}"
                    )));
                }
                sel.fields.push(req);
            }
        }
        Ok(sel)
    }

    /// Whether the selector has label or field requirements.
    pub(crate) fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        if self.is_empty() {
            return true;
        }
        let labels = object::labels(obj);
        if !self.labels.iter().all(|r| r.matches(&labels)) {
            return false;
        }
        self.fields.iter().all(|r| {
            let field = |k: &str| match k {
                "metadata.name" => object::name(obj).unwrap_or_default().to_string(),
                _ => object::namespace(obj).unwrap_or_default().to_string(),
            };
            match r {
                FieldRequirement::Equals(k, v) => &field(k) == v,
                FieldRequirement::NotEquals(k, v) => &field(k) != v,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_selectors_match_like_apimachinery() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        let m = |s: &str| Selector::parse(Some(s), None).map(|sel| sel.matches(&o));
        assert_eq!(m("app=web").ok(), Some(true));
        assert_eq!(m("app==web,tier=front").ok(), Some(true));
        assert_eq!(m("app!=web").ok(), Some(false));
        assert_eq!(m("app in (api, web)").ok(), Some(true));
        assert_eq!(m("app notin (web)").ok(), Some(false));
        assert_eq!(m("missing notin (web)").ok(), Some(true));
        assert_eq!(m("tier").ok(), Some(true));
        assert_eq!(m("!tier").ok(), Some(false));
        assert_eq!(m("app in (x),tier").ok(), Some(false));
        assert!(m("app in x").is_err());
    }

    #[test]
    fn field_selectors_support_name_and_namespace_only() {
        let o = obj(json!({}));
        let m = |s: &str| Selector::parse(None, Some(s)).map(|sel| sel.matches(&o));
        assert_eq!(m("metadata.name=a").ok(), Some(true));
        assert_eq!(m("metadata.name!=a").ok(), Some(false));
        assert_eq!(m("metadata.namespace==ns,metadata.name=a").ok(), Some(true));
        assert!(m("spec.host=x").is_err());
    }
}
