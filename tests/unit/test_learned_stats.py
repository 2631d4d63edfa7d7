"""How learned statistics summarise samples (the Lua script must agree; see the integration test)."""

from shared.routing.candidates import latency_key
from shared.routing.learned import StatsWindow, mean_ratio, median_latency


def test_ratio_needs_a_full_window_and_is_the_mean_of_the_newest():
    w = StatsWindow(size=4, latency_min=2)
    assert mean_ratio([(100, 50)] * 3, w) is None
    samples = [(100, 200), (100, 100), (100, 100), (100, 0), (100, 900)]  # newest first
    assert mean_ratio(samples, w) == (2.0 + 1.0 + 1.0 + 0.0) / 4


def test_latency_median_needs_enough_samples_of_the_newest_window():
    w = StatsWindow(size=4, latency_min=2)
    assert median_latency([10], w) is None
    assert median_latency([10, 30, 20, 40, 5], w) == 25.0  # median of the newest four


def test_latency_is_learned_per_reasoning_effort():
    assert latency_key("gpt-5.6-sol@openai", None) == "gpt-5.6-sol@openai"
    assert latency_key("gpt-5.6-sol@openai", "low") == "gpt-5.6-sol@openai~low"
