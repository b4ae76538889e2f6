"""Source article 004's two last exhibits, measured: the server that serves one client at a time
(its makespan grows with the clients; the bounded server's stays flat up to its bound), and the
loop that polls instead of sleeping (it spends its wait on the CPU; awaiting readiness does
not). The generic properties (broken fails, fixed passes, every backend) are
tests/test_footguns.py's."""

from __future__ import annotations

import pytest

from patterns.footguns import busy_poll, one_at_a_time
from patterns.footguns.busy_poll import awaiting_readiness, polling
from patterns.footguns.one_at_a_time import bounded

pytestmark = pytest.mark.anyio

# Shorter than the exhibit's 100 ms: the lower bounds below hold whatever the machine's load,
# and the upper ones leave a whole delay of room.
DELAY = 0.05
# The exhibit's quarter of a second, shortened too: thousands of tries of recv() all the same.
WAIT_S = 0.2


# One at a time, four more clients take four more delays, and the last client waits for all
# the others; the bounded server takes about one delay for two clients or six (within its
# bound), no client waiting a delay, and two rounds once the clients outnumber the bound.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_makespan_grows_one_at_a_time_and_stays_flat_up_to_the_bound(
    anyio_backend: object,
) -> None:
    measure = one_at_a_time.measure
    serial = [await measure(one_at_a_time.one_at_a_time, clients, DELAY) for clients in (2, 6)]
    assert serial[1].makespan - serial[0].makespan > 3 * DELAY
    assert max(serial[1].waits) > 4 * DELAY
    together = [await measure(bounded, clients, DELAY, bound=6) for clients in (2, 6)]
    assert together[1].makespan - together[0].makespan < DELAY
    assert together[1].makespan < 2 * DELAY
    assert max(together[1].waits) < DELAY
    over_the_bound = await measure(bounded, 6, DELAY, bound=3)
    assert over_the_bound.makespan > 2 * DELAY


# Over the same wall-clock wait for input, the polling loop never sleeps: it spends most of the
# wait on the CPU (all of a core when the machine is quiet), or, on a busy machine, runnable and
# queued for one. Awaiting readiness sleeps in poll(2) until the input comes: under a tenth of
# the polling loop's CPU time (well under 1% of the wait).
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_polling_burns_the_wait_on_the_cpu_and_awaiting_does_not(
    anyio_backend: object,
) -> None:
    busy = await busy_poll.measure(polling, WAIT_S)
    idle = await busy_poll.measure(awaiting_readiness, WAIT_S)
    for waited in (busy, idle):
        assert waited.wall > 0.9 * WAIT_S  # the same wait (a timer may fire a ms early)
    assert busy.awake > 0.6
    assert busy.share > 0.1
    assert busy.tries > 100
    assert idle.cpu < busy.cpu / 10
    assert idle.awake < 0.1
    assert idle.tries <= 3
