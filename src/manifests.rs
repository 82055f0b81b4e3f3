//! Loading manifests from files and directories for the offline commands: YAML (multi-document)
//! or JSON, `kind: List` flattened. Every error names the document and the problem.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Where a document came from: `path` and its position in a multi-document file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    /// 1-based document number within the file.
    pub document: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.path.display(), self.document)
    }
}

#[derive(Clone, Debug)]
pub struct Document {
    pub source: Source,
    pub object: Value,
}

impl Document {
    pub fn kind(&self) -> &str {
        self.object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn api_group(&self) -> &str {
        let api_version = self
            .object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not valid {format}: {message}", path.display())]
    Parse {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error("{at}: {message}")]
    Document { at: Source, message: String },
    #[error("{}: no .yaml, .yml or .json files", path.display())]
    Empty { path: PathBuf },
}

/// Reads every manifest under `paths` (files, or directories read non-recursively in name
/// order).
pub fn load(paths: &[PathBuf]) -> Result<Vec<Document>, LoadError> {
    let mut documents = Vec::new();
    for path in paths {
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| LoadError::Read {
                    path: path.clone(),
                    source,
                })?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| is_manifest(p))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(LoadError::Empty { path: path.clone() });
            }
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            documents.extend(load_file(&file)?);
        }
    }
    Ok(documents)
}

fn is_manifest(path: &Path) -> bool {
    path.is_file()
        && matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        )
}

fn load_file(path: &Path) -> Result<Vec<Document>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let values: Vec<Value> = if path.extension().and_then(|e| e.to_str()) == Some("json") {
        let value = serde_json::from_str(&text).map_err(|e| LoadError::Parse {
            path: path.to_owned(),
            format: "JSON",
            message: e.to_string(),
        })?;
        vec![value]
    } else {
        serde_saphyr::from_multiple(&text).map_err(|e| LoadError::Parse {
            path: path.to_owned(),
            format: "YAML",
            message: e.to_string(),
        })?
    };
    let mut documents = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        let source = Source {
            path: path.to_owned(),
            document: i + 1,
        };
        match value {
            Value::Null => {}
            Value::Object(_) => flatten(source, value, &mut documents)?,
            other => {
                return Err(LoadError::Document {
                    at: source,
                    message: format!("expected a Kubernetes object, found {}", type_name(&other)),
                });
            }
        }
    }
    Ok(documents)
}

fn flatten(source: Source, value: Value, out: &mut Vec<Document>) -> Result<(), LoadError> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
        let Some(Value::Array(items)) = value.get("items").cloned() else {
            return Err(LoadError::Document {
                at: source,
                message: "items: must be a list".into(),
            });
        };
        for item in items {
            flatten(source.clone(), item, out)?;
        }
        return Ok(());
    }
    for field in ["apiVersion", "kind"] {
        if value
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(LoadError::Document {
                at: source,
                message: format!("{field}: is required"),
            });
        }
    }
    if value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(LoadError::Document {
            at: source,
            message: "metadata.name: is required".into(),
        });
    }
    out.push(Document {
        source,
        object: value,
    });
    Ok(())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
