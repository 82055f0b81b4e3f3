//! Turns loaded manifests into one Rollout, its configuration and routers, its ReplicaSets and
//! Experiments, and the other objects; every problem is an [`InputError`] naming the document
//! and the field.

use std::path::PathBuf;

use rollout_router_core::{ObjectSet, PluginConfig, Router};
use serde_json::Value;

use crate::manifests::{self, Document, LoadError, Source};
use crate::rollout::{ExperimentView, ReplicaSetView, Rollout};
use crate::{routers, validation};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("no Rollout (argoproj.io/v1alpha1) in {0}")]
    NoRollout(String),
    #[error("{count} Rollouts found ({names}): give the files of one Rollout")]
    SeveralRollouts { count: usize, names: String },
    #[error("{at}: {field}: {message}")]
    Invalid {
        at: Source,
        field: String,
        message: String,
    },
}

/// Everything the offline commands need, parsed and validated.
pub struct Input {
    pub rollout: Rollout,
    pub rollout_json: Value,
    pub source: Source,
    pub config: PluginConfig,
    pub routers: Vec<Box<dyn Router + Send + Sync>>,
    pub replica_sets: Vec<ReplicaSetView>,
    pub experiments: Vec<ExperimentView>,
    pub objects: ObjectSet,
}

impl Input {
    pub fn load(paths: &[PathBuf], plugin_key: &str) -> Result<Self, InputError> {
        let documents = manifests::load(paths)?;
        let (rollouts, others): (Vec<Document>, Vec<Document>) = documents
            .into_iter()
            .partition(|d| d.api_group() == "argoproj.io" && d.kind() == "Rollout");
        let doc = match <[Document; 1]>::try_from(rollouts) {
            Ok([doc]) => doc,
            Err(rollouts) if rollouts.is_empty() => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                return Err(InputError::NoRollout(names.join(", ")));
            }
            Err(rollouts) => {
                let names: Vec<String> = rollouts
                    .iter()
                    .map(|d| {
                        d.object
                            .pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                            .to_owned()
                    })
                    .collect();
                return Err(InputError::SeveralRollouts {
                    count: rollouts.len(),
                    names: names.join(", "),
                });
            }
        };
        let invalid = |field: String, message: String| InputError::Invalid {
            at: doc.source.clone(),
            field,
            message,
        };
        let mut rollout: Rollout = serde_path_to_error::deserialize(&doc.object)
            .map_err(|e| invalid(e.path().to_string(), e.inner().to_string()))?;
        if rollout.metadata.namespace.is_empty() {
            // As kubectl would apply it.
            rollout.metadata.namespace = "default".into();
        }
        let config = validation::plugin_config(&rollout, plugin_key)
            .map_err(|e| invalid(e.field, e.message))?
            .ok_or_else(|| {
                invalid(
                    validation::plugin_path(plugin_key),
                    "is missing: this Rollout does not opt in to rollout-router".into(),
                )
            })?;
        let built = routers::build(&config);
        let errors = validation::validate(&rollout, &config, &routers::as_dyn(&built), plugin_key);
        if let Some(first) = errors.first() {
            let rest: Vec<String> = errors.iter().skip(1).map(ToString::to_string).collect();
            let message = if rest.is_empty() {
                first.message.clone()
            } else {
                format!("{} (and: {})", first.message, rest.join("; "))
            };
            return Err(invalid(first.field.clone(), message));
        }

        let mut replica_sets = Vec::new();
        let mut experiments = Vec::new();
        let mut objects = ObjectSet::new();
        for d in others {
            match (d.api_group(), d.kind()) {
                ("apps", "ReplicaSet") => {
                    let view = ReplicaSetView::from_json(&d.object).ok_or_else(|| InputError::Invalid {
                        at: d.source.clone(),
                        field: "metadata.labels".into(),
                        message: "a Rollout's ReplicaSet carries the rollouts-pod-template-hash label".into(),
                    })?;
                    replica_sets.push(view);
                }
                ("argoproj.io", "Experiment") => {
                    experiments.extend(ExperimentView::from_json(&d.object));
                }
                _ => {
                    let mut object = d.object;
                    // Objects without a namespace live in the Rollout's (as kubectl applies them).
                    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
                        && !meta.contains_key("namespace")
                    {
                        meta.insert(
                            "namespace".into(),
                            Value::String(rollout.metadata.namespace.clone()),
                        );
                    }
                    objects.insert(object);
                }
            }
        }
        Ok(Self {
            rollout,
            rollout_json: doc.object,
            source: doc.source,
            config,
            routers: built,
            replica_sets,
            experiments,
            objects,
        })
    }
}
