// The seed notes' BCC hello world (section 6.3.1), unchanged: BCC compiles this at
// run time with its embedded LLVM, so it needs the kernel's headers in the guest
// (CONFIG_IKHEADERS or /lib/modules/<release>/build).
int hello(void *ctx)
{
	bpf_trace_printk("Hello, World!\n");
	return 0;
}
