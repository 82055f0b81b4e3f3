//! Guarded RFC 6902 JSON patches: the only way rollout-router edits objects it does not own.
//! A patch states what it assumes with `test` operations first (kube-runtime's finalizer helper
//! does the same), so that a concurrent edit makes the API server reject the patch instead of
//! rollout-router overwriting someone else's change.

pub use json_patch::jsonptr::PointerBuf;
use json_patch::{
    AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation, TestOperation,
};
use serde_json::Value;

/// Builds a JSON pointer from tokens (strings or indices), escaping `~` and `/`:
/// `pointer!["metadata", "annotations", "nginx.ingress.kubernetes.io/canary"]`.
#[macro_export]
macro_rules! pointer {
    ($($token:expr),* $(,)?) => {
        $crate::patch::PointerBuf::from_tokens([$(::std::string::ToString::to_string(&$token)),*])
    };
}

/// Accumulates operations; `test`s are kept ahead of the operations they guard in the order
/// they are added.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PatchBuilder {
    ops: Vec<PatchOperation>,
}

impl PatchBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Assert that `path` holds `value`.
    pub fn test(&mut self, path: PointerBuf, value: Value) -> &mut Self {
        self.ops
            .push(PatchOperation::Test(TestOperation { path, value }));
        self
    }

    pub fn add(&mut self, path: PointerBuf, value: Value) -> &mut Self {
        self.ops
            .push(PatchOperation::Add(AddOperation { path, value }));
        self
    }

    pub fn replace(&mut self, path: PointerBuf, value: Value) -> &mut Self {
        self.ops
            .push(PatchOperation::Replace(ReplaceOperation { path, value }));
        self
    }

    pub fn remove(&mut self, path: PointerBuf) -> &mut Self {
        self.ops
            .push(PatchOperation::Remove(RemoveOperation { path }));
        self
    }

    /// Appends the operations of another builder.
    pub fn extend(&mut self, other: PatchBuilder) -> &mut Self {
        self.ops.extend(other.ops);
        self
    }

    /// Whether the patch would change anything (it has an operation other than `test`).
    pub fn changes_anything(&self) -> bool {
        self.ops
            .iter()
            .any(|op| !matches!(op, PatchOperation::Test(_)))
    }

    pub fn build(self) -> Patch {
        Patch(self.ops)
    }

    /// The patch, or `None` when it would change nothing.
    pub fn build_if_changed(self) -> Option<Patch> {
        self.changes_anything().then(|| self.build())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pointer_escapes_tokens() {
        let p = pointer![
            "metadata",
            "annotations",
            "nginx.ingress.kubernetes.io/canary",
            3
        ];
        assert_eq!(
            p.as_str(),
            "/metadata/annotations/nginx.ingress.kubernetes.io~1canary/3"
        );
        assert_eq!(pointer!["a~b"].as_str(), "/a~0b");
    }

    #[test]
    fn serializes_as_rfc6902() {
        let mut b = PatchBuilder::new();
        b.test(pointer!["spec", "http", 0, "name"], json!("primary"))
            .replace(pointer!["spec", "http", 0, "route", 0, "weight"], json!(80));
        assert!(b.changes_anything());
        assert_eq!(
            serde_json::to_value(b.build()).unwrap(),
            json!([
                {"op": "test", "path": "/spec/http/0/name", "value": "primary"},
                {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 80}
            ])
        );
        let mut only_tests = PatchBuilder::new();
        only_tests.test(pointer!["a"], json!(1));
        assert_eq!(only_tests.build_if_changed(), None);
    }
}
