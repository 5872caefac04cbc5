/* Hook suite, uprobe/uretprobe: the same program on a user function (hookbench's own
 * lab_uprobe_target), called in a C loop. */
#define LAB_HOOK
#include "lab.h"

SEC("uprobe") int uprobe_empty(struct pt_regs *ctx) { LAB_FILTER_EMPTY(); return 0; }
SEC("uprobe") int uprobe_body(struct pt_regs *ctx) { LAB_FILTER_BODY(); return 0; }
SEC("uprobe") int uprobe_heavy(struct pt_regs *ctx) { LAB_FILTER_HEAVY(); return 0; }
SEC("uretprobe") int uretprobe_empty(struct pt_regs *ctx) { LAB_FILTER_EMPTY(); return 0; }
SEC("uretprobe") int uretprobe_body(struct pt_regs *ctx) { LAB_FILTER_BODY(); return 0; }
SEC("uretprobe") int uretprobe_heavy(struct pt_regs *ctx) { LAB_FILTER_HEAVY(); return 0; }
