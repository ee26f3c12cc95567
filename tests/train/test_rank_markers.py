"""The rank helpers in one process (runtime/distributed.py): which rank this is, from the launcher's
environment; work done once behind a marker; every rank's markers awaited by rank 0; a failure written
for the waiting ranks, and a wait that ends at the timeout naming who it waited for. The two-process
runs of the same helpers are in test_sharded_eval.py."""

import sys
import threading
import time

import pytest

from libra_train.errors import LibraError
from libra_train.runtime import distributed as d


@pytest.fixture
def launch(monkeypatch):
    """This process as one rank of a launch; the timeout put back afterwards."""

    def as_rank(rank: int, world: int = 2, launch_id: str | None = "L1"):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", str(world))
        monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
        if launch_id is None:
            monkeypatch.delenv("LIBRA_LAUNCH_ID", raising=False)
        else:
            monkeypatch.setenv("LIBRA_LAUNCH_ID", launch_id)

    before = d.timeout_s()
    yield as_rank
    d.set_timeout(before)


def test_the_rank_the_world_and_the_launch_come_from_the_launchers_environment(launch, monkeypatch):
    launch(1, world=4)
    assert (d.rank(), d.world_size(), d.is_main(), d.launch_id()) == (1, 4, False, "L1")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "torchrun-7")  # torchrun's id first
    assert d.launch_id() == "torchrun-7"
    for name in ("RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "LIBRA_LAUNCH_ID"):
        monkeypatch.delenv(name)
    assert (d.rank(), d.world_size(), d.is_main(), d.launch_id()) == (0, 1, True, "single")
    d.set_timeout(7)
    assert d.timeout_s() == 7.0 and isinstance(d.timeout_s(), float)


def test_work_done_once_runs_on_rank_0_unless_its_marker_exists_and_other_ranks_wait(launch, tmp_path):
    marker, done = tmp_path / "run" / "data" / ".built", []  # its folders made as needed
    launch(0)
    d.once(marker, lambda: done.append(1))
    d.once(marker, lambda: done.append(2))  # the marker says it is done
    d.once(marker, lambda: done.append(3), redo=True)
    assert done == [1, 3] and marker.is_file()
    launch(1)
    d.once(marker, lambda: done.append(4))  # a waiting rank never does rank 0's work
    assert done == [1, 3]


def test_a_failure_is_written_for_the_waiting_ranks_and_a_retry_clears_it(launch, tmp_path):
    marker = tmp_path / ".data"
    launch(0)

    def fail():
        raise ValueError("bad file\nsecond line")

    with pytest.raises(ValueError):
        d.once(marker, fail)
    assert (tmp_path / ".data.failed").read_text() == "ValueError: bad file\n" and not marker.exists()
    launch(1)
    with pytest.raises(LibraError, match="^rank 0 failed: ValueError: bad file$"):
        d.wait_for(marker)
    launch(0)

    def fail_quietly():
        raise KeyboardInterrupt  # no message: the marker still names what stopped the work

    with pytest.raises(KeyboardInterrupt):
        d.once(marker, fail_quietly)
    assert (tmp_path / ".data.failed").read_text() == "KeyboardInterrupt: \n"
    d.once(marker, lambda: None)
    assert marker.is_file() and not (tmp_path / ".data.failed").exists()


def test_a_waiting_rank_never_reads_a_failure_before_its_error_is_written(launch, tmp_path):
    """A waiting rank reads the failure marker the moment it appears: were the marker created before
    its text was in, the rank would stop with an empty error."""
    launch(0)
    errors, stop = [], threading.Event()

    def wait(marker):
        while not stop.is_set():
            try:
                d.wait_for(marker, poll_s=0)
            except LibraError as err:
                errors.append(str(err))

    def fail():
        raise ValueError("bad shard")

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the threads interleave between any two bytecodes
    try:
        for i in range(1000):
            stop.clear()
            waiter = threading.Thread(target=wait, args=(tmp_path / f".eval{i}",))
            waiter.start()
            with pytest.raises(ValueError):
                d.once(tmp_path / f".eval{i}", fail)
            stop.set()
            waiter.join()
    finally:
        sys.setswitchinterval(switch)
    assert len(errors) >= 1000 and set(errors) == {"rank 0 failed: ValueError: bad shard"}


def test_a_wait_ends_at_the_timeout_naming_the_rank_who_it_waited_for_and_the_key(launch, tmp_path):
    launch(1)
    d.set_timeout(0.3)
    started = time.monotonic()
    with pytest.raises(LibraError) as err:
        d.wait_for(tmp_path / ".never", who="rank 0", poll_s=0.05)
    assert 0.3 <= time.monotonic() - started < 5
    assert str(err.value) == (
        "rank 1 waited 0s for rank 0 (.never): it died or hangs (distributed.timeout_s)"
    )


def test_rank_0_returns_from_every_rank_once_each_rank_has_marked_its_share(launch, tmp_path):
    launch(0, world=3)
    d.set_timeout(10)
    shares = []
    for other in (1, 2):  # the other ranks of this launch finish a little later
        marker = tmp_path / f".eval-rank{other}-L1"
        threading.Timer(0.2 * other, marker.write_text, args=("t",)).start()
    started = time.monotonic()
    d.every_rank(tmp_path, "eval", lambda: shares.append(0))
    assert shares == [0] and (tmp_path / ".eval-rank0-L1").is_file()
    assert time.monotonic() - started >= 0.4  # it waited for rank 2
    launch(0, world=2, launch_id="L2")  # a relaunch does not take the first launch's markers
    d.set_timeout(0.3)
    with pytest.raises(LibraError, match=r"for rank 1 \(\.eval-rank1-L2\)"):
        d.every_rank(tmp_path, "eval", lambda: None)
    launch(1, world=2, launch_id="L3")  # a rank other than 0 marks its share and returns
    d.every_rank(tmp_path, "eval", lambda: shares.append(1))
    assert shares == [0, 1] and (tmp_path / ".eval-rank1-L3").is_file()


def test_the_local_device_is_the_cpu_without_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert d.local_device() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert d.local_device() == "cuda:3"
    monkeypatch.delenv("LOCAL_RANK")
    assert d.local_device() == "cuda:0"
