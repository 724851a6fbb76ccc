"""A realistic, challenge-shaped demo database, deterministic per seed.

Shape (defaults): ≈450,000 sessions and 2,000 conversions over 10 days; the channel names of the real
challenge data; paid channels with per-session costs, unpaid ones without; engagement flags at the rates
seen in the real journeys; most users with one session; converting journeys mostly 1–2 sessions with a
long tail (the challenge's length distribution); some users converting twice (their journeys share
sessions); some conversions with no earlier session; a few sessions at exactly the conversion time.
Everything is generated with numpy at once — no loop per user or session.

Ids are shaped like the real data (and GA4, Snowplow or shop exports) by default: 64 lowercase hex
characters for session and conversion ids, 40 for user ids, like SHA-256 and SHA-1 digests. They are
keyed hashes of the row numbers, deterministic per seed and unique by construction (the first 64 bits
are a bijection of the row number). ``DemoSize(short_ids=True)`` (CLI ``--short-ids``) gives the old
short ids instead (``S0000000``, ``U0000000``, ``C000000``).
"""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .demo_size import DemoSize
from .errors import InputError, no_room, no_room_text

if TYPE_CHECKING:
    import pandas as pd
from .schema import INPUT_DDL

START = np.datetime64("2023-09-01T00:00:00", "s")


@dataclass(frozen=True)
class Channel:
    name: str
    share: float  # share of all (mostly browsing) sessions
    journey_share: float  # share of the sessions of converting journeys (challenge data)
    cpc: float  # mean cost per session in EUR; 0 = unpaid (no session_costs row)
    holder: float  # P(holder_engagement) in converting journeys (challenge data); browsing: less
    closer: float  # P(closer_engagement) likewise
    impressions: float = 0.0  # share of sessions that are ad views (impression_interaction=1)


# The 13 channel names of ../shared/data/challenge_journeys.json — their share of converting sessions
# and engagement rates measured there — plus three paid channels that only browse in that data.
# Costs per session are set so channels differ the way they do in practice (brand search and
# affiliates return several euros per euro, non-brand search and TikTok less than one).
CHANNELS = [
    Channel("Direct Traffic", 0.20, 0.224, 0.0, 0.87, 0.83),
    Channel("Organic Traffic", 0.17, 0.075, 0.0, 0.95, 0.69),
    Channel("Performance Max", 0.12, 0.208, 0.18, 0.91, 0.68),
    Channel("Newsletter & Email", 0.07, 0.201, 0.0, 0.96, 0.85),
    Channel("Paid Search Brand", 0.07, 0.121, 0.12, 0.97, 0.77),
    Channel("FB & IG Ads", 0.09, 0.062, 0.15, 0.94, 0.85, impressions=0.04),
    Channel("Paid Search Non Brand", 0.05, 0.014, 0.35, 0.96, 0.59),
    Channel("Affiliate & Partnerships", 0.03, 0.034, 0.10, 0.98, 0.78),
    Channel("Referral", 0.03, 0.030, 0.0, 1.00, 0.84),
    Channel("Social Organic", 0.03, 0.008, 0.0, 0.96, 0.71),
    Channel("Microsoft Ads", 0.015, 0.006, 0.25, 1.00, 0.74),
    Channel("TikTok Ads", 0.03, 0.003, 0.08, 1.00, 0.92, impressions=0.06),
    Channel("Untracked Conversions", 0.005, 0.015, 0.0, 0.00, 1.00),
    Channel("Display", 0.03, 0.010, 0.04, 0.60, 0.30, impressions=0.10),
    Channel("Pinterest Ads", 0.01, 0.005, 0.12, 0.80, 0.50, impressions=0.05),
    Channel("Price Comparison", 0.02, 0.020, 0.20, 0.90, 0.60),
]

# Sessions per converting journey in the challenge data (1..37), the tail pooled.
JOURNEY_LENGTHS = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 18, 37])
JOURNEY_WEIGHTS = np.array([1132, 412, 197, 81, 47, 30, 6, 14, 7, 4, 3, 2, 2, 2, 1], dtype=float)

TWICE_SHARE = 0.05  # conversions that are a user's second conversion
NO_SESSION_SHARE = 0.01  # conversions of users with no session at all
LATE_SESSION_SHARE = 0.015  # conversions whose user's sessions all come after it
SAME_SECOND_SHARE = 0.004  # conversions with a session at exactly the conversion time


def generate(size: DemoSize = DemoSize()) -> dict[str, pd.DataFrame]:
    """The three input tables as DataFrames (session_sources, conversions, session_costs)."""
    import pandas as pd

    if size.sessions < 10 * size.conversions or size.conversions < 10 or size.days < 2:
        raise InputError("demo database needs ≥10 conversions, ≥2 days and ≥10 sessions per conversion")
    rng = np.random.default_rng(size.seed)
    span = size.days * 86_400
    conv, conv_sessions = _converting(rng, size, span)
    n_browse = size.sessions - len(conv_sessions)
    browse = _browsing(rng, n_browse, span, first_user=int(conv["user"].max()) + 1)
    sessions = pd.concat([conv_sessions, browse], ignore_index=True)
    sessions = sessions.sort_values(["t", "user"], kind="stable").reset_index(drop=True)
    n = len(sessions)

    chan = sessions["channel"].to_numpy()
    converting = sessions["converting"].to_numpy()
    rate_h = np.array([c.holder for c in CHANNELS])[chan]
    rate_c = np.array([c.closer for c in CHANNELS])[chan]
    # Browsing sessions bounce more often: lower engagement than converting journeys.
    rate_h = np.where(converting, rate_h, rate_h * 0.45)
    rate_c = np.where(converting, rate_c, rate_c * 0.25)
    imp = np.array([c.impressions for c in CHANNELS])[chan]

    event_date, event_time = _dates_times(sessions["t"].to_numpy())
    session_ids = _ids(size, "S", np.arange(n))
    session_sources = pd.DataFrame(
        {
            "session_id": session_ids,
            "user_id": _ids(size, "U", sessions["user"].to_numpy()),
            "event_date": event_date,
            "event_time": event_time,
            "channel_name": np.array([c.name for c in CHANNELS], dtype=object)[chan],
            "holder_engagement": (rng.random(n) < rate_h).astype(np.int64),
            "closer_engagement": (rng.random(n) < rate_c).astype(np.int64),
            "impression_interaction": (rng.random(n) < imp).astype(np.int64),
        }
    )

    cpc = np.array([c.cpc for c in CHANNELS])[chan]
    paid = cpc > 0
    cost = cpc[paid] * rng.lognormal(mean=-0.18, sigma=0.6, size=int(paid.sum()))
    session_costs = pd.DataFrame({"session_id": session_ids[paid], "cost": np.round(cost, 4)})

    conv_date, conv_time = _dates_times(conv["t"].to_numpy())
    conversions = pd.DataFrame(
        {
            "conv_id": _ids(size, "C", np.arange(len(conv))),
            "user_id": _ids(size, "U", conv["user"].to_numpy()),
            "conv_date": conv_date,
            "conv_time": conv_time,
            "revenue": np.round(rng.lognormal(mean=4.2, sigma=0.7, size=len(conv)), 2),
        }
    )
    return {
        "session_sources": session_sources,
        "conversions": conversions,
        "session_costs": session_costs,
    }


def write_demo_db(path: str | Path, size: DemoSize = DemoSize(), overwrite: bool = False) -> dict:
    """Write the demo database to ``path`` (atomically: a temp file renamed at the end)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; choose another name or delete it first")
    tables = generate(size)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        _write_tables(tmp, tables)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)  # no half file left behind
        words = no_room(exc) if isinstance(exc, Exception) else ""
        if words:
            raise InputError(f"{path}: {no_room_text(words)}") from None
        raise
    tmp.replace(path)
    return {name: len(frame) for name, frame in tables.items()}


def _write_tables(tmp: Path, tables: dict) -> None:
    con = sqlite3.connect(tmp)
    try:
        # A fresh file renamed into place at the end: no journal needed for atomicity.
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        # Random (hex) keys land all over the primary-key indexes: keep them in memory while writing.
        con.execute("PRAGMA cache_size = -262144")
        con.executescript(INPUT_DDL)
        for name, frame in tables.items():
            cols = ", ".join(frame.columns)
            marks = ", ".join("?" * len(frame.columns))
            columns = [frame[c].to_numpy().tolist() for c in frame.columns]
            con.executemany(f"INSERT INTO {name} ({cols}) VALUES ({marks})", zip(*columns))
        con.commit()
    finally:
        con.close()


# ---- generation helpers ------------------------------------------------------------------------


# Per kind of id: the short prefix and width, and the hex length of the real-shaped ids.
ID_SHAPES = {"S": (7, 64), "U": (7, 40), "C": (6, 64)}


def demo_ids(kind: str, numbers: np.ndarray, short: bool = False, seed: int = DemoSize.seed) -> np.ndarray:
    """Ids of ``kind`` (S session, U user, C conversion) for the row ``numbers``, as str objects: the
    real data's hex shape, or with ``short`` the old short ids. The benchmarks build their data with it."""
    width, hex_len = ID_SHAPES[kind]
    return _short_ids(kind, numbers, width) if short else _hex_ids(numbers, hex_len, seed, kind)


def _ids(size: DemoSize, kind: str, numbers: np.ndarray) -> np.ndarray:
    return demo_ids(kind, numbers, size.short_ids, size.seed)


def _hex_ids(numbers: np.ndarray, hex_len: int, seed: int, kind: str) -> np.ndarray:
    """``hex_len`` lowercase hex characters per number: keyed splitmix64 hashes of the number, one 64-bit
    word per 16 characters. Each word is a bijection of the number (add a key, xor-shifts, odd
    multipliers), so equal numbers give equal ids and different numbers different ones."""
    n_words = -(-hex_len // 16)
    keys = np.random.default_rng([seed, ord(kind)]).integers(0, 2**63, size=n_words, dtype=np.uint64)
    x = np.asarray(numbers).astype(np.uint64)
    words = np.empty((len(x), n_words), dtype=">u8")  # big-endian: bytes in reading order
    with np.errstate(over="ignore"):
        for j, key in enumerate(keys):
            words[:, j] = _splitmix64(x + key)
    digits = _HEX_PAIRS[words.view(np.uint8)].reshape(len(x), -1)[:, : hex_len // 2]
    text = np.ascontiguousarray(digits).tobytes().decode("ascii")
    # One str per id, sliced out of the decoded block (2.5× faster than numpy's bytes → str casts).
    return np.array([text[i : i + hex_len] for i in range(0, len(text), hex_len)], dtype=object)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


# The two hex digits of every byte value, as one uint16 each (so a byte array indexes it directly).
_HEX_PAIRS = np.frombuffer("".join(f"{b:02x}" for b in range(256)).encode(), dtype=np.uint16)


def _short_ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    digits = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "").to_numpy(zero_copy_only=False)


def _dates_times(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """'YYYY-MM-DD' and 'HH:MM:SS' strings for offsets in seconds from START (via lookup tables)."""
    day, second = np.divmod(seconds.astype(np.int64), 86_400)
    days = np.datetime_as_string(START + np.arange(day.max() + 1).astype("timedelta64[D]"), unit="D")
    return days.astype(object)[day], _clock()[second]


@functools.lru_cache(maxsize=1)
def _clock() -> np.ndarray:
    """'HH:MM:SS' for every second of a day."""
    h, rest = np.divmod(np.arange(86_400), 3600)
    m, s = np.divmod(rest, 60)
    return np.array([f"{a:02d}:{b:02d}:{c:02d}" for a, b, c in zip(h, m, s)], dtype=object)


def _channel_draw(rng, n: int, converting: bool = False) -> np.ndarray:
    share = np.array([c.journey_share if converting else c.share for c in CHANNELS])
    return rng.choice(len(CHANNELS), size=n, p=share / share.sum())


def _converting(rng, size: DemoSize, span: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Conversions and the sessions of converting users (journeys plus a few later sessions)."""
    import pandas as pd

    m = size.conversions
    n_twice = int(round(m * TWICE_SHARE))
    n_users = m - n_twice
    # A journey per converting user; the twice-converting ones convert mid-journey and at its end.
    lengths = rng.choice(JOURNEY_LENGTHS, size=n_users, p=JOURNEY_WEIGHTS / JOURNEY_WEIGHTS.sum())
    twice = np.zeros(n_users, dtype=bool)
    twice[rng.choice(n_users, n_twice, replace=False)] = True
    lengths = np.where(twice, np.maximum(lengths, 2) + 1, lengths)
    kind = rng.random(n_users)
    no_session = kind < NO_SESSION_SHARE
    late = (kind >= NO_SESSION_SHARE) & (kind < NO_SESSION_SHARE + LATE_SESSION_SHARE)
    no_session &= ~twice
    late &= ~twice
    lengths = np.where(no_session, 0, lengths)

    conv_t = rng.integers(600, span - 600, size=n_users)
    user = np.arange(n_users)
    row_user = np.repeat(user, lengths)
    # Position counted back from the conversion: 0 = the last session before it.
    back = np.arange(len(row_user)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    back = np.repeat(lengths, lengths) - 1 - back
    # Gaps between consecutive sessions: minutes, hours or days (a mixture seen in real journeys).
    mix = rng.random(len(row_user))
    gap = np.where(
        mix < 0.6,
        rng.exponential(20 * 60, len(row_user)),
        np.where(mix < 0.87, rng.exponential(6 * 3600, len(row_user)), rng.uniform(1, 4, len(row_user)) * 86_400),
    )
    first_gap = rng.uniform(60, 40 * 60, len(row_user))  # last session → conversion
    gap = np.where(back == 0, first_gap, gap)
    # Offset before the conversion = the gaps from this session up to the conversion, summed:
    # rows run oldest → newest inside each user's block, so it is the block's reverse cumulative sum.
    offs = np.round(_reverse_block_cumsum(gap, lengths)).astype(np.int64)
    t = conv_t[row_user] - offs
    # Late users: all their sessions move after the conversion.
    t = np.where(late[row_user], conv_t[row_user] + offs, t)
    same_second = rng.random(n_users) < SAME_SECOND_SHARE
    t = np.where(same_second[row_user] & (back == 0), conv_t[row_user], t)
    keep = (t >= 0) & (t < span)
    sessions = pd.DataFrame({"user": row_user[keep], "t": t[keep], "channel": _journey_channels(rng, row_user)[keep]})
    # A few sessions after the conversion (returning customers).
    after_users = user[(rng.random(n_users) < 0.2) & ~no_session]
    after_t = conv_t[after_users] + rng.integers(600, 3 * 86_400, len(after_users))
    after = pd.DataFrame({"user": after_users, "t": after_t, "channel": _channel_draw(rng, len(after_users))})
    sessions = pd.concat([sessions, after[after["t"] < span]], ignore_index=True)
    sessions["converting"] = True

    # Twice-converting users also convert right after their second-to-last session (or, where that
    # session fell before the data window, an hour or two before their last conversion).
    mid = keep & twice[row_user] & (back == 1)
    first_t = conv_t - rng.integers(3600, 7200, n_users)
    first_t[row_user[mid]] = t[mid] + rng.integers(60, 1800, int(mid.sum()))
    first = pd.DataFrame({"user": user[twice], "t": np.clip(first_t[twice], 0, span - 1)})
    conv_rows = [pd.DataFrame({"user": user, "t": conv_t}), first]
    conv = pd.concat(conv_rows, ignore_index=True)
    conv = conv[conv["t"] < span].sort_values(["t", "user"], kind="stable").reset_index(drop=True)
    return conv, sessions


def _reverse_block_cumsum(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """For consecutive blocks of ``lengths`` rows: the sum of each value and all later ones in its block."""
    if len(values) == 0:
        return values.astype(float)
    csum = np.cumsum(values)
    ends = np.cumsum(lengths)[lengths > 0] - 1
    block_total_end = np.repeat(csum[ends], lengths[lengths > 0])
    return block_total_end - csum + values


def _journey_channels(rng, row_user: np.ndarray) -> np.ndarray:
    """Channels of converting journeys: users tend to come back through the same channel."""
    n = len(row_user)
    fresh = _channel_draw(rng, n, converting=True)
    if n == 0:
        return fresh
    repeat = rng.random(n) < 0.55
    same_user = np.r_[False, row_user[1:] == row_user[:-1]]
    out = fresh.copy()
    # Carry the previous session's channel forward where the user repeats it (a vectorised ffill).
    take_prev = repeat & same_user
    idx = np.where(~take_prev, np.arange(n), 0)
    np.maximum.accumulate(idx, out=idx)
    return out[idx]


def _browsing(rng, n: int, span: int, first_user: int) -> pd.DataFrame:
    """Sessions of users who do not convert: mostly one session each, a geometric tail."""
    import pandas as pd

    if n <= 0:
        return pd.DataFrame({"user": [], "t": [], "channel": [], "converting": []})
    per_user = rng.geometric(0.78, size=n)  # mean ≈ 1.28 sessions per user
    csum = np.cumsum(per_user)
    n_users = int(np.searchsorted(csum, n)) + 1
    per_user = per_user[:n_users]
    per_user[-1] -= int(per_user.sum() - n)
    user = np.repeat(np.arange(n_users), per_user) + first_user
    # Time of day follows a daytime-heavy curve; a user's sessions cluster within a few days.
    day = rng.integers(0, span // 86_400, n_users)[user - first_user]
    hour_p = np.array(
        [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 4, 4.5, 4.5, 4.5, 4.5, 4.5, 4.5, 5, 5.5, 6, 6.5, 6, 5, 3.5, 2]
    )
    hour = rng.choice(24, size=n, p=hour_p / hour_p.sum())
    drift = np.round(rng.exponential(0.6, n)).astype(np.int64)
    # Days wrap around the window so the first and last days get as many sessions as the others.
    t = ((day + drift) % (span // 86_400)) * 86_400 + hour * 3600 + rng.integers(0, 3600, n)
    return pd.DataFrame({"user": user, "t": t, "channel": _channel_draw(rng, n), "converting": False})
