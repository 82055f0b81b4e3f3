//! A [`WeightStatusSource`] backed by a JSON file, for tests that drive the plugin from outside
//! (the Go interoperability host flips the file between calls). The file maps
//! `"namespace/name"` to [`AppliedWeights`]; a missing file or key means "nothing applied yet".

use std::collections::HashMap;
use std::path::PathBuf;

use crate::service::{AppliedWeights, WeightStatusSource};

/// Environment variable naming the status file of the test server.
pub const STATUS_FILE_ENV: &str = "ROLLOUT_ROUTER_PLUGIN_TEST_STATUS";

#[derive(Debug, Clone)]
pub struct FileWeightStatus {
    path: Option<PathBuf>,
}

impl FileWeightStatus {
    pub fn new(path: Option<PathBuf>) -> Self {
        Self { path }
    }

    /// Reads the path from [`STATUS_FILE_ENV`].
    pub fn from_env() -> Self {
        Self::new(std::env::var_os(STATUS_FILE_ENV).map(PathBuf::from))
    }
}

impl WeightStatusSource for FileWeightStatus {
    async fn lookup(&self, namespace: &str, name: &str) -> Result<Option<AppliedWeights>, String> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        // A small local file read by tests: a blocking read is fine here.
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut all: HashMap<String, AppliedWeights> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(all.remove(&format!("{namespace}/{name}")))
    }
}
