//! The acceptance suite: which tests exist (data file), building the examples for the
//! guest, running them in one VM boot, parsing their results, and reporting (table,
//! JSON, JUnit). Owns [`SuiteResult`].
//!
//! (Skeleton: filled in by the suite issue.)

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("`labctl vm test` is not implemented yet")]
    NotImplemented,
}
