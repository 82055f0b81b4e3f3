//! `meta.k8s.io/v1` `Table` responses (`Accept: application/json;as=Table;...`), which kubectl
//! asks for when it prints. Columns are the defaults kube-apiserver uses for custom resources
//! without printer columns: Name and Age.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::object;

/// Whether the `Accept` header asks for a Table.
pub(crate) fn wanted(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
    })
}

/// What a row carries: `includeObject=None|Metadata|Object` (default Metadata).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub(crate) fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// apimachinery's `duration.HumanDuration`, which kube-apiserver puts in Age cells.
fn human_duration(seconds: i64) -> String {
    let (m, h, d) = (seconds / 60, seconds / 3600, seconds / 86_400);
    match seconds {
        s if s < -1 => "<invalid>".into(),
        s if s < 0 => "0s".into(),
        s if s < 120 => format!("{s}s"),
        _ if m < 10 && seconds % 60 != 0 => format!("{m}m{}s", seconds % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m % 60 != 0 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 && h % 24 != 0 => format!("{d}d{}h", h % 24),
        _ if d < 730 => format!("{d}d"),
        _ if d < 2920 && d % 365 != 0 => format!("{}y{}d", d / 365, d % 365),
        _ => format!("{}y", d / 365),
    }
}

fn age(obj: &Value) -> String {
    let created =
        object::meta_str(obj, "creationTimestamp").and_then(|t| t.parse::<Timestamp>().ok());
    match created {
        Some(t) => human_duration(Timestamp::now().as_second() - t.as_second()),
        None => "<unknown>".into(),
    }
}

fn row(obj: &Value, include: Include) -> Value {
    let mut row = json!({
        "cells": [object::name(obj).unwrap_or_default(), age(obj)],
    });
    match include {
        Include::None => {}
        Include::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
            });
        }
        Include::Object => row["object"] = obj.clone(),
    }
    row
}

/// A Table of `items`, with list metadata (resourceVersion, continue) when given.
pub(crate) fn table(items: &[Value], list_metadata: Option<&Value>, include: Include) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata.cloned().unwrap_or_else(|| json!({})),
        "columnDefinitions": [
            { "name": "Name", "type": "string", "format": "name", "priority": 0,
              "description": "Name must be unique within a namespace." },
            { "name": "Age", "type": "date", "format": "", "priority": 0,
              "description": "CreationTimestamp is a timestamp representing the server time when this object was created." },
        ],
        "rows": items.iter().map(|o| row(o, include)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let cases = [
            (5, "5s"),
            (125, "2m5s"),
            (600, "10m"),
            (4 * 3600 + 60, "4h1m"),
            (30 * 3600, "30h"),
            (3 * 86_400 + 3600, "3d1h"),
            (40 * 86_400, "40d"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }
}
