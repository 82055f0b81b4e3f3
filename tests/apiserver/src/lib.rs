//! In-memory Kubernetes API server for tests: under construction (issue 6).
