"""Host side of the eBPF overhead lab. The guest agent lives in lab/agent (stdlib only)."""
