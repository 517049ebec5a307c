"""The ARQ managed parameters: their defaults, declared once, and the scenario keys that set them.

Every user of COP-1 (:class:`~linkstack.arq.fop1.Fop1`, the RF hop's
:class:`~linkstack.hops.rf.RfHopConfig`, the scenario's round trip and the tuner) and of the
ISL hop's selective repeat takes its defaults from here, so that a hop built from a scenario,
from the hop configuration or from the engine alone behaves the same.

COP-1 (CCSDS 232.1-B-2): the Blue Book leaves the values of the managed parameters to the
mission (§5.1.4, "managed parameters"); the ones below are this project's:

* ``window_width`` K = 10 (FOP_Sliding_Window_Width, §5.1.4): ten frames in flight cover the
  round trip of a LEO pass at the uplink rates of the shipped profiles;
* ``t1_initial`` = 3.0 s (Timer_Initial_Value): above the round trip of every shipped RF link
  (light time, the longest CLTU's serialization, the CLCW interval of 1 s) with margin;
* ``transmission_limit`` = 3 (Transmission_Limit): a frame is sent at most three times before
  the FOP alerts, then the operator recovers (``recovery_wait``);
* ``farm_window_width`` W = 2K (FARM_Sliding_Window_Width, §6.1.8.2: even, at least 2K).

The scenario keys (``[links.<name>.stack.arq_params]``, :data:`ARQ_PARAMS`) are checked by
name, type and range when a scenario is read: an unknown key is an error, not a silent no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ARQ_PARAMS",
    "BC_HOLD",
    "CLCW_INTERVAL",
    "COP1_T1_INITIAL",
    "COP1_TRANSMISSION_LIMIT",
    "COP1_WINDOW_WIDTH",
    "RECOVERY_WAIT",
    "SR_FEC",
    "SR_INITIAL_RTO",
    "SR_MAX_RTO",
    "SR_MIN_RTO",
    "SR_RTO_BACKOFF",
    "SR_WINDOW",
    "ArqParam",
    "farm_window_width",
]

# -- COP-1 (FOP-1 / FARM-1, 232.1-B-2) ---------------------------------------------------------
COP1_WINDOW_WIDTH = 10
"""FOP_Sliding_Window_Width K (§5.1.4)."""
COP1_T1_INITIAL = 3.0
"""Timer_Initial_Value T1, seconds (§5.1.4)."""
COP1_TRANSMISSION_LIMIT = 3
"""Transmission_Limit (§5.1.4)."""
CLCW_INTERVAL = 1.0
"""The spacecraft sends a frame with a fresh CLCW at least this often, seconds."""
RECOVERY_WAIT = 1.0
"""After an alert, how long the operator waits for a CLCW to recover, seconds."""
BC_HOLD = 0.0
"""After a control (BC) frame, no new AD frame for this long, seconds (0: off)."""


def farm_window_width(window_width: int) -> int:
    """FARM_Sliding_Window_Width W for FOP window K: 2K, the smallest even W >= 2K (§6.1.8.2)."""
    return max(2 * window_width, 2)


# -- selective repeat of the ISL hop (linkstack.arq.sr, RFC 6298-style timer) ------------------
SR_WINDOW = 512
"""Frames in flight."""
SR_INITIAL_RTO = 0.2
"""Retransmission timeout before the first round-trip sample, seconds."""
SR_MIN_RTO = 0.005
"""Lower bound of the retransmission timeout, seconds."""
SR_MAX_RTO = 5.0
"""Upper bound of the retransmission timeout, seconds."""
SR_RTO_BACKOFF = 1.5
"""Factor applied to the timeout at each expiry."""
SR_FEC = True
"""Hybrid ARQ: the link is RS coded (probe on timeout)."""


@dataclass(frozen=True)
class ArqParam:
    """One scenario key of ``arq_params``: its type, range, default and what it sets.

    ``kind`` is ``"int"``, ``"float"`` or ``"bool"``; ``lo`` is exclusive when ``lo_open``.
    ``arq`` says whose parameter it is: ``"cop-1"`` (the forward direction of an RF hop),
    ``"cop-1-return"`` (its return direction) or ``"sr"`` (an ISL hop, both directions).
    """

    kind: str
    default: int | float | bool | None
    arq: str
    help: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False


ARQ_PARAMS: dict[str, ArqParam] = {
    "window_width": ArqParam(
        "int", COP1_WINDOW_WIDTH, "cop-1", "FOP-1 sliding window width K", lo=1, hi=255
    ),
    "farm_window_width": ArqParam(
        "int",
        None,
        "cop-1",
        "FARM-1 sliding window width W (even, >= 2K; default 2K)",
        lo=2,
        hi=254,
    ),
    "t1_initial": ArqParam(
        "float", COP1_T1_INITIAL, "cop-1", "FOP-1 Timer_Initial_Value, s", lo=0.0, lo_open=True
    ),
    "transmission_limit": ArqParam(
        "int", COP1_TRANSMISSION_LIMIT, "cop-1", "FOP-1 Transmission_Limit", lo=1
    ),
    "recovery_wait": ArqParam(
        "float", RECOVERY_WAIT, "cop-1", "wait for a CLCW after an alert, s", lo=0.0, lo_open=True
    ),
    "bc_hold": ArqParam(
        "float", BC_HOLD, "cop-1", "no AD frame this long after a BC frame, s", lo=0.0
    ),
    "clcw_interval": ArqParam(
        "float",
        CLCW_INTERVAL,
        "cop-1-return",
        "a fresh CLCW at least this often, s",
        lo=0.0,
        lo_open=True,
    ),
    "window": ArqParam("int", SR_WINDOW, "sr", "selective-repeat window", lo=1, hi=2**31 - 1),
    "initial_rto": ArqParam(
        "float", SR_INITIAL_RTO, "sr", "initial retransmission timeout, s", lo=0.0, lo_open=True
    ),
    "min_rto": ArqParam(
        "float", SR_MIN_RTO, "sr", "least retransmission timeout, s", lo=0.0, lo_open=True
    ),
    "max_rto": ArqParam(
        "float", SR_MAX_RTO, "sr", "greatest retransmission timeout, s", lo=0.0, lo_open=True
    ),
    "rto_backoff": ArqParam("float", SR_RTO_BACKOFF, "sr", "timeout factor at each expiry", lo=1.0),
    "fec": ArqParam("bool", SR_FEC, "sr", "hybrid ARQ (the link is RS coded)"),
}
"""The keys of ``[links.<name>.stack.arq_params]``."""
