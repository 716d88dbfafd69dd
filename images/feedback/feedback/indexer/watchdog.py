"""Pure logic of the consumer watchdog: when must the indexer close and recreate its Kafka consumer, and when has
recreating stopped helping (liveness fails, Kubernetes restarts the pod)?

Why: after a broker restart longer than the session timeout, librdkafka once never sent the consumer's JoinGroup
again (docs/feedback-pipeline.md, "Known defects"): the consumer stayed out of its group, consumed and committed
nothing, and only a new consumer (or process) got out of it. The watchdog notices two stalls:

- `no_assignment`: the consumer has not been a steady member of its group for `stall_after_s`. A member is a
  consumer that owns partitions, or that librdkafka reports in group state `up`/`steady` (a member with nothing to
  own, when there are more indexers than partitions, is a member: it is never recreated for that).
- `no_progress`: it is a member, messages wait behind its fetch position (librdkafka's statistics), consuming is
  not paused (a paused consumer waits for the search cluster on purpose), and nothing was consumed for
  `stall_after_s`.

Either fires only while the broker answers: while a stall lasts, the indexer probes the broker (a metadata request
by another client) every `probe_every_s` and once more when it is due; an unreachable broker restarts the clocks,
so the consumer gets the whole bound again from the last time the broker did not answer (no recreation during or
right after an outage, when librdkafka rejoins by itself). A recreation
that did not make the consumer a member that progresses by the next due stall counts as failed, as does one that
raised; `failures_to_die` of them in a row make `liveness_problem()` say why (the pod is then restarted), and the
watchdog keeps trying. The first healthy observation after a recreation clears it.

The module imports nothing but the standard library; the indexer feeds it observations and the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_ASSIGNMENT = "no_assignment"
NO_PROGRESS = "no_progress"
REASONS = (NO_ASSIGNMENT, NO_PROGRESS)
FAILURES_TO_DIE = 3  # failed recreations in a row before /healthz fails


@dataclass(frozen=True)
class Observation:
    """What one round of the indexer's loop saw of its consumer."""

    member: bool  # owns partitions, or librdkafka's fresh statistics say group state up/steady
    backlog: bool  # messages wait behind the fetch position of an owned partition and consuming is not paused
    consumed: bool  # at least one message was consumed this round


class ConsumerWatchdog:
    def __init__(
        self,
        stall_after_s: float,
        now: float,
        probe_every_s: float | None = None,
        failures_to_die: int = FAILURES_TO_DIE,
    ) -> None:
        if stall_after_s <= 0:
            raise ValueError(f"stall_after_s must be positive, not {stall_after_s!r}")
        probe_every_s = stall_after_s / 3 if probe_every_s is None else probe_every_s
        if not 0 < probe_every_s <= stall_after_s:
            raise ValueError(f"probe_every_s must be positive and at most stall_after_s, not {probe_every_s!r}")
        if failures_to_die < 1:
            raise ValueError(f"failures_to_die must be at least 1, not {failures_to_die!r}")
        self.stall_after_s = stall_after_s
        self.probe_every_s = probe_every_s
        self.probed_at = now  # last probe of the broker (or the start)
        self.failures_to_die = failures_to_die
        self.member_since = now  # last time it was a member (or the clocks restarted)
        self.progress_since = now  # last time it progressed or had nothing to do (or the clocks restarted)
        self.failures = 0  # failed recreations in a row
        self.pending = False  # a recreation whose outcome is not known yet
        self.last_failure = ""

    def observe(self, observation: Observation, now: float) -> None:
        if observation.member:
            self.member_since = now
        if not observation.member or observation.consumed or not observation.backlog:
            # out of the group is the other clock's business; consuming, or nothing to consume, is progress
            self.progress_since = now
        if observation.member and (observation.consumed or not observation.backlog):
            self.failures, self.pending, self.last_failure = 0, False, ""  # healthy: the last recreation helped

    def due(self, now: float) -> str | None:
        """The reason to recreate the consumer now (after checking that the broker answers), or None."""
        if now - self.member_since > self.stall_after_s:
            return NO_ASSIGNMENT
        if now - self.progress_since > self.stall_after_s:
            return NO_PROGRESS
        return None

    def probe_due(self, now: float) -> bool:
        """True when a stall has lasted `probe_every_s` and the broker was not probed for as long: probe it, and
        call `broker_unreachable` or `broker_answered`."""
        stalled = self.stalled_for(now) >= self.probe_every_s
        return stalled and now - self.probed_at >= self.probe_every_s

    def broker_answered(self, now: float) -> None:
        self.probed_at = now

    def stalled_for(self, now: float) -> float:
        return now - min(self.member_since, self.progress_since)

    def broker_unreachable(self, now: float) -> None:
        """The broker did not answer during a stall: not the consumer's fault; restart the clocks."""
        self.member_since = self.progress_since = self.probed_at = now

    def recreated(self, now: float, error: str | None = None) -> None:
        """A recreation was attempted (`error`: why it failed at once). The new consumer gets a whole bound."""
        if self.pending:  # the previous recreation did not help before this stall came due
            self.failures += 1
            self.last_failure = "the recreated consumer stalled again"
        if error is not None:
            self.failures += 1
            self.last_failure = error
        self.pending = error is None
        self.member_since = self.progress_since = now

    def liveness_problem(self) -> str | None:
        """None while recreating the consumer helps; else why the process should be restarted."""
        if self.failures < self.failures_to_die:
            return None
        return (
            f"the Kafka consumer stayed stuck through {self.failures} recreations in a row "
            f"(last: {self.last_failure}); the process needs a restart"
        )
