"""The deadline watch and its reaper thread: fires on time, never touches a connection at rest."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from urllib3.util.wait import wait_for_read

from hypotez_providers import HttpTransport, ProviderTimeout
from hypotez_providers._deadline import Watch
from hypotez_providers.testing import FakeOpenAI, Fault

PAYLOAD = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def pooled_sockets(transport, url):
    pools = transport.session.get_adapter(url).poolmanager.pools
    return [
        conn.sock
        for key in pools.keys()  # noqa: SIM118 - the container does not iterate
        for conn in list(pools[key].pool.queue)
        if conn is not None and conn.sock
    ]


def test_a_watch_cuts_a_trickling_answer_at_its_deadline():
    with FakeOpenAI() as fake:
        fake.fail_every_request = Fault(trickle=0.05)
        transport = HttpTransport("trickler")
        watch = Watch(time.monotonic() + 0.3, "timeout=0.3s")
        started = time.monotonic()
        with pytest.raises(ProviderTimeout) as caught:
            transport.for_attempt(watch).post_json(fake.url + "/v1/chat/completions", PAYLOAD)
        elapsed = time.monotonic() - started
        transport.close()
    assert elapsed < 0.3 + 0.25
    assert "deadline" in str(caught.value) and "timeout=0.3s" in str(caught.value)


def test_a_watch_that_fires_late_never_touches_the_connection_back_in_the_pool():
    with FakeOpenAI() as fake:
        url = fake.url + "/v1/chat/completions"
        transport = HttpTransport("pooled")
        watch = Watch(time.monotonic() + 0.15)  # never closed: it fires after the answer
        transport.for_attempt(watch).post_json(url, PAYLOAD)
        (sock,) = pooled_sockets(transport, url)
        time.sleep(0.3)
        assert watch.expired is not None, "the watch did fire"
        assert not wait_for_read(sock, timeout=0), "the pooled socket was not shut down"
        transport.post_json(url, PAYLOAD)
        assert pooled_sockets(transport, url) == [sock], "the same connection was reused"
        assert len({r.headers.get("host") for r in fake.requests}) == 1
        transport.close()


def test_the_reaper_fires_many_watches_each_on_time():
    now = time.monotonic()
    watches = [Watch(now + 0.05 + (i % 10) * 0.02) for i in range(200)]
    time.sleep(0.05 + 9 * 0.02 + 0.1)
    assert all(watch.expired is not None for watch in watches)


def test_progress_moves_the_idle_limit_and_a_closed_watch_never_fires():
    watch = Watch(None)
    watch.begin_wait(0.2, "no progress")
    for _ in range(4):
        time.sleep(0.1)
        watch.end_wait()
        watch.begin_wait(0.2, "no progress")
    assert watch.expired is None, "each piece of progress restarted the idle clock"
    time.sleep(0.3)
    assert watch.expired == "no progress within 0.2s"
    closed = Watch(time.monotonic() + 0.05)
    closed.close()
    time.sleep(0.1)
    assert closed.expired is None


def _in_child(queue):
    watch = Watch(time.monotonic() + 0.1)
    time.sleep(0.3)
    queue.put(watch.expired)


def test_a_forked_child_gets_its_own_reaper():
    Watch(time.monotonic() + 0.01)  # the parent's reaper thread is running
    time.sleep(0.05)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_in_child, args=(queue,))
    child.start()
    child.join(timeout=10)
    assert queue.get(timeout=1) is not None


def test_a_far_limit_handed_over_without_the_lock_still_fires_on_time():
    Watch(time.monotonic() + 0.01)  # the reaper is running, so the far path is taken
    time.sleep(0.05)
    watch = Watch(None)
    watch.begin_wait(1.1, "no first chunk")
    time.sleep(0.9)
    assert watch.expired is None, "not before its time"
    time.sleep(0.5)
    assert watch.expired == "no first chunk within 1.1s"
