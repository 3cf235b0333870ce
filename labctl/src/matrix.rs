//! The kernel matrix: build + vm test across a list of kernels, and the matrix report.
//!
//! (Skeleton: filled in by the matrix issue.)
