//! The adversarial suite (issue "Trust"): hostile mirrors, crafted archives and indexes,
//! a throwaway signing key, signals. Every case asserts the exit code, the message, that
//! the home holds nothing unverified, and that nothing outside it changed. One module per
//! defect class; see docs/security.md for the threat model these cases pin down.

#[path = "../common/mod.rs"]
mod common;

mod archives;
mod cache;
mod input;
mod kit;
