"""What the simulated street looks like: the mix of channels, categories and priorities,
the daily and weekly rhythm, and how often departments are late, wrong or unsatisfying.

The category weights are 漕泾's first weeks of trial (domain brief): grid reports 市容环卫 19,
道路交通 8, 公共设施 5, 设施管理 2, 环卫环保 1 of 35; hotline complaints 建设交通 4, 公共事业 1,
经济综合 1 of 6 — so about one report in seven reaches the centre through the hotline.
Everything else is a plausible setting, not a published figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_PROFILE", "Profile"]

# 24 weights per channel, one per local hour 00..23: patrols walk in office hours, cameras
# see something at any hour (fewer at night), residents call and post in the evening too.
_PATROL = (0, 0, 0, 0, 0, 0, 0, 1, 4, 8, 9, 7, 2, 3, 8, 9, 8, 4, 1, 0, 0, 0, 0, 0)
_VIDEO = (1, 1, 1, 1, 1, 1, 2, 4, 6, 6, 6, 5, 4, 5, 6, 6, 6, 6, 5, 4, 3, 2, 2, 1)
_HOTLINE = (0, 0, 0, 0, 0, 0, 0, 2, 6, 9, 9, 7, 4, 5, 7, 8, 7, 6, 5, 5, 4, 3, 1, 0)
_ONLINE = (1, 1, 0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 5, 4, 4, 4, 4, 4, 5, 7, 8, 8, 6, 3)


@dataclass(frozen=True)
class Profile:
    # channel -> (share of reports, hourly rhythm, category kind it reports)
    channels: dict[str, tuple[float, tuple[int, ...], str]] = field(default_factory=lambda: {
        "patrol": (0.55, _PATROL, "grid"),
        "video": (0.20, _VIDEO, "grid"),
        "hotline": (0.15, _HOTLINE, "hotline"),
        "online": (0.10, _ONLINE, "grid"),
    })
    # category id -> weight, per kind (ids of the bundled sample; unknown ids are skipped)
    categories: dict[str, dict[str, int]] = field(default_factory=lambda: {
        "grid": {"city_appearance": 19, "road_traffic": 8, "public_facilities": 5,
                 "facility_management": 2, "sanitation_environment": 1},
        "hotline": {"construction_transport": 4, "public_utilities": 1, "economy": 1},
    })
    priorities: dict[str, float] = field(default_factory=lambda: {"normal": 0.90, "urgent": 0.08, "emergency": 0.02})
    rest_day_volume: float = 0.7  # weekends and public holidays, relative to a working day
    first_contact: dict[str, float] = field(default_factory=lambda: {  # closed at first contact, by channel
        "patrol": 0.12, "video": 0.03, "hotline": 0.25, "online": 0.10})
    wrong_department: float = 0.07  # dispatched to a department that rejects it, then redispatched
    cooperating_rejects: float = 0.03  # a cooperating department says "not ours" (no redispatch)
    late_ack: float = 0.10  # a call answered after its acknowledge deadline
    late_handle: float = 0.08  # the lead department handles after the handling deadline
    never_answers: float = 0.01  # a cooperating department never reports in
    contacted: float = 0.96  # the reporter is reached with the feedback
    satisfaction: dict[str, float] = field(default_factory=lambda: {
        "satisfied": 0.80, "basically_satisfied": 0.14, "unsatisfied": 0.06})
    reopen_if_unsatisfied: float = 0.7  # an unsatisfied result sent back (返工); else closed as is
    max_reopens: int = 1


DEFAULT_PROFILE = Profile()
