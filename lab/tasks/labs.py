"""lab.*: boot, inspect, use and stop lab guests."""
