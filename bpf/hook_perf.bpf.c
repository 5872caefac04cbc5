/* Hook suite, perf_event: the same program run from a sampling event (software cpu-clock or
 * hardware cycles) at a given frequency; its cost is the throughput a CPU-bound loop loses.
 *
 * The return value tells the kernel whether to also write the sample to the event's ring buffer.
 * Timed trials return 0 (the program alone); the helper's count phase sets lab_pass to 1 so every
 * sample the kernel generated is also recorded there: an independent count to check lab_events
 * against (the kernel may generate fewer samples than clock / period when its timer fires late). */
#define LAB_HOOK
#include "lab.h"

__u32 lab_pass = 0;

SEC("perf_event") int perf_event_empty(struct bpf_perf_event_data *ctx) { LAB_FILTER_EMPTY(); return lab_pass; }
SEC("perf_event") int perf_event_body(struct bpf_perf_event_data *ctx) { LAB_FILTER_BODY(); return lab_pass; }
SEC("perf_event") int perf_event_heavy(struct bpf_perf_event_data *ctx) { LAB_FILTER_HEAVY(); return lab_pass; }
