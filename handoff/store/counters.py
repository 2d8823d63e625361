"""Handoff counters in Redis: one hash per day and dimension (`Keys.stats`), kept
`STATS_TTL`. What a handoff's change adds to them is worked out here from handoff/stats.py
(`counter_changes`, written by handoff/store/handoffs.py in the handoff's own transaction);
`read_stats` reads a period's figures in one round trip, summing days in Redis (the
`_SUM_HASHES` script below).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cached_property

from .. import stats
from .base import StoreBase
from .keys import Keys

log = logging.getLogger(__name__)

# The counters of several days summed into one reply (fields `<group>|<counter>`), so a
# period's figures cross the network once instead of once per day.
# KEYS: the day hashes. Returns field, total, field, total…
_SUM_HASHES = """
local totals, order = {}, {}
for i = 1, #KEYS do
  local fields = redis.call('HGETALL', KEYS[i])
  for j = 1, #fields, 2 do
    local name = fields[j]
    if totals[name] == nil then
      totals[name] = 0
      order[#order + 1] = name
    end
    totals[name] = totals[name] + tonumber(fields[j + 1])
  end
end
local out = {}
for _, name in ipairs(order) do
  out[#out + 1] = name
  out[#out + 1] = totals[name]
end
return out
"""


def counter_changes(before, after: dict) -> dict[str, dict[str, int]]:
    """Counter increments (hash key → field → delta) for a handoff going from `before`
    (a document, its facts, or None when new) to `after`.

    Figures must never stand in the way of a caller: a handoff whose counters cannot be
    worked out is still stored (and logged), uncounted."""
    try:
        return {Keys.stats(day, dimension): fields
                for (day, dimension), fields in stats.fact_changes(before, after).items()}
    except Exception:  # noqa: BLE001
        log.exception("handoff %s: counters not updated", after.get("id"))
        return {}


def counted_facts(doc: dict):
    """What a stored handoff counts as (handoff/stats.py), or None when that cannot be
    worked out (logged; its later changes are then left uncounted)."""
    try:
        return stats.handoff_facts(doc)
    except Exception:  # noqa: BLE001
        log.exception("handoff %s: counters not updated", doc.get("id"))
        return None


class CounterStore(StoreBase):
    @cached_property
    def _sum_hashes(self):
        return self.redis.register_script(_SUM_HASHES)

    def read_stats(self, days: list[str], dimensions: Iterable[str],
                   per_day: Iterable[str] = ("day",)) -> dict[str, list[dict[str, str]]]:
        """Each dimension's counters for these days, in one round trip: a list with one hash
        per day for the `per_day` dimensions, else one hash summed over the days."""
        dimensions, per_day = list(dimensions), set(per_day)
        with self.redis.pipeline(transaction=False) as pipe:
            for dimension in dimensions:
                if dimension in per_day:
                    for day in days:
                        pipe.hgetall(Keys.stats(day, dimension))
                else:
                    self._sum_hashes(keys=[Keys.stats(day, dimension) for day in days], client=pipe)
            found = iter(pipe.execute())
        out = {}
        for dimension in dimensions:
            if dimension in per_day:
                out[dimension] = [next(found) for _ in days]
            else:
                flat = next(found)
                out[dimension] = [dict(zip(flat[0::2], flat[1::2]))]
        return out
