"""What the front end tells a client about one trade, from the answers of its attempts, with no I/O.

A trade may take several attempts: the leader dies or freezes mid-call, a new one is selected,
the trade is redone under the same key. Each attempt ends in one of three ways:

- a definite answer from a leader (executed, or refused): that is the answer;
- a definite "not logged" (NOT_LEADER, or UNAVAILABLE: no majority, nothing logged);
- no way to tell (the call failed or timed out after it may have reached a leader, or the
  leader answered IN_DOUBT: logged, not yet known committed). From then on the trade may
  commit later, whatever other leaders say, until one answers it definitely.

When the request's time is up, the client gets 503 only if no attempt could have logged the
trade (nothing was executed and nothing will be), else 504: retry with the same key.
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
    maybe_logged: bool = False

    def ended(self, attempt: Attempt) -> Final | None:
        """The end of one attempt: the final outcome, or None to try again (within the time)."""
        if attempt is Attempt.DEFINITE:
            return Final.ANSWERED
        if attempt is Attempt.IN_DOUBT:
            self.maybe_logged = True
            return None
        if attempt is Attempt.UNAVAILABLE and not self.maybe_logged:
            # No majority, and nothing of this trade can be in any log: definite, and prompt.
            return Final.UNAVAILABLE
        # After an attempt that may have logged it, a leader without a majority cannot tell
        # whether that entry will still commit elsewhere: keep asking until the time is up.
        return None

    def no_leader(self) -> Final | None:
        """No leader could be selected: 503 at once if nothing can be pending, else try on."""
        return None if self.maybe_logged else Final.UNAVAILABLE

    def time_is_up(self) -> Final:
        return Final.UNKNOWN if self.maybe_logged else Final.UNAVAILABLE
