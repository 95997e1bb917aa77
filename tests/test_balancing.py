"""Load balancing: the pure ordering of equally preferred candidates (seeded, injected stats),
and the strategies over real HTTP (weighted shares, least busy, fastest after warm-up)."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from hypotez_providers import Router
from hypotez_providers.balancing import BalancingSettings, MemoryLoadStats, balance
from hypotez_providers.selection import plan
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import Fault

from ._routing import MESSAGES, MODEL, build


def seeded(router, seed=7):
    """The same router's registry behind a Router drawing from a seeded generator."""
    return Router(router.registry, rng=random.Random(seed))


def names(candidates):
    return [candidate.provider.name for candidate in candidates]


def planned(fakes, settings, count=3):
    urls = {name: fakes(name).url for name in ("a", "b", "c")[:count]}
    router, _ = build(urls, settings=settings)
    candidates, _ = plan(MODEL, router.registry.by_name, router.registry.settings)
    return router, candidates


# -- the pure ordering ---------------------------------------------------------------------


def test_ordered_returns_the_plan_itself(fakes):
    _, candidates = planned(fakes, "")
    assert balance(candidates, "ordered", stats=MemoryLoadStats()) is candidates


def test_only_candidates_of_the_same_priority_are_reordered(fakes):
    _, candidates = planned(fakes, "[providers.a]\npriority = 1\n")
    stats = MemoryLoadStats()
    stats.started("a")
    for _ in range(3):
        stats.started("b")
    # a has the higher priority: it stays first however busy; b and c are one group.
    assert names(balance(candidates, "least_busy", stats=stats)) == ["a", "c", "b"]


def test_weighted_draws_each_first_in_proportion_to_its_weight(fakes):
    _, candidates = planned(
        fakes, "[providers.a]\nweight = 1\n[providers.b]\nweight = 3\n[providers.c]\nweight = 0\n"
    )
    rng = random.Random(1)
    stats = MemoryLoadStats()
    firsts = Counter(
        names(balance(candidates, "weighted", stats=stats, rng=rng))[0] for _ in range(4000)
    )
    assert firsts["c"] == 0  # weight 0: only when the others fail
    assert 0.70 < firsts["b"] / 4000 < 0.80
    orders = {
        tuple(names(balance(candidates, "weighted", stats=stats, rng=rng))) for _ in range(50)
    }
    assert all(order[-1] == "c" for order in orders)


def test_fastest_puts_unmeasured_first_then_lowest_latency(fakes):
    _, candidates = planned(fakes, "")
    stats = MemoryLoadStats()
    stats.measured("a", 0.5)
    stats.measured("c", 0.1)
    assert names(balance(candidates, "fastest", stats=stats)) == ["b", "c", "a"]


def test_usage_orders_by_share_of_the_limits_used(fakes):
    _, candidates = planned(fakes, "")
    used = {"a": 0.9, "b": 0.2, "c": 0.5}
    ordered = balance(
        candidates, "usage", stats=MemoryLoadStats(), usage=lambda c: used[c.provider.name]
    )
    assert names(ordered) == ["b", "c", "a"]
    # Without a rate limiter to ask, the order stays.
    assert names(balance(candidates, "usage", stats=MemoryLoadStats())) == ["a", "b", "c"]


def test_an_alias_keeps_its_order_unless_it_opts_in(fakes):
    alias = '[aliases]\nfast = ["c:gpt-4o-mini", "b:gpt-4o-mini", "a:gpt-4o-mini"]\n'
    stats = MemoryLoadStats()
    stats.measured("c", 1.0)
    stats.measured("b", 0.5)
    stats.measured("a", 0.1)
    for round_, (settings, expected) in enumerate(
        [
            (alias + '[balancing]\nstrategy = "fastest"\n', ["c", "b", "a"]),
            (alias + '[balancing.aliases]\nfast = "fastest"\n', ["a", "b", "c"]),
        ]
    ):
        router, _ = build({name: fakes(f"{name}{round_}").url for name in "abc"}, settings)
        candidates, _ = plan("fast", router.registry.by_name, router.registry.settings)
        strategy = router.registry.settings.balancing.strategy_for("fast", listed=True)
        assert names(balance(candidates, strategy, stats=stats)) == expected


def test_percentiles_need_enough_samples():
    stats = MemoryLoadStats()
    for latency in range(1, 10):
        stats.measured("a", latency / 10)
    assert stats.percentile("a", 50) is None
    stats.measured("a", 1.0)
    assert stats.percentile("a", 50) == 0.5
    assert stats.percentile("a", 100) == 1.0


def test_a_bad_strategy_is_a_settings_error():
    with pytest.raises(Exception, match="strategy"):
        parse_settings('[balancing]\nstrategy = "random"\n')
    assert BalancingSettings().strategy == "ordered"


# -- over real HTTP -----------------------------------------------------------------------


def test_weighted_calls_spread_by_weight(fakes):
    first, second = fakes("first"), fakes("second")
    router, _ = build(
        {"first": first.url, "second": second.url},
        settings='[balancing]\nstrategy = "weighted"\n[providers.second]\nweight = 3\n',
    )
    router = seeded(router)
    answered = Counter(router.complete(MODEL, MESSAGES).provider for _ in range(200))
    assert 0.65 < answered["second"] / 200 < 0.85
    assert answered["first"] + answered["second"] == 200


def test_least_busy_prefers_the_idle_provider_while_another_is_held(fakes):
    first, second = fakes("first"), fakes("second")
    router, _ = build(
        {"first": first.url, "second": second.url},
        settings='[balancing]\nstrategy = "least_busy"\n',
    )
    first.hold_before_last = threading.Event()
    held = router.stream(MODEL, MESSAGES)
    assert next(held).text and held.provider == "first"  # open, waiting before its last chunk
    assert router.stats.in_flight("first") == 1
    assert router.complete(MODEL, MESSAGES).provider == "second"
    first.hold_before_last.set()
    list(held)
    assert router.stats.in_flight("first") == 0
    assert router.complete(MODEL, MESSAGES).provider == "first"  # idle again: the order's


def test_fastest_prefers_the_fast_provider_after_warm_up(fakes):
    first, second = fakes("first"), fakes("second")
    router, _ = build(
        {"first": first.url, "second": second.url},
        settings='[balancing]\nstrategy = "fastest"\n',
    )
    first.fail_every_request = Fault(delay=0.2)
    warm_up = [router.complete(MODEL, MESSAGES).provider for _ in range(2)]
    assert sorted(warm_up) == ["first", "second"]  # each measured once
    assert {router.complete(MODEL, MESSAGES).provider for _ in range(5)} == {"second"}
    assert router.stats.latency("first") > router.stats.latency("second")


def test_the_default_strategy_tracks_nothing(fakes):
    first, second = fakes("first"), fakes("second")
    router, _ = build({"first": first.url, "second": second.url})
    for _ in range(3):
        assert router.complete(MODEL, MESSAGES).provider == "first"
    assert router.stats.latency("first") is None


def test_usage_sends_each_call_to_the_provider_furthest_from_its_limits(fakes):
    first, second = fakes("first"), fakes("second")
    router, _ = build(
        {"first": first.url, "second": second.url},
        settings='[balancing]\nstrategy = "usage"\n'
        "[providers.first]\nrpm = 10\n[providers.second]\nrpm = 20\n",
    )
    answered = [router.complete(MODEL, MESSAGES).provider for _ in range(6)]
    # first at 1/10 is further along than second at 1/20 or 2/20: second takes two in three.
    assert answered == ["first", "second", "second", "first", "second", "second"]


def test_balancing_an_alias_that_does_not_exist_is_a_settings_error(fakes):
    from hypotez_providers import ConfigError

    settings = '[aliases]\nfast = ["a:gpt-4o-mini"]\n[balancing.aliases]\nfsat = "weighted"\n'
    router, _ = build({"a": fakes("a").url}, settings)
    with pytest.raises(
        ConfigError, match="'fsat', which is neither an alias nor a route"
    ) as raised:
        router.registry.check_settings()
    assert "fast" in str(raised.value)


# -- shared on Redis (a real redis-server; skipped when it is not installed) ----------------


@pytest.fixture
def redis(tmp_path):
    from tests._redis import running_redis

    with running_redis(tmp_path) as server:
        yield server


def test_stats_on_redis_are_seen_by_another_connection(redis):
    from hypotez_providers.state import RedisConnection
    from hypotez_providers.state.redis_load import RedisLoadStats

    one, other = (
        RedisLoadStats(RedisConnection(redis.url)),
        RedisLoadStats(RedisConnection(redis.url)),
    )
    one.started("a")
    one.started("a")
    other.finished("a")
    assert one.in_flight("a") == other.in_flight("a") == 1
    for latency in (0.2, 0.4) * 5:
        one.measured("a", latency)
    assert other.latency("a") == pytest.approx(one.latency("a"))
    assert 0.2 < other.latency("a") < 0.4
    assert other.percentile("a", 90) == 0.4
    assert other.in_flight("b") == 0 and other.latency("b") is None


def test_least_busy_on_redis_sees_a_request_held_by_another_router(redis, fakes):
    first, second = fakes("first"), fakes("second")
    settings = f'[state]\nurl = "{redis.url}"\n[balancing]\nstrategy = "least_busy"\n'
    holder, _ = build({"first": first.url, "second": second.url}, settings)
    asker, _ = build({"first": first.url, "second": second.url}, settings)
    assert type(asker.stats).__name__ == "RedisLoadStats"
    first.hold_before_last = threading.Event()
    held = holder.stream(MODEL, MESSAGES)
    assert next(held).text and held.provider == "first"
    assert asker.complete(MODEL, MESSAGES).provider == "second"
    first.hold_before_last.set()
    list(held)
    assert asker.complete(MODEL, MESSAGES).provider == "first"


def test_stats_fall_back_to_memory_when_redis_is_gone(redis):
    from hypotez_providers.state import RedisConnection
    from hypotez_providers.state.redis_load import RedisLoadStats

    stats = RedisLoadStats(RedisConnection(redis.url))
    redis.stop()
    stats.started("a")
    stats.measured("a", 0.3)
    assert stats.in_flight("a") == 1
    assert stats.latency("a") == 0.3


# -- invariants (hypothesis) ---------------------------------------------------------------


class _Provider:
    def __init__(self, name, weight):
        self.name = name
        self.settings = type("S", (), {"weight": weight})()


class _Candidate:
    def __init__(self, name, group, weight):
        self.provider = _Provider(name, weight)
        self.group = group


_ROWS = st.lists(
    st.tuples(st.integers(0, 3), st.floats(0, 5), st.integers(0, 4), st.floats(0, 2)),
    max_size=8,
)
_STRATEGIES = st.sampled_from(["ordered", "weighted", "least_busy", "fastest", "usage"])


@hypothesis_settings(max_examples=200, deadline=None)
@given(_ROWS, _STRATEGIES, st.integers(0, 2**32))
def test_balancing_only_permutes_within_groups(rows, strategy, seed):
    groups = sorted(group for group, *_ in rows)  # consecutive groups, as plan() makes them
    candidates = [
        _Candidate(f"p{i}", group, row[1])
        for i, (group, row) in enumerate(zip(groups, rows, strict=True))
    ]
    stats = MemoryLoadStats()
    for candidate, (_, _, busy, latency) in zip(candidates, rows, strict=True):
        for _ in range(busy):
            stats.started(candidate.provider.name)
        stats.measured(candidate.provider.name, latency)
    ordered = balance(
        candidates,
        strategy,
        stats=stats,
        rng=random.Random(seed),
        usage=lambda c: c.provider.settings.weight,
    )
    assert sorted(map(id, ordered)) == sorted(map(id, candidates))  # a permutation
    assert [c.group for c in ordered] == [c.group for c in candidates]  # groups stay put
