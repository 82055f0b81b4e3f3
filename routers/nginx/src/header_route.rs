//! Header routes on ingress-nginx (beyond Argo, issue #2830): how a `setHeaderRoute` step maps to
//! the `canary-by-header*` annotations of the canary Ingress (spec 20 §9.2), and the checks
//! that reject what one canary Ingress cannot express.

use std::collections::BTreeMap;

use rollout_router_core::matches::MatchKind;
use rollout_router_core::{SetHeaderRoute, ValidationError};

use crate::annotations::{
    CANARY_BY_HEADER, CANARY_BY_HEADER_PATTERN, CANARY_BY_HEADER_VALUE, prefixed,
};

/// How ingress-nginx is told which header value selects the canary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// `canary-by-header-value`: compared for equality.
    Exact(String),
    /// `canary-by-header-pattern`: a PCRE regex, searched (not anchored) by ingress-nginx, so
    /// rollout-router writes it anchored.
    Pattern(String),
}

/// The canary-by-header annotations of one header route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderMatch {
    /// The header name as the step spells it (ingress-nginx compares names case-insensitively).
    pub header: String,
    pub value: HeaderValue,
}

impl HeaderMatch {
    /// The annotations, keyed under `prefix`.
    pub fn annotations(&self, prefix: &str) -> BTreeMap<String, String> {
        let (key, value) = match &self.value {
            HeaderValue::Exact(v) => (CANARY_BY_HEADER_VALUE, v),
            HeaderValue::Pattern(p) => (CANARY_BY_HEADER_PATTERN, p),
        };
        BTreeMap::from([
            (prefixed(prefix, CANARY_BY_HEADER), self.header.clone()),
            (prefixed(prefix, key), value.clone()),
        ])
    }
}

/// Maps a `setHeaderRoute` step with at least one match to its header annotations.
///
/// * one `exact` match: `canary-by-header-value`;
/// * one `prefix` match: pattern `^<escaped prefix>`;
/// * one `regex` match: pattern `^(?:<regex>)$` — Istio (Envoy) matches header regexes against
///   the whole value, ingress-nginx searches, so the anchors keep one meaning on every router;
/// * several matches on the same header (names compared case-insensitively, like HTTP): the
///   alternation `^(?:a|b.*|(?:c))$` of the escaped exact values, the escaped prefixes followed
///   by `.*` and the regexes. Istio ORs match blocks, and so does the alternation.
///
/// Rejected, with a message saying why: no match, an empty header name, a match without exactly
/// one of exact/prefix/regex, and matches on different headers (ingress-nginx evaluates a single
/// `canary-by-header`).
pub fn header_match(route: &SetHeaderRoute) -> Result<HeaderMatch, String> {
    let Some(first) = route.matches.first() else {
        return Err(format!(
            "setHeaderRoute `{}` has no match: nothing to program (a step without match removes \
             the route)",
            route.name
        ));
    };
    let mut kinds = Vec::with_capacity(route.matches.len());
    for (i, m) in route.matches.iter().enumerate() {
        if !is_header_name(&m.header_name) {
            return Err(format!(
                "match[{i}].headerName `{}` is not an HTTP header name",
                m.header_name
            ));
        }
        if !m.header_name.eq_ignore_ascii_case(&first.header_name) {
            return Err(format!(
                "match[{i}].headerName: matches on headers `{}` and `{}`: ingress-nginx routes a \
                 canary Ingress on one header only (canary-by-header), so a route over several \
                 headers cannot be expressed; use one header",
                first.header_name, m.header_name
            ));
        }
        let kind = m
            .header_value
            .as_ref()
            .and_then(|v| v.kind())
            .ok_or_else(|| {
                format!("match[{i}].headerValue must set exactly one of exact, prefix, regex")
            })?;
        kinds.push(kind);
    }
    let value = match kinds.as_slice() {
        [MatchKind::Exact(v)] => HeaderValue::Exact((*v).to_owned()),
        [MatchKind::Prefix(p)] => HeaderValue::Pattern(format!("^{}", escape(p))),
        [MatchKind::Regex(r)] => HeaderValue::Pattern(format!("^(?:{r})$")),
        several => {
            let mut alternatives: Vec<String> = Vec::with_capacity(several.len());
            for kind in several {
                let alternative = match kind {
                    MatchKind::Exact(v) => escape(v),
                    MatchKind::Prefix(p) => format!("{}.*", escape(p)),
                    MatchKind::Regex(r) => format!("(?:{r})"),
                };
                if !alternatives.contains(&alternative) {
                    alternatives.push(alternative);
                }
            }
            HeaderValue::Pattern(format!("^(?:{})$", alternatives.join("|")))
        }
    };
    Ok(HeaderMatch {
        header: first.header_name.clone(),
        value,
    })
}

/// RFC 9110 token characters: anything else cannot be a header name (and would end up inside
/// an nginx variable name).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Escapes the PCRE metacharacters of a literal.
fn escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Checks the `setHeaderRoute` steps of a Rollout routed through nginx, as a whole: a canary
/// Ingress has one header slot, so two header routes may never be active at the same time.
///
/// `steps` are the Rollout's `setHeaderRoute` steps in step order, each with its index in
/// `spec.strategy.canary.steps`. A step with matches activates its route; a step without
/// matches removes it (spec 00 §6.1). The Rollout validation calls this when nginx is
/// configured; errors are relative to `spec.strategy.canary` (use
/// [`ValidationError::under`]).
///
/// A Rollout may use several route names one after the other (`h1` added, `h1` removed, `h2`
/// added); what is rejected is a step that activates a route while another one is active.
pub fn validate_header_route_steps<'a>(
    steps: impl IntoIterator<Item = (usize, &'a SetHeaderRoute)>,
) -> Result<(), ValidationError> {
    let mut active: Vec<&str> = Vec::new();
    for (index, step) in steps {
        let name = step.name.as_str();
        active.retain(|n| *n != name);
        if step.matches.is_empty() {
            continue;
        }
        if let Some(other) = active.first() {
            return Err(ValidationError::new(
                format!("steps[{index}].setHeaderRoute.name"),
                format!(
                    "header route `{name}` would be active while header route `{other}` still is: \
                     an ingress-nginx canary Ingress has a single header slot (canary-by-header), \
                     so the nginx router can program one header route at a time; remove `{other}` \
                     first with a setHeaderRoute step named `{other}` without match"
                ),
            ));
        }
        active.push(name);
    }
    Ok(())
}
