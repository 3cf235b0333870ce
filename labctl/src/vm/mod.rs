//! The VM harness: a hermetic initramfs guest (newc cpio written here), QEMU argv as
//! pure functions, accelerator probing (KVM only when it proves alive, else TCG),
//! console + results channels, watchdog. Owns [`VmSpec`] and [`VmOutcome`].

pub mod cpio;
pub mod elf;

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("`labctl vm` is not implemented yet")]
    NotImplemented,
}
