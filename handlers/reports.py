"""统计: the quarterly statistics table (Art. 43) in chat, as a file with its chart (Art. 25).

League/city bureaus file it by the 5th of each quarter's first month; the region sees its
league/cities side by side (Art. 39, 41). The table arrives as an .xlsx file and the coverage
of each tier against the minimums as a .png, through WeCom's media upload.
"""

from __future__ import annotations

import base64
import re
import unicodedata

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.reminders import calendar
from inspection.report import TIER_NAMES, TIERS, quarter_bounds, quarter_of
from storage import report, report_files
from storage.tasks import rule_params

router = Router("reports")

MANAGERS = {Role.ADMIN, Role.CHIEF}
USAGE = "统计 [年份Q季度]，如「统计 2026Q4」"
QUARTER = re.compile(r"^(\d{4})\s*(?:Q|年第?|-)\s*([1-4])\s*(?:季度)?$", re.IGNORECASE)


def parse_quarter(text: str, today_year: int, today_quarter: int) -> tuple[int, int]:
    word = unicodedata.normalize("NFKC", text).strip()
    if not word:
        return today_year, today_quarter
    match = QUARTER.match(word)
    if match is None or not 2000 <= int(match.group(1)) <= 2100:
        raise UserError(f"无法识别季度「{text.strip()}」。用法：{USAGE}。")
    return int(match.group(1)), int(match.group(2))


@router.command(
    "统计", "统计表", roles=MANAGERS, usage=USAGE, summary="季度统计表和抽查比例图（第25、43条）"
)
async def quarterly_table(msg: TextCommand, ctx: Context) -> None:
    """Art. 43: the quarterly table of the actor's league/city (or the region), sent as files."""
    year, quarter = parse_quarter(
        msg.text, *quarter_of(ctx.now().astimezone(ctx.settings.tz).date())
    )
    orgs = sorted({o for role in MANAGERS for o in ctx.actor.orgs_for(role)})
    levels = {o: (await ctx.repos.orgs.get(o)) for o in orgs}
    mine = [
        o for o, node in levels.items() if node is not None and node.level in ("region", "city")
    ]
    if not mine:
        raise UserError(
            "统计表由盟市生态环境局和自治区生态环境厅编制；您的权限不在盟市或自治区一级。"
        )
    org = mine[0]
    start, end = quarter_bounds(year, quarter)
    sheets = await report.sheets(ctx.session, org, start, end, ctx.settings.tz, calendar(ctx))
    minimums = rule_params(start).ratios()
    name = await ctx.repos.orgs.name(org)
    title = f"{name}{year}年第{quarter}季度生态环境“双随机、一公开”情况统计表"
    table = report_files.table_xlsx(title, sheets, minimums)
    chart = report_files.coverage_png(title, sheets[0], minimums)
    stem = f"统计表-{org}-{year}Q{quarter}"
    ctx.outbox.file([ctx.actor.userid], f"{stem}.xlsx", base64.b64encode(table).decode())
    ctx.outbox.file([ctx.actor.userid], f"{stem}.png", base64.b64encode(chart).decode())
    total = sheets[0].total
    lines = [f"{title}（{start} 至 {end}，不含末日）已生成，文件随后发送。"]
    for tier in TIERS:
        coverage = total.coverage(tier)
        shown = "—" if coverage is None else f"{float(coverage):.1%}"
        lines.append(
            f"{TIER_NAMES[tier]}：抽查{total.checked[tier]}/{total.targets[tier]}，{shown}"
            f"（最低{float(minimums[tier]):.0%}）"
        )
    lines.append(f"双随机抽查{total.random_checks}次，发现问题{total.problems}个。")
    ctx.reply("\n".join(lines))
