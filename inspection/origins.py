"""Where an inspection comes from, and which count as random checks (Art. 6, 7, 25, 36).

Every planned check is a random check, joint checks with other authorities included (Art. 6):
an inter-agency joint check (origin "joint") is drawn by the authority that leads it and counts
toward once a year and the quotas like our own draws. A key construction project's check made
in the construction part of our draw (origin "construction", Art. 25(4)) is drawn in that draw
and is a random check too: it is the market entity's random check of the year (Art. 25, 30)
and counts toward the quotas. Only checks aimed at a specific target (origin "targeted", with
one of the kinds below) are outside the draw and counted apart.

The once-a-year rule never leaves a project due for its Art. 25(4) check out of the
construction part (``inspection.pool``): that check is mandatory.
"""

from __future__ import annotations

# Origins of random checks: our draw (random), its construction part (construction, Art.
# 25(4)), and another authority's joint draw (joint).
RANDOM_CHECK_ORIGINS = ("random", "joint", "construction")
# What counts toward the quarterly coverage and the statistics table (Art. 25): every random
# check (one definition: the same set).
QUOTA_ORIGINS = RANDOM_CHECK_ORIGINS
OUTSIDE_DRAW_ORIGINS = ("targeted",)

# Art. 6, exactly: the checks aimed at a specific target, in the article's order.
OUTSIDE_KINDS = {
    "complaint": "投诉举报",
    "higher_authority": "上级部门转办交办",
    "department_referral": "其他部门移送案件",
    "emergency": "突发环境事件",
    "nuclear_safety": "核安全检查",
    "data_lead": "数据分析或监测发现问题线索",
}

# What a user may type for each kind (NFKC-normalised).
OUTSIDE_KIND_WORDS = {
    "投诉": "complaint",
    "举报": "complaint",
    "投诉举报": "complaint",
    "转办": "higher_authority",
    "交办": "higher_authority",
    "上级转办": "higher_authority",
    "上级交办": "higher_authority",
    "移送": "department_referral",
    "部门移送": "department_referral",
    "移送案件": "department_referral",
    "突发事件": "emergency",
    "突发环境事件": "emergency",
    "事故": "emergency",
    "核安全": "nuclear_safety",
    "数据线索": "data_lead",
    "数据分析": "data_lead",
    "监测线索": "data_lead",
    "监测": "data_lead",
}
JOINT_WORDS = ("联合", "部门联合")
