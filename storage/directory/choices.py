"""The Chinese words a bureau writes for each enumerated field, and the labels we write back.

``*_CHOICES`` map what a cell may say (Chinese, and our English codes) to the stored code;
``*_LABELS`` map a stored code to the word exports and chat messages show.
"""

from __future__ import annotations

from collections.abc import Mapping

from inspection.quotas import TIER_LABELS, Tier

TIER_CHOICES = {
    **{label: tier.value for tier, label in TIER_LABELS.items()},
    **{f"{label}监管对象": tier.value for tier, label in TIER_LABELS.items()},
    **{tier.value: tier.value for tier in Tier},
}
TARGET_STATUS_LABELS = {"operating": "在营", "suspended": "停产", "deregistered": "注销"}
STATUS_CHOICES = {
    "在营": "operating",
    "存续": "operating",
    "营业": "operating",
    "开业": "operating",
    "停产": "suspended",
    "停业": "suspended",
    "歇业": "suspended",
    "注销": "deregistered",
    "已注销": "deregistered",
    **{code: code for code in TARGET_STATUS_LABELS},
}
GRADE_CHOICES = {g: g for g in ("A", "B", "B-", "C", "D")} | {
    f"{g}级": g for g in ("A", "B", "B-", "C", "D")
}
APPROVAL_LABELS = {"ministry": "生态环境部", "region": "自治区", "city": "盟市", "county": "旗县区"}
APPROVAL_CHOICES = {
    "生态环境部": "ministry",
    "部级": "ministry",
    "国家": "ministry",
    "自治区": "region",
    "自治区级": "region",
    "省级": "region",
    "盟市": "city",
    "盟市级": "city",
    "市级": "city",
    "旗县区": "county",
    "旗县区级": "county",
    "县级": "county",
    **{code: code for code in APPROVAL_LABELS},
}
CERT_LABELS = {"enforcement": "执法证", "work": "工作证"}
CERT_CHOICES = {
    "执法证": "enforcement",
    "行政执法证": "enforcement",
    "执法证件": "enforcement",
    "工作证": "work",
    "工作证件": "work",
    **{code: code for code in CERT_LABELS},
}
GENDER_CHOICES = {"男": "男", "女": "女", "m": "男", "f": "女", "male": "男", "female": "女"}
CHECK_TYPE_LABELS = {"directed": "定向", "undirected": "不定向"}
CHECK_TYPE_CHOICES = {
    "定向": "directed",
    "不定向": "undirected",
    **{c: c for c in CHECK_TYPE_LABELS},
}
METHOD_LABELS = {"onsite": "现场", "offsite": "非现场"}
METHOD_CHOICES = {
    "现场": "onsite",
    "现场检查": "onsite",
    "非现场": "offsite",
    "非现场检查": "offsite",
    **{c: c for c in METHOD_LABELS},
}


# What an export writes for a stored code: the word the import reads back.
EXPORT_LABELS: dict[str, Mapping[str, str]] = {
    "tier": {t.value: label for t, label in TIER_LABELS.items()},
    "status": TARGET_STATUS_LABELS,
    "approval_level": APPROVAL_LABELS,
    "certificate_kind": CERT_LABELS,
    "check_type": CHECK_TYPE_LABELS,
    "method": METHOD_LABELS,
}
