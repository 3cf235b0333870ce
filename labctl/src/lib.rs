//! labctl: fetch, configure, build and boot 5.x/6.x Linux kernels as a BPF lab,
//! then prove the lab works with an acceptance suite run inside the guest.
//!
//! The crate is a library with a thin binary (`src/main.rs`, `src/cli/`). Data flows
//! one way through the engines, each owning one step and one value type:
//!
//! ```text
//! version text -> source (Release, SourceTree) -> kconfig (ConfigReport)
//!   -> build (FixPlan, BuildOutput) -> vm (GuestImage, VmOutcome) -> suite (SuiteResult)
//! ```
//!
//! Engines never print: they report through [`events::EventSink`]. Only
//! [`process`] spawns child processes. See `docs/ARCHITECTURE.md`.

pub mod arch;
pub mod build;
pub mod doctor;
pub mod error;
pub mod events;
pub mod home;
pub mod kconfig;
pub mod lab;
pub mod lab_suite;
pub mod matrix;
pub mod new;
pub mod process;
pub mod rootfs;
pub mod share;
pub mod source;
pub mod suite;
pub mod userland;
pub mod version;
pub mod vm;

pub use error::{Error, Result};
pub use events::{Event, EventSink};
pub use home::Home;
pub use version::{KernelVersion, VersionReq};
