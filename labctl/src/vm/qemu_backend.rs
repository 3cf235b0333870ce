//! The QEMU backend ([`super::Backend::Qemu`]): labctl's own initramfs guest
//! ([`initramfs`]: the cached base image plus the per-run archive) under QEMU, argv from
//! the pure builders in [`qemu`], [`share`] and [`gdb`]. The console is QEMU's stdout;
//! the results come back framed (`<<<labctl-exit NONCE CODE>>>`) on the second serial
//! port in `results.bin`; the watchdog stops QEMU through its pidfile. The run loop is
//! [`runner`].

use std::path::{Path, PathBuf};

use super::runner::{self, Backend};
use super::{
    gdb, initramfs, memory_for, parse_results, qemu, share, AccelVerdict, VmError, VmSpec,
};
use crate::events::{EventSink, SinkExt, Stage};
use crate::home::Home;
use crate::process::{Cmd, ProcessError};

/// A prepared QEMU boot: the initrd is assembled, the argv is fixed.
pub struct QemuBackend {
    cmd: Cmd,
    detail: String,
    nonce: String,
    results: PathBuf,
    pidfile: PathBuf,
}

impl QemuBackend {
    /// Build or reuse the guest image, append this run's archive and fix QEMU's argv.
    pub fn prepare(
        home: &Home,
        spec: &VmSpec,
        verdict: &AccelVerdict,
        qemu_prog: &Path,
        sink: &dyn EventSink,
    ) -> Result<QemuBackend, VmError> {
        let busybox = initramfs::find_busybox_in(spec.guest_root.as_deref())?;
        let image = {
            let st = sink.stage(
                Stage::Image,
                "guest initramfs (busybox, init, modules, payload)",
            );
            // Programs in the shares (a loader built on the host) bring their libraries.
            let share_programs = share::elf_programs(&spec.shares, 200);
            let img = initramfs::base_image(
                home,
                &busybox,
                spec.modules.as_deref(),
                &spec.files,
                &share_programs,
                spec.guest_root.as_deref(),
            )?;
            sink.debug(format!(
                "guest image {} ({} entries, {})",
                img.path.display(),
                img.entries,
                if img.built { "built" } else { "cached" }
            ));
            st.ok();
            img
        };
        let nonce = super::new_nonce();
        let settings = initramfs::RunSettings {
            interactive: spec.interactive,
            nonce: nonce.clone(),
            modules: spec.load_modules.clone(),
            ld_path: image.ld_path.clone(),
            script: super::guest_script(spec),
            workdir: spec.workdir.clone(),
            results: spec.arch.qemu.results.clone(),
        };
        let run_dir = &spec.run_dir;
        let initrd = run_dir.join("initrd.img");
        initramfs::assemble_initrd(&image, &settings, &initrd)?;
        let results = run_dir.join("results.bin");
        let pidfile = run_dir.join("qemu.pid");
        for p in [&results, &pidfile] {
            let _ = std::fs::remove_file(p);
        }

        let mut args = qemu::accel_kernel_args(spec.arch, verdict.accel);
        if spec.arch.qemu.tcg_host_tsc && spec.arch.is_host() {
            args.extend(super::tsc::kernel_args(verdict.accel));
        }
        args.extend(spec.kernel_args.iter().cloned());
        if spec.gdb.is_some() {
            args.extend(gdb::kernel_args());
        }
        if spec.interactive {
            args.push("TERM=linux".into());
        }
        // The unpacked image lives in the guest's RAM (rootfs): a big payload (bpftrace's
        // LLVM) needs more than the default.
        let memory_mb = memory_for(spec.memory_mb, image.bytes);
        if memory_mb > spec.memory_mb {
            sink.info(format!(
                "guest memory raised from {} to {memory_mb} MiB: the guest image unpacks to {} MiB",
                spec.memory_mb,
                image.bytes >> 20
            ));
        }
        let q = qemu::QemuArgs {
            arch: spec.arch,
            kernel: spec.kernel.clone(),
            initrd: Some(initrd.clone()),
            append: qemu::kernel_cmdline(
                spec.arch,
                !spec.verbose_console && !spec.interactive,
                &args,
            ),
            memory_mb,
            cpus: spec.cpus,
            accel: verdict.accel,
            console: if spec.interactive {
                qemu::Console::Interactive
            } else {
                qemu::Console::Captured
            },
            results: Some(results.clone()),
            pidfile: Some(pidfile.clone()),
        };
        let cmd = Cmd::new(qemu_prog)
            .args(qemu::argv(&q))
            .args(share::qemu_args(&spec.shares))
            .args(spec.gdb.iter().flat_map(gdb::qemu_args));
        if let Some(g) = &spec.gdb {
            sink.emit(crate::events::Event::GdbStub {
                address: g.address(),
                wait: g.wait,
                command: gdb::attach_command(g),
            });
        }
        let detail = if spec.interactive {
            format!(
                "{} under {} (Ctrl-A X quits QEMU)",
                spec.kernel.display(),
                verdict.accel.name()
            )
        } else {
            format!("{} under {}", spec.kernel.display(), verdict.accel.name())
        };
        Ok(QemuBackend {
            cmd,
            detail,
            nonce,
            results,
            pidfile,
        })
    }

    fn results_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.results).unwrap_or_default()
    }
}

impl Backend for QemuBackend {
    fn command(&self) -> Cmd {
        self.cmd.clone()
    }
    fn boot_detail(&self) -> String {
        self.detail.clone()
    }
    fn boot_deadline(&self) -> bool {
        true
    }
    fn stop(&self) -> bool {
        runner::kill_pidfile(&self.pidfile)
    }
    fn result(&self) -> Option<(Vec<u8>, i32)> {
        parse_results(&self.results_bytes(), &self.nonce)
    }
    fn partial_output(&self) -> String {
        runner::tail_text(&self.results_bytes(), 20)
    }
    fn no_result(&self, code: Option<i32>, excerpt: String, log: PathBuf) -> VmError {
        if code != Some(0) {
            VmError::QemuFailed {
                status: crate::process::status_text(code),
                excerpt,
                log,
            }
        } else {
            VmError::NoResult { excerpt, log }
        }
    }
    fn spawn_error(&self, e: ProcessError) -> VmError {
        match e {
            ProcessError::Spawn { program, source } => VmError::QemuMissing {
                program,
                detail: source.to_string(),
            },
            e => VmError::Process(e),
        }
    }
}
