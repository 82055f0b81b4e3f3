//! Serde helpers for Kubernetes-style input, where `null`, `[]` and an absent field all mean
//! "not set" (Argo round-trips its objects through JSON with `omitempty`, spec 00 §1.4).

use serde::{Deserialize, Deserializer};

/// Deserializes `null` as `T::default()`; use with `#[serde(default)]` so absent works too.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
