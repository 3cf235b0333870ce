# What `kernel/config` requires of every lab kernel by default: the seed notes' BPF
# options plus what the examples need (BTF for CO-RE, kprobes for hello, /proc/config.gz).
# `labctl vm test --fragment FILE` checks other fragments instead.
CONFIG_CGROUP_BPF=y
CONFIG_BPF=y
CONFIG_BPF_SYSCALL=y
CONFIG_NET_SCH_INGRESS=m
CONFIG_NET_CLS_BPF=m
CONFIG_NET_CLS_ACT=y
CONFIG_BPF_JIT=y
CONFIG_LWTUNNEL_BPF=y
CONFIG_HAVE_EBPF_JIT=y
CONFIG_BPF_EVENTS=y
CONFIG_TEST_BPF=m
CONFIG_DEBUG_INFO_BTF=y
CONFIG_KPROBES=y
CONFIG_KPROBE_EVENTS=y
CONFIG_IKCONFIG_PROC=y
CONFIG_PACKET=y
