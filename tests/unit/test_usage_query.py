"""How `GET /v1/usage` and `spend report` read their grouping and UTC range."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import InvalidRequest
from shared.usage import GroupBy, UsageQuery

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


def test_defaults_are_the_last_30_days_by_day():
    q = UsageQuery.parse(None, None, None, now=NOW)
    assert (q.group_by, q.start, q.end) == (GroupBy.DAY, NOW - timedelta(days=30), NOW)


def test_a_date_as_to_includes_that_whole_day_and_times_are_turned_to_utc():
    q = UsageQuery.parse("model", "2026-02-01T01:00:00+02:00", "2026-02-28", now=NOW)
    assert q.start == datetime(2026, 1, 31, 23, tzinfo=UTC) and q.end == datetime(2026, 3, 1, tzinfo=UTC)
    assert UsageQuery.parse(None, "2026-02-01t00:00:00z", None, now=NOW).start == datetime(2026, 2, 1, tzinfo=UTC)


def test_366_days_is_the_longest_range():
    assert UsageQuery.parse(None, "2025-01-01", "2025-12-31", now=NOW).end == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidRequest) as e:
        UsageQuery.parse(None, "2024-01-01", "2025-01-02", now=NOW)
    assert e.value.param == "to"


@pytest.mark.parametrize(("args", "param"), [
    (("week", None, None), "group_by"),
    ((None, "20260101", None), "from"),
    ((None, "0001-01-01T00:00:00+01:00", None), "from"),
    ((None, None, "0001-01-05"), "to"),
    ((None, None, "9999-12-31"), "to"),
    ((None, "2026-03-10T12:30:00Z", None), "from"),  # empty range
])
def test_values_it_cannot_use_are_refused_naming_the_param(args, param):
    with pytest.raises(InvalidRequest) as e:
        UsageQuery.parse(*args, now=NOW)
    assert e.value.param == param and e.value.code == "invalid_value"
