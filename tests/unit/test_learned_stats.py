"""How learned statistics summarise samples (the Lua script must agree; see the integration test)."""

from shared.routing.learned import StatsWindow, summarise


def test_ratio_needs_a_full_window_and_is_the_mean_of_the_newest():
    w = StatsWindow(size=4, latency_min=2)
    assert summarise([(100, 50, 10)] * 3, w) == (None, 10.0)
    samples = [(100, 200, 10), (100, 100, 30), (100, 100, 20), (100, 0, 40), (100, 900, 5)]  # newest first
    ratio, latency = summarise(samples, w)
    assert ratio == (2.0 + 1.0 + 1.0 + 0.0) / 4
    assert latency == 25.0  # median of 10, 30, 20, 40


def test_samples_without_latency_do_not_count_towards_the_median():
    w = StatsWindow(size=2, latency_min=2)
    assert summarise([(10, 5, None), (10, 5, 7)], w) == (0.5, None)
