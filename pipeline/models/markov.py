"""Markov-chain attribution by removal effect, computed exactly from the absorbing chain.

The chain (order k = 1..4) has a start state, transient states and two absorbing states, conversion
and null. At order 1 the transient states are the channels; at order k a state is the tuple of the
last k channels of the path so far — shorter at the start of a path, where the history is padded
with "nothing yet" (so a path A > B > C at order 2 visits (A), (A,B), (B,C)). Every path contributes
start → its first state, one transition per following session, and its last state → conversion (a
converting journey) or → null (a path that did not convert). Transition probabilities are the
observed counts over all paths, normalised per state.

Removal effect of channel c: remove every state that contains c, sending whatever entered them to
null; RE(c) = 1 − P(conversion | c removed) / P(conversion). Both probabilities are absorption
probabilities of the chain, obtained by linear algebra, not by simulating paths — results are
deterministic and exact to floating-point precision. Shares are RE / ΣRE;
``credit_by_channel_share`` turns them into per-session credit.

Order 1 uses the first-passage identity: P(conversion | c removed) = f(start) − h(start→c) · f(c),
where f is the conversion probability from each state and h the probability of ever reaching c;
with N = (I − Q)⁻¹, h(start→c) = N[start, c] / N[c, c], so one inverse gives every channel's removal
effect. Higher orders (and order 1 beyond 2,000 channels) remove sets of states; there the absorption
probabilities of all removal variants are summed at once as the series Σ_t π_t r of the sparse chain
(π_t: where the probability mass from start is after t steps), stopped when the mass not yet
absorbed is below 1e-14 — a guaranteed bound on the error, not an estimate. Direct sparse LU is
not used: order-k chains fill in catastrophically.

Self-transitions (a channel following itself) are counted like any transition; at order 1 they
cannot change any absorption probability, at order ≥ 2 they create states such as (A, A). Set
``collapse_repeats`` to merge consecutive sessions of the same channel before counting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..errors import PipelineError
from ..journey_index import Credits, JourneyIndex
from ..progress import Progress, ensure
from .base import Model, register
from .channel_paths import ChannelPaths, PathSet, channel_paths, credit_by_channel_share
from .params import as_bool, as_int

if TYPE_CHECKING:
    import pandas as pd
    import scipy.sparse as sp
# pandas and scipy load when a Markov model runs, not when the registry lists models.

MAX_ORDER = 4
DENSE_STATES = 2000  # order 1 with at most this many states: dense inverse; beyond: the series
SERIES_TOLERANCE = 1e-14  # probability mass still unabsorbed when the series stops (error bound)
SERIES_MAX_STEPS = 200_000
SERIES_BLOCK_BYTES = 256 * 2**20  # memory for the mass matrix (plus as much for the product)


@dataclass(frozen=True)
class MarkovFit:
    """Channel-level result of the removal-effect model."""

    labels: np.ndarray  # channel labels
    removal_effect: np.ndarray  # RE per channel, in [0, 1]
    conversion_probability: float  # P(conversion) from start, full chain
    removed_probability: np.ndarray  # P(conversion) with each channel removed
    n_states: int  # transient states, start included

    @property
    def share(self) -> np.ndarray:
        total = self.removal_effect.sum()
        if total <= 0:
            return np.zeros_like(self.removal_effect)
        return self.removal_effect / total

    def table(self, conversions: float) -> pd.DataFrame:
        """Per channel: removal effect, share, and ``conversions`` split by share (as
        ChannelAttribution reports ``total_conversions``)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "channel": self.labels,
                "removal_effect": self.removal_effect,
                "share": self.share,
                "conversions": self.share * conversions,
            }
        )


@dataclass(frozen=True)
class _Chain:
    """Transient block Q (start = state 0), absorption-in-conversion vector r, state contents."""

    q: sp.csr_matrix | np.ndarray
    r: np.ndarray
    state_keys: Optional[np.ndarray]  # order ≥ 2: encoded channel tuple of states 1..m
    base: int  # digit base of the keys: n_channels + 1 (digit 0 = "nothing yet")


def _state_keys(paths: PathSet, order: int, base: int) -> np.ndarray:
    """Encode each session's state (its last ``order`` channels) as an int64, newest channel lowest."""
    pos = np.arange(paths.n_rows, dtype=np.int64) - paths.start[paths.journey]
    keys = paths.codes + 1
    shifted = np.empty_like(paths.codes)
    for lag in range(1, order):
        shifted[:lag] = -1
        shifted[lag:] = paths.codes[:-lag]
        digit = np.where(pos >= lag, shifted + 1, 0)
        keys = keys + digit * base**lag
    return keys


def _compact(keys: np.ndarray, key_space: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct keys, number 0.. of each key): np.unique, via bincount when keys are small."""
    if key_space <= 1 << 24:
        seen = np.bincount(keys, minlength=key_space) > 0
        number = np.cumsum(seen) - 1
        return np.flatnonzero(seen), number[keys]
    distinct, inverse = np.unique(keys, return_inverse=True)
    return distinct, inverse.ravel()


def _order1_counts(paths: PathSet, n_channels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channel → channel transition counts, first-channel counts and last-channel counts.

    Consecutive sessions over the whole array are counted at once; the pairs that straddle two
    journeys (last session of one → first of the next) are then taken back out.
    """
    codes, c = paths.codes, n_channels
    if paths.n_rows == 0:
        return np.zeros((c, c), dtype=np.int64), np.zeros(c, np.int64), np.zeros(c, np.int64)
    if paths.weight is not None:
        return _weighted_order1_counts(paths, c)
    pair = np.multiply(codes[:-1], c)
    pair += codes[1:]
    pairs = np.bincount(pair, minlength=c * c)
    first, last = codes[paths.start], codes[paths.last]
    pairs -= np.bincount(last[:-1] * c + first[1:], minlength=c * c)
    return pairs.reshape(c, c), np.bincount(first, minlength=c), np.bincount(last, minlength=c)


def _weighted_order1_counts(paths: PathSet, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_order1_counts`` of weighted paths: each path counts ``weight`` times (whole numbers in
    float64, so the counts are exactly those of the paths written out)."""
    codes, weight = paths.codes, paths.weights()
    inside = paths.journey[1:] == paths.journey[:-1]
    pair = codes[:-1][inside] * c + codes[1:][inside]
    pairs = np.bincount(pair, weights=weight[paths.journey[1:][inside]], minlength=c * c)
    first = np.bincount(codes[paths.start], weights=weight, minlength=c)
    last = np.bincount(codes[paths.last], weights=weight, minlength=c)
    return pairs.reshape(c, c), first, last


def _order1_dense_chain(paths: ChannelPaths, collapse: bool) -> _Chain:
    """Order 1 with few channels: the chain from transition counts built with bincount."""
    c = paths.n_channels
    n_transient = c + 1  # start, channels
    counts = np.zeros((n_transient, n_transient + 2))  # columns: start, channels, conversion, null
    for path_set, absorbing in ((paths.converting, c + 1), (paths.non_converting, c + 2)):
        if collapse:
            path_set = path_set.collapse_repeats()
        pairs, first, last = _order1_counts(path_set, c)
        counts[1:, 1 : c + 1] += pairs
        counts[0, 1 : c + 1] += first
        counts[1:, absorbing] += last
    out = counts.sum(axis=1)
    out[out == 0] = 1.0  # a channel seen nowhere (cannot happen) or no paths at all
    prob = counts / out[:, None]
    return _Chain(prob[:, :n_transient], prob[:, c + 1].copy(), None, c + 1)


def _build_chain(paths: ChannelPaths, order: int, collapse: bool) -> _Chain:
    import scipy.sparse as sp

    n_channels = paths.n_channels
    if order == 1 and n_channels + 3 <= DENSE_STATES:
        return _order1_dense_chain(paths, collapse)
    combined, converted = paths.combined(collapse)
    base = n_channels + 1
    if order == 1:
        state = combined.codes + 1  # 0 is start
        n_transient = n_channels + 1
        state_keys = None
    else:
        state_keys, number = _compact(_state_keys(combined, order, base), base**order)
        state = number.astype(np.int64) + 1
        n_transient = len(state_keys) + 1
    conversion, null = n_transient, n_transient + 1
    size = n_transient + 2

    previous = np.empty_like(state)
    previous[1:] = state[:-1]
    previous[combined.start] = 0
    absorbed = np.where(converted, conversion, null)
    src = np.concatenate((previous, state[combined.last]))
    dst = np.concatenate((state, absorbed))
    if combined.weight is None:
        weight = np.ones(len(src), dtype=np.float64)
    else:  # a distinct path of a summary: each of its transitions counts as often as the path
        weight = np.concatenate((combined.weight[combined.journey], combined.weight))
    counts = sp.csr_matrix((weight, (src, dst)), shape=(size, size))  # duplicates are summed
    out = np.asarray(counts[:n_transient].sum(axis=1)).ravel()
    out[out == 0] = 1.0
    prob = sp.csr_matrix(sp.diags(1.0 / out) @ counts[:n_transient])
    q = prob[:, :n_transient].tocsr()
    r = np.asarray(prob[:, [conversion]].todense()).ravel()
    return _Chain(q, r, state_keys, base)


def _order1_removed(chain: _Chain) -> tuple[float, np.ndarray]:
    """P(conversion) and, per channel, P(conversion | channel removed) by the first-passage identity
    P(conv | c removed) = f(start) − N[start, c] / N[c, c] · f(c), with N = (I − Q)⁻¹, f = N r."""
    import scipy.linalg

    n = chain.q.shape[0]
    fundamental = scipy.linalg.inv(np.eye(n) - chain.q)
    f = fundamental @ chain.r
    p = float(f[0])
    removed = p - fundamental[0, 1:] / np.diagonal(fundamental)[1:] * f[1:]
    return p, removed


def _states_by_channel(chain: _Chain, order: int, n_channels: int) -> list[np.ndarray]:
    """Transient state numbers (1..m) that contain each channel."""
    if chain.state_keys is None:  # order 1: channel c is state c + 1
        return [np.array([c + 1]) for c in range(n_channels)]
    keys = chain.state_keys
    digits = np.stack([(keys // chain.base**lag) % chain.base for lag in range(order)], axis=1)
    state_no, slot = np.nonzero(digits)
    channel = digits[state_no, slot] - 1
    pairs = np.unique(channel * (len(keys) + 1) + state_no + 1)
    channel, state = np.divmod(pairs, len(keys) + 1)
    bounds = np.searchsorted(channel, np.arange(n_channels + 1))
    return [state[bounds[c] : bounds[c + 1]] for c in range(n_channels)]


def _jump_chain(q: sp.csr_matrix, r: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """The same chain without self-transitions: rows rescaled by 1 / (1 − q_ss). Absorption
    probabilities are unchanged (a state's self-loops only delay its exit), and the series below
    converges faster when channels repeat."""
    import scipy.sparse as sp

    stay = q.diagonal()
    leave = 1.0 - stay  # > 0: every observed state has a transition out (its paths end)
    off = (q - sp.diags(stay)).tocsr()
    off.eliminate_zeros()
    scale = sp.diags(1.0 / leave)
    return (scale @ off).tocsr(), r / leave


def _series_removed(chain: _Chain, order: int, n_channels: int, progress: Progress) -> tuple[float, np.ndarray]:
    """P(conversion), and per channel P(conversion) with that channel's states removed, by pushing
    the probability mass forward from start through the chain, all channels at once.

    Column k of the mass matrix follows the chain with channel k's states removed (mass entering
    them is dropped, i.e. sent to null); at each step the mass absorbed into conversion is added up.
    The result is the absorption series Σ_t π_t r, stopped when the mass still in flight — an upper
    bound on what is left to add — is below ``SERIES_TOLERANCE`` in every column. Deterministic,
    with a guaranteed error bound; direct sparse LU is not used because order-k chains fill in
    catastrophically (order 4, 12 channels, 100k journeys: 21k states, 26M LU non-zeros, 30 s).
    """
    import scipy.sparse as sp

    q, r = _jump_chain(sp.csr_matrix(chain.q), chain.r)
    n = q.shape[0]
    forward = q.T.tocsr()
    removed_states = _states_by_channel(chain, order, n_channels)
    columns = n_channels + 1  # column 0: the full chain
    block = max(1, min(columns, SERIES_BLOCK_BYTES // (16 * n)))
    absorbed = np.zeros(columns)
    for lo in range(0, columns, block):
        hi = min(columns, lo + block)
        keep = np.ones((n, hi - lo))  # float: multiplying by a bool mask would cast every step
        for k in range(max(lo, 1), hi):
            keep[removed_states[k - 1], k - lo] = 0.0
        mass = np.zeros((n, hi - lo))
        mass[0] = 1.0
        for step in range(1, SERIES_MAX_STEPS + 1):
            absorbed[lo:hi] += r @ mass
            mass = forward @ mass
            mass *= keep
            # the mass in flight bounds what is left to absorb; checking it every 4th step only
            # costs up to 3 extra steps
            if step % 4 == 0 and mass.sum(axis=0).max() < SERIES_TOLERANCE:
                break
        else:
            raise PipelineError(
                f"markov order {order}: the chain did not absorb within {SERIES_MAX_STEPS} steps "
                "(paths loop between channels for very long); try a lower order or collapse_repeats"
            )
        progress(hi - 1, n_channels, "markov: removal effects")
    return float(absorbed[0]), absorbed[1:]


def fit_markov(
    paths: ChannelPaths,
    order: int = 1,
    collapse_repeats: bool = False,
    progress: Optional[Progress] = None,
) -> MarkovFit:
    """Removal effects of every channel in ``paths`` (exact absorbing-chain algebra)."""
    n_channels = paths.n_channels
    if paths.converting.n_journeys == 0 or n_channels == 0:
        zeros = np.zeros(n_channels)
        return MarkovFit(paths.labels, zeros, 0.0, zeros, 0)
    chain = _build_chain(paths, order, collapse_repeats)
    if isinstance(chain.q, np.ndarray):
        p, removed = _order1_removed(chain)
    else:
        p, removed = _series_removed(chain, order, n_channels, ensure(progress))
    removed = np.clip(removed, 0.0, p)
    effect = np.clip(1.0 - removed / p, 0.0, 1.0) if p > 0 else np.zeros(n_channels)
    return MarkovFit(paths.labels, effect, p, removed, chain.q.shape[0])


def markov(index: JourneyIndex, params: dict, context: dict) -> Credits:
    """Per-session credit from removal-effect shares (see ``credit_by_channel_share``)."""
    if index.n_rows == 0:
        return Credits(ihc=np.zeros(0))
    paths = channel_paths(index, context.get("non_converting"))
    # with a path summary, converting journeys are counted as distinct paths too (the same fit)
    fitted = paths.distinct() if hasattr(context.get("non_converting"), "non_conversions") else paths
    fit = fit_markov(fitted, params["order"], params["collapse_repeats"], context.get("progress"))
    return Credits(ihc=credit_by_channel_share(index, paths.converting, fit.share, paths.n_channels))


def _check(params: dict) -> dict:
    return {
        "order": as_int("markov", "order", params["order"], low=1, high=MAX_ORDER),
        "collapse_repeats": as_bool("markov", "collapse_repeats", params["collapse_repeats"]),
    }


register(
    Model(
        "markov",
        "How many conversions would be lost without each channel (its removal effect), learned from "
        "the journeys that converted and those that did not; each journey's credit goes to its "
        "channels in proportion.",
        markov,
        defaults={"order": 1, "collapse_repeats": False},
        needs_non_converting=True,
        check_params=_check,
    )
)
