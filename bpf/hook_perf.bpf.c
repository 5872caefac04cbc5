/* Hook suite, perf_event: the same program run from a sampling event (software cpu-clock or
 * hardware cycles) at a given frequency; its cost is the throughput a CPU-bound loop loses. */
#define LAB_HOOK
#include "lab.h"

SEC("perf_event") int perf_event_empty(struct bpf_perf_event_data *ctx) { LAB_FILTER_EMPTY(); return 0; }
SEC("perf_event") int perf_event_body(struct bpf_perf_event_data *ctx) { LAB_FILTER_BODY(); return 0; }
SEC("perf_event") int perf_event_heavy(struct bpf_perf_event_data *ctx) { LAB_FILTER_HEAVY(); return 0; }
