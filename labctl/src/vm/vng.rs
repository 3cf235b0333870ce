//! The virtme-ng backend (`--backend vng`): `vng --run <kernel> --exec SCRIPT`, sharing
//! the host's root filesystem over 9p, for programs that need the host's userland.

use super::{AccelVerdict, VmError, VmOutcome, VmSpec};
use crate::events::EventSink;

pub fn run(_spec: &VmSpec, _verdict: &AccelVerdict, _sink: &dyn EventSink) -> Result<VmOutcome, VmError> {
    Err(VmError::Vng {
        detail: "not wired yet".into(),
    })
}
