//! The `<prefix>/conditions.<route>` annotation of a header route (spec 30 §5.1): one
//! `http-header` condition per distinct header name, exact values only.

use rollout_router_core::HeaderRoutingMatch;
use rollout_router_core::matches::MatchKind;

use crate::go_json::{write_key, write_string, write_string_array};

/// Why a match cannot be expressed as an ALB condition: the index of the offending match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotExact {
    pub index: usize,
}

impl NotExact {
    pub fn message(&self) -> String {
        format!(
            "match[{}].headerValue: SetHeaderRoute match value invalid. ALB supports 'exact' value only",
            self.index
        )
    }
}

/// The exact value of every match, or the first match that has no exact value.
pub(crate) fn exact_values(matches: &[HeaderRoutingMatch]) -> Result<Vec<(&str, &str)>, NotExact> {
    matches
        .iter()
        .enumerate()
        .map(
            |(index, m)| match m.header_value.as_ref().and_then(|v| v.kind()) {
                Some(MatchKind::Exact(value)) => Ok((m.header_name.as_str(), value)),
                _ => Err(NotExact { index }),
            },
        )
        .collect()
}

/// The conditions annotation value. Header names are grouped as exact, case-sensitive strings
/// in first-seen order (like Argo); values of one name are ORed by AWS, names are ANDed.
pub fn conditions_annotation(matches: &[HeaderRoutingMatch]) -> Result<String, NotExact> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, value) in exact_values(matches)? {
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => groups.push((name, vec![value])),
        }
    }
    let mut out = String::from("[");
    for (i, (name, values)) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        write_key(&mut out, "field");
        write_string(&mut out, "http-header");
        out.push(',');
        write_key(&mut out, "httpHeaderConfig");
        out.push('{');
        write_key(&mut out, "httpHeaderName");
        write_string(&mut out, name);
        out.push(',');
        write_key(&mut out, "values");
        write_string_array(&mut out, values.iter().copied());
        out.push_str("}}");
    }
    out.push(']');
    Ok(out)
}
