//! The changes rollout-router wants on one Ingress (annotation values and rule paths), and their
//! translation into a guarded JSON patch that touches nothing else.

use rollout_router_core::json_patch::Patch;
use rollout_router_core::patch::PatchBuilder;
use rollout_router_core::pointer;
use serde_json::{Map, Value};

use crate::bookkeeping::{MANAGED_ANNOTATIONS, ManagedAnnotations};
use crate::ingress::{Ingress, RulePaths, backend_service, route_path};

/// Desired annotation values and paths for one Ingress, built up from its current state.
#[derive(Debug)]
pub struct IngressEdit<'a> {
    ingress: Ingress<'a>,
    /// Annotation keys we touch, in the order they are written: `Some` = must have this value,
    /// `None` = must be absent. Later entries for the same key win.
    annotations: Vec<(String, Option<String>)>,
    original_rules: Vec<RulePaths>,
    rules: Vec<RulePaths>,
    original_book: ManagedAnnotations,
    pub book: ManagedAnnotations,
    /// Guard annotations added to an existing map with `metadata.resourceVersion` (RFC 6902
    /// cannot test that a member is absent): set by writes that are only right while the key is
    /// missing, so a concurrent writer of the same key fails the patch instead of being
    /// overwritten.
    guard_additions: bool,
}

impl<'a> IngressEdit<'a> {
    pub fn new(ingress: Ingress<'a>, book: ManagedAnnotations) -> Self {
        let rules = ingress.rules();
        Self {
            ingress,
            annotations: Vec::new(),
            original_rules: rules.clone(),
            rules,
            original_book: book.clone(),
            book,
            guard_additions: false,
        }
    }

    /// Sets `key` only because it is absent now: the patch also tests `metadata.resourceVersion`
    /// so that it fails if anyone wrote the Ingress (the same key, say) since it was read.
    pub fn add_missing_annotation(&mut self, key: String, value: String) {
        self.guard_additions = true;
        self.set_annotation(key, value);
    }

    pub fn set_annotation(&mut self, key: String, value: String) {
        self.upsert(key, Some(value));
    }

    pub fn remove_annotation(&mut self, key: String) {
        self.upsert(key, None);
    }

    fn upsert(&mut self, key: String, value: Option<String>) {
        match self.annotations.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.annotations.push((key, value)),
        }
    }

    /// Inserts the header-route path at position 0 of every rule that routes `action_name`
    /// (see docs/alb.md: Argo inserts it into every rule, #3727) and lacks a path for `route`.
    pub fn ensure_route_path(&mut self, route: &str, action_name: &str) {
        let legacy = self.ingress.legacy_backends();
        for rule in &mut self.rules {
            let Some(paths) = rule.paths.as_mut() else {
                continue;
            };
            let routes_action = paths
                .iter()
                .any(|p| backend_service(p) == Some(action_name));
            let has_route = paths.iter().any(|p| backend_service(p) == Some(route));
            if routes_action && !has_route {
                paths.insert(0, route_path(route, legacy));
            }
        }
    }

    /// Removes every path whose backend is `route`, from every rule.
    pub fn remove_route_paths(&mut self, route: &str) {
        for paths in self.rules.iter_mut().filter_map(|r| r.paths.as_mut()) {
            paths.retain(|p| backend_service(p) != Some(route));
        }
    }

    /// Stable-sorts the paths of every rule this edit changed so managed-route paths come
    /// first, in `order` (higher LBC rule priority); other paths keep their relative order.
    /// Rules we do not change are not reordered: two Rollouts with header routes on one Ingress
    /// would otherwise each move their own paths first on every reconcile, forever.
    pub fn sort_paths(&mut self, order: &[&str]) {
        if order.is_empty() {
            return;
        }
        let changed = self
            .rules
            .iter_mut()
            .zip(&self.original_rules)
            .filter(|(new, old)| new.paths != old.paths)
            .filter_map(|(new, _)| new.paths.as_mut());
        for paths in changed {
            paths.sort_by_key(|p| {
                backend_service(p)
                    .and_then(|s| order.iter().position(|o| *o == s))
                    .unwrap_or(usize::MAX)
            });
        }
    }

    /// The guarded patch, or `None` when the Ingress already is as desired.
    pub fn into_patch(mut self) -> Option<Patch> {
        if self.book != self.original_book {
            let value = if self.book.is_empty() {
                None
            } else {
                Some(self.book.to_annotation())
            };
            self.upsert(MANAGED_ANNOTATIONS.to_owned(), value);
        }
        let mut tests = PatchBuilder::new();
        let mut ops = PatchBuilder::new();
        match self.ingress.annotations() {
            None => {
                let created: Map<String, Value> = self
                    .annotations
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), Value::String(v.clone()?))))
                    .collect();
                if !created.is_empty() {
                    // Creating the whole map cannot be guarded by a `test` on a missing member;
                    // the resourceVersion makes a concurrent writer's map creation fail us.
                    if let Some(rv) = self.ingress.resource_version() {
                        tests.test(pointer!["metadata", "resourceVersion"], rv.clone());
                    }
                    ops.add(pointer!["metadata", "annotations"], Value::Object(created));
                }
            }
            Some(current) => {
                let mut guarded = false;
                for (key, desired) in &self.annotations {
                    let path = pointer!["metadata", "annotations", key];
                    match (current.get(key), desired) {
                        (None, None) => {}
                        (None, Some(v)) => {
                            if self.guard_additions
                                && !guarded
                                && let Some(rv) = self.ingress.resource_version()
                            {
                                tests.test(pointer!["metadata", "resourceVersion"], rv.clone());
                                guarded = true;
                            }
                            ops.add(path, Value::String(v.clone()));
                        }
                        (Some(cur), Some(v)) if cur.as_str() == Some(v.as_str()) => {}
                        (Some(cur), Some(v)) => {
                            tests.test(path.clone(), cur.clone());
                            ops.replace(path, Value::String(v.clone()));
                        }
                        (Some(cur), None) => {
                            tests.test(path.clone(), cur.clone());
                            ops.remove(path);
                        }
                    }
                }
            }
        }
        for (old, new) in self.original_rules.iter().zip(&self.rules) {
            if let (Some(old_paths), Some(new_paths)) = (&old.paths, &new.paths)
                && old_paths != new_paths
            {
                // The whole list of this rule is replaced, guarded by its previous value: paths
                // are moved and inserted, and a concurrent edit of this rule fails the patch.
                let path = pointer!["spec", "rules", old.index, "http", "paths"];
                tests.test(path.clone(), Value::Array(old_paths.clone()));
                ops.replace(path, Value::Array(new_paths.clone()));
            }
        }
        tests.extend(ops);
        tests.build_if_changed()
    }
}
