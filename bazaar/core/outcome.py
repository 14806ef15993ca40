"""What the front end tells a client about one trade, from the answers of its attempts, with no I/O.

A trade may take several attempts: the leader dies or freezes mid-call, a new one is selected,
the trade is redone under the same key. Each attempt ends in one of three ways:

- a definite answer from a leader (executed, or refused): that is the answer;
- a definite "not logged" (NOT_LEADER, or UNAVAILABLE: no majority, nothing logged);
- no way to tell (the call failed or timed out after it may have reached a leader, or the
  leader answered IN_DOUBT: logged, not yet known committed). From then on the trade may
  commit later, whatever other leaders say, until one answers it definitely.

When the request's time is up, the client gets 503 only if no attempt could have logged the
trade and no earlier request can have either (nothing was executed and nothing will be), else
504: retry with the same key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Attempt(enum.Enum):
    DEFINITE = "definite"  # executed or refused: the leader's answer is final
    NOT_LOGGED = "not logged"  # the leader logged nothing: try again (another leader may serve)
    UNAVAILABLE = "unavailable"  # no majority; nothing logged by this leader
    IN_DOUBT = "in doubt"  # logged, or maybe logged, and not known committed


class Final(enum.Enum):
    ANSWERED = "answered"  # give the client the definite answer
    UNAVAILABLE = "unavailable"  # 503: nothing was executed and nothing will be
    UNKNOWN = "unknown"  # 504: retry with the same Idempotency-Key


@dataclass
class TradeAttempts:
    """`fresh_key`: the front end made the key for this request, so no earlier request can have
    logged the trade. A client's key may have been sent before (a retry after a 504): then only
    a leader that looked the key up can say the trade is in no log."""

    fresh_key: bool = True
    maybe_logged: bool = False

    def ended(self, attempt: Attempt) -> Final | None:
        """The end of one attempt: the final outcome, or None to try again (within the time)."""
        if attempt is Attempt.DEFINITE:
            return Final.ANSWERED
        if attempt is Attempt.IN_DOUBT:
            self.maybe_logged = True
            return None
        if attempt is Attempt.UNAVAILABLE and not self.maybe_logged:
            # A serving leader found nothing under the key and has no majority: since its own
            # epoch is committed, nothing under the key can commit anywhere. Definite, and prompt.
            return Final.UNAVAILABLE
        # After an attempt that may have logged it, a leader without a majority cannot tell
        # whether that entry will still commit elsewhere: keep asking until the time is up.
        return None

    def no_leader(self) -> Final | None:
        """No leader could be selected: 503 at once if nothing can be pending, else try on."""
        return Final.UNAVAILABLE if self._nothing_pending else None

    def time_is_up(self) -> Final:
        return Final.UNAVAILABLE if self._nothing_pending else Final.UNKNOWN

    @property
    def _nothing_pending(self) -> bool:
        return self.fresh_key and not self.maybe_logged
