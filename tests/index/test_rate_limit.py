"""RateLimit's token bucket on a fake clock: bursts of twice the rate, then one request per 1/rate seconds, per
client; the refusal says when to retry."""

from __future__ import annotations

import pytest

from contrastkit.index.rate_limit import RateLimit


def test_the_bucket_allows_a_burst_then_the_rate_per_client():
    now = [100.0]
    limit = RateLimit(app=None, rate=2.0, clock=lambda: now[0])
    assert [limit.take("a") for _ in range(4)] == [0.0] * 4  # a burst of 2 x rate
    assert limit.take("a") == pytest.approx(0.5)  # empty: the next token in 1 / rate seconds
    assert limit.take("b") == 0.0  # another client has its own bucket
    now[0] += 0.5
    assert limit.take("a") == 0.0 and limit.take("a") > 0
    now[0] += 60  # idle: the bucket is full again, not fuller
    assert [limit.take("a") for _ in range(5)][-2:] == [0.0, pytest.approx(0.5)]
    with pytest.raises(ValueError, match="must be > 0"):
        RateLimit(app=None, rate=0)
