/* Shared definitions for the lab's BPF programs (one experiment per *.bpf.c). */
#ifndef LAB_H
#define LAB_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#endif /* LAB_H */
