"""How learned statistics summarise samples (the Lua script must agree; see the integration test),
and why no one tenant can bend what another tenant's router sees."""

import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.routing.candidates import latency_key
from shared.routing.learned import StatsWindow, cut_by_caller, window_median, window_of

W = StatsWindow(size=50, tenant_share=10, min_samples=21)


def test_the_window_keeps_each_tenants_newest_share_then_the_newest_size():
    w = StatsWindow(size=4, tenant_share=2, min_samples=3)
    samples = [("a", 1.0), ("a", 2.0), ("a", 3.0), ("b", 4.0), ("c", 5.0), ("c", 6.0), ("b", 7.0)]  # newest first
    assert window_of(samples, w) == [("a", 1.0), ("a", 2.0), ("b", 4.0), ("c", 5.0)]
    assert window_median(samples, w) == 3.0  # median of 1, 2, 4, 5


def test_a_median_needs_min_samples_in_the_window():
    w = StatsWindow(size=10, tenant_share=2, min_samples=3)
    assert window_median([("a", 0.5)] * 9, w) is None  # one tenant holds two places: not enough
    assert window_median([("a", 0.5), ("a", 0.5), ("b", 0.9)], w) == 0.5


def test_an_answer_cut_by_the_callers_max_tokens_is_not_a_sample():
    assert cut_by_caller(1, 1) and cut_by_caller(300, 256)
    assert not cut_by_caller(10, 256) and not cut_by_caller(10_000, None)


def test_latency_is_learned_per_reasoning_effort():
    assert latency_key("gpt-5.6-sol@openai", None) == "gpt-5.6-sol@openai"
    assert latency_key("gpt-5.6-sol@openai", "low") == "gpt-5.6-sol@openai~low"


honest = st.lists(st.tuples(st.sampled_from(["t1", "t2", "t3", "t4", "t5", "t6"]),
                            st.floats(min_value=0.0, max_value=20.0, allow_nan=False)), max_size=120)
attack = st.lists(st.tuples(st.integers(min_value=0, max_value=120),
                            st.floats(min_value=0.0, max_value=1e6, allow_nan=False)), max_size=200)


def interleave(others: list[tuple[str, float]], attacker: list[tuple[int, float]]) -> list[tuple[str, float]]:
    """The attacker's samples inserted among the others' at the positions it chose (newest first)."""
    out = list(others)
    for position, value in attacker:
        out.insert(min(position, len(out)), ("attacker", value))
    return out


@settings(max_examples=400, deadline=None)
@given(others=honest, attacker=attack, window=st.sampled_from([W, StatsWindow(size=12, tenant_share=3, min_samples=7)]))
def test_one_tenant_moves_what_others_see_by_at_most_its_share_of_ranks(others, attacker, window):
    """The bound: let s_1 <= ... <= s_m be the values the window would hold without the attacker
    and k its tenant share. Whatever the attacker sends, in any order and amount, the published
    median lies between s_(ceil(m/2) - k) and s_(floor(m/2) + 1 + k) (ranks clipped to 1..m),
    and so never outside the range of the other tenants' own samples. With k = 10 of 50 that is
    between the 15th and 36th of 50 ranks: the 28th..72nd percentile of what the others saw."""
    k = window.tenant_share
    without = sorted(v for _, v in window_of(others, window))
    bent = window_median(interleave(others, attacker), window)
    m = len(without)
    if window_median(others, window) is not None:
        assert bent is not None  # the attacker cannot unpublish the others' figure either
    if bent is None:
        return
    assert m > 0  # a published window is never the attacker's alone
    low = without[max(1, -(-m // 2) - k) - 1]
    high = without[min(m, m // 2 + 1 + k) - 1]
    assert low <= bent <= high


@given(others=honest)
def test_without_an_attacker_the_figure_is_the_plain_median_of_the_window(others):
    kept = [v for _, v in window_of(others, W)]
    assert window_median(others, W) == (statistics.median(kept) if len(kept) >= W.min_samples else None)
