//! A tiny JSON writer that reproduces Go's `encoding/json` output byte for byte for the values
//! rollout-router writes into annotations (strings, integers, booleans, fixed-order objects).
//!
//! Why not `serde_json`: the AWS Load Balancer Controller and GitOps diffs compare the annotation
//! strings, and Argo Rollouts wrote them with Go's encoder, which escapes `<`, `>`, `&`, U+2028
//! and U+2029 where `serde_json` does not. Matching Go keeps a migration from Argo diff-free.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal, escaped exactly like Go's `encoding/json` (Go ≥ 1.22,
/// HTML escaping on, which is the default of `json.Marshal`).
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go escapes these for safe embedding in HTML and JavaScript; lower-case hex like Go.
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes `"key":` (the key escaped like a string).
pub(crate) fn write_key(out: &mut String, key: &str) {
    write_string(out, key);
    out.push(':');
}

/// Writes a JSON array of strings.
pub(crate) fn write_string_array<'a>(out: &mut String, items: impl IntoIterator<Item = &'a str>) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, item);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, s);
        out
    }

    #[test]
    fn escapes_like_go() {
        // Expected values are what Go 1.22's json.Marshal prints for the same strings.
        let cases = [
            ("plain-svc", r#""plain-svc""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("<b>&", r#""\u003cb\u003e\u0026""#),
            ("\n\r\t\u{8}\u{c}", r#""\n\r\t\b\f""#),
            ("\u{1}\u{1f}", r#""\u0001\u001f""#),
            ("\u{2028}\u{2029}", r#""\u2028\u2029""#),
            ("é/ü", "\"é/ü\""),
        ];
        for (input, expected) in cases {
            assert_eq!(string(input), expected, "{input:?}");
            // Whatever Go writes must still be valid JSON meaning the same string.
            assert_eq!(
                serde_json::from_str::<String>(expected).unwrap(),
                input,
                "{expected}"
            );
        }
    }

    #[test]
    fn arrays() {
        let mut out = String::new();
        write_string_array(&mut out, ["a", "b<"]);
        assert_eq!(out, r#"["a","b\u003c"]"#);
        let mut empty = String::new();
        write_string_array(&mut empty, []);
        assert_eq!(empty, "[]");
    }
}
