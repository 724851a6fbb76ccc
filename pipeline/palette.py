"""One colour per channel, the same in every chart.

The channel names of the real data (and the demo database) have fixed colours, chosen so that any two
of them differ visibly: no two are closer than ``MIN_DELTA_E`` in CIEDE2000 (tests/test_palette.py; Display,
Pinterest Ads, Price Comparison and TikTok Ads were picked for that, as the colours farthest from all others). Other channel
names get the unused colours of a second palette in name order, so the mapping depends only on the set
of channel names of the database — every chart of a database uses ``channel_colors`` of the full list.
"""

from __future__ import annotations

from typing import Iterable

# The least CIEDE2000 difference between two fixed colours (the closest pair, Direct Traffic and Microsoft
# Ads, is 16.1; Display and Affiliate & Partnerships, both brown before, were 12.9 and read as one colour).
MIN_DELTA_E = 15.0

FIXED = {
    "Direct Traffic": "#4C78A8",
    "Organic Traffic": "#72B7B2",
    "Performance Max": "#F58518",
    "Newsletter & Email": "#54A24B",
    "Paid Search Brand": "#E45756",
    "FB & IG Ads": "#B279A2",
    "Paid Search Non Brand": "#FF9DA6",
    "Affiliate & Partnerships": "#9D755D",
    "Referral": "#EECA3B",
    "Social Organic": "#BAB0AC",
    "Microsoft Ads": "#2F4B7C",
    "TikTok Ads": "#666600",
    "Untracked Conversions": "#7F7F7F",
    "Display": "#005533",
    "Pinterest Ads": "#880077",
    "Price Comparison": "#882200",
}
# For other names: Plotly's Dark24/Alphabet-like colours not used above.
EXTRA = [
    "#1F77B4",
    "#FF7F0E",
    "#9467BD",
    "#8C564B",
    "#E377C2",
    "#BCBD22",
    "#393B79",
    "#637939",
    "#8C6D31",
    "#843C39",
    "#7B4173",
    "#3182BD",
    "#E6550D",
    "#31A354",
    "#756BB1",
    "#636363",
    "#6B6ECF",
    "#B5CF6B",
    "#E7BA52",
    "#D6616B",
    "#CE6DBD",
    "#9ECAE1",
    "#FDAE6B",
    "#A1D99B",
]


def channel_colors(channels: Iterable[str]) -> dict[str, str]:
    """{channel: '#RRGGBB'} for every name: fixed where known, the rest assigned in name order."""
    names = sorted(set(channels))
    colors = {name: FIXED[name] for name in names if name in FIXED}
    used = set(colors.values())
    free = [c for c in EXTRA if c not in used] or EXTRA
    others = [n for n in names if n not in colors]
    for i, name in enumerate(others):
        colors[name] = free[i % len(free)]
    return colors
