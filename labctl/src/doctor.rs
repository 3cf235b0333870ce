//! Host checks: which tools, headers and resources a build and a VM run need, what is
//! missing, and the install command for the host's distribution.
//!
//! (Skeleton: filled in by the build issue.)
