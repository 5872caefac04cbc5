"""lab/run/vcpumem.py: which extra guests the main job boots for claim 8, and what they run."""

from lab.agent.maps import suite as maps
from lab.run import playbooks, vcpumem


def test_default_playbook_asks_for_1_2_4_and_the_main_guests_count_is_left_out():
    pb = playbooks.load("default")
    assert pb.suites["maps"]["memory_vcpus"] == [1, 2, 4]
    assert vcpumem.counts(pb.suites["maps"], 1) == [2, 4]  # icount's one-vCPU main guest
    assert vcpumem.counts(pb.suites["maps"], 2) == [1, 4]
    assert vcpumem.counts({}, 2) == []


def test_an_extra_guest_runs_the_memory_rows_alone_under_plain_tcg():
    pb = playbooks.load("default")
    extra = vcpumem.playbook_for(pb, 4)
    assert (extra.vm.cpus, extra.vm.accel, list(extra.suites)) == (4, "tcg", ["maps"])
    p = extra.params("maps", "tcg")
    assert "memory_vcpus" not in p and p["mem_max_entries"] == [10240] and p["operations"] == []
    assert maps.check(p) == []  # the agent takes these parameters as they are
    assert set(vcpumem.TYPES) >= {"array", "percpu_array", "hash", "percpu_hash", "lru_hash", "lru_percpu_hash"}
