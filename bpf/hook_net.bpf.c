/* Hook suite, packets: XDP (generic mode, on the receiving veth) and a socket filter (on the
 * receiving UDP socket), per-packet cost against no program. There is no process context here,
 * so the filter is "UDP to the benchmark's port" (lab_target_port, set by the helper) and the
 * body records the sender (source address, or socket cookie) in a hash map before counting.
 * Variants: NAME_empty (filter + count), NAME_body (record + count), NAME_heavy (+ map loop).
 */
#define LAB_HOOK
#include "lab.h"

#define ETH_P_IP_BE 0x0008 /* htons(0x0800) */

const volatile __u16 lab_target_port = 0; /* network byte order */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} lab_senders SEC(".maps");

static __always_inline void lab_note(__u64 key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&lab_senders, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&lab_senders, &key, &one, BPF_ANY);
}

/* Returns the source address of a UDP/IPv4 packet to lab_target_port, or 0 if not ours. */
static __always_inline __u32 xdp_ours(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp;

	if ((void *)(ip + 1) > end || eth->h_proto != ETH_P_IP_BE || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return 0;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end || udp->dest != lab_target_port)
		return 0;
	return ip->saddr ? ip->saddr : 1;
}

SEC("xdp") int xdp_empty(struct xdp_md *ctx)
{
	if (xdp_ours(ctx))
		lab_count();
	return XDP_PASS;
}

SEC("xdp") int xdp_body(struct xdp_md *ctx)
{
	__u32 src = xdp_ours(ctx);

	if (src) {
		lab_note(src);
		lab_count();
	}
	return XDP_PASS;
}

SEC("xdp") int xdp_heavy(struct xdp_md *ctx)
{
	__u32 src = xdp_ours(ctx);

	if (src) {
		lab_note(src);
		lab_heavy_body();
		lab_count();
	}
	return XDP_PASS;
}

/* The socket only sees datagrams to its own port: the demux did the filtering. */
SEC("socket") int socket_empty(struct __sk_buff *skb)
{
	lab_count();
	return skb->len;
}

SEC("socket") int socket_body(struct __sk_buff *skb)
{
	lab_note(bpf_get_socket_cookie(skb));
	lab_count();
	return skb->len;
}

SEC("socket") int socket_heavy(struct __sk_buff *skb)
{
	lab_note(bpf_get_socket_cookie(skb));
	lab_heavy_body();
	lab_count();
	return skb->len;
}
