"""`shuangsuiji demo`: a guided tour on a fresh SQLite file with a local WeCom stand-in.

Everything runs for real: the stand-in encrypts and signs each chat message and POSTs it to the
bot's callback endpoint; the bot records, handles and answers through its outbox; the stand-in
receives the answers over HTTP, as WeCom would, and the tour prints them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.chat.context import Clock, SystemClock
from bot.config import Settings, load_settings
from bot.runtime.app import Runtime
from bot.wecom.standin import WeComStandIn
from storage import audit
from storage.repos import Repositories

ADMIN = "admin_huhehaote"
REGION_ADMIN = "admin_region"
CHIEF = "chief_huhehaote"
PUBLISHER = "gongkai_huhehaote"  # 信息公开员 of the checking units
BRANCH_ADMIN = "admin_branch"  # a banner/county branch's admin under 呼和浩特市


def _print(text: str = "") -> None:
    print(text, flush=True)


def _section(title: str) -> None:
    _print()
    _print(f"━━ {title} " + "━" * max(0, 60 - len(title) * 2))


SETTLE_DEADLINE = 30.0  # seconds for the bot to answer a step; only reached when it does not


class DemoStalled(RuntimeError):
    """The bot did not finish a step of the tour in time."""


class Tour:
    """Plays users in chat: each line goes through the real encrypted callback."""

    def __init__(self, runtime: Runtime, wecom: WeComStandIn, url: str) -> None:
        self.runtime = runtime
        self.wecom = wecom
        self.url = url
        self.msg_id = 10_000
        self.task_code = ""
        self.size = (3000, 300)  # synthetic targets, inspectors
        self.directory = Path(".")  # where the demo writes its files

    async def settle(self, deadline: float = SETTLE_DEADLINE) -> None:
        """Wait until the bot has handled every event and sent every message due now, as the
        database records it; raise ``DemoStalled`` when that has not come after ``deadline``
        seconds (a tour that goes on would print answers that never came)."""
        outstanding = -1
        try:
            async with asyncio.timeout(deadline):
                # Rows have no event to await: read the condition until it holds.
                while outstanding := await self._outstanding():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise DemoStalled(
                f"after {deadline:g}s the bot still has {outstanding} events to handle or "
                "messages to send"
            ) from None

    async def _outstanding(self) -> int:
        """Events not yet handled, plus messages due now and not yet sent."""
        from sqlalchemy import func, select

        from storage.models import InboundEvent, OutboxMessage

        async with self.runtime.db.transaction() as session:
            events = await session.scalar(
                select(func.count())
                .select_from(InboundEvent)
                .where(InboundEvent.status == "pending")
            )
            messages = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.status == "pending",
                    OutboxMessage.not_before <= self.runtime.clock.now(),
                )
            )
        return int(events or 0) + int(messages or 0)

    async def click(
        self,
        user: str,
        event_key: str,
        task_id: str,
        card_type: str,
        selected: list[tuple[str, list[str]]],
        *,
        quiet: bool = False,
        label: str = "",
    ) -> None:
        """A tap on a template card, as WeCom posts it (with a fresh ResponseCode)."""
        before = len(self.wecom.texts_to(user))
        xml = self.wecom.template_card_event_xml(
            user,
            create_time=int(self.runtime.clock.now().timestamp()),
            event_key=event_key,
            task_id=task_id,
            card_type=card_type,
            response_code=self.wecom.new_response_code(),
            selected=selected,
        )
        status, _ = await self.wecom.post_callback(self.url, xml)
        await self.settle()
        if quiet:
            return
        choice = "、".join(_phrase(o) for _, options in selected for o in options) or label
        _print(f"\n👆 {user} 点击卡片：{choice}   （回调应答 {status}）")
        for answer in self.wecom.texts_to(user)[before:]:
            _print("🤖 " + answer.replace("\n", "\n   "))

    async def say(self, user: str, text: str, *, show: int = 1200) -> list[str]:
        self.msg_id += 1
        before = len(self.wecom.texts_to(user))
        xml = self.wecom.text_message_xml(
            user, text, self.msg_id, int(self.runtime.clock.now().timestamp())
        )
        status, _ = await self.wecom.post_callback(self.url, xml)
        await self.settle()
        answers = self.wecom.texts_to(user)[before:]
        _print(f"\n👤 {user}：{text}   （回调应答 {status}）")
        for answer in answers:
            body = answer if len(answer) <= show else answer[:show] + " …"
            _print("🤖 " + body.replace("\n", "\n   "))
        return answers


def standin_settings(db_url: str, wecom: WeComStandIn, api_base: str, **extra: Any) -> Settings:
    """Settings for a local run against the stand-in (the demo, the tests, the benches): its
    credentials, its address, the given database, any free local port."""
    return load_settings(
        None,
        wecom={
            "corp_id": wecom.corp_id,
            "agent_id": wecom.agent_id,
            "secret": wecom.secret,
            "token": wecom.token,
            "encoding_aes_key": wecom.encoding_aes_key,
            "api_base": api_base,
        },
        database={"url": db_url},
        server={"host": "127.0.0.1", "port": 0},
        **extra,
    )


Step = Callable[[Tour], Awaitable[None]]


def _phrase(option: str) -> str:
    from inspection.results import PHRASES, ResultCode

    try:
        return PHRASES[ResultCode(option)]
    except ValueError:
        return option


async def step_directory(tour: Tour) -> None:
    """Generate a synthetic directory as spreadsheets and load it through the import path."""
    from storage import synthetic

    _section("1. 一单两库：生成合成名录，经导入流程载入")
    with tempfile.TemporaryDirectory() as tmp:
        paths = synthetic.write_directory(
            Path(tmp), seed=2026, targets=tour.size[0], inspectors=tour.size[1]
        )
        async with tour.runtime.db.transaction() as session:
            reports = await synthetic.import_directory(
                session, paths, actor="demo", now=tour.runtime.clock.now()
            )
    for report in reports.values():
        _print(f"  {report.summary_zh().splitlines()[0]}")


async def step_roles(tour: Tour) -> None:
    _section("2. 角色：管理员与部门负责人")
    now = tour.runtime.clock.now()
    async with tour.runtime.db.transaction() as session:
        repos = Repositories(session)
        await repos.roles.grant(REGION_ADMIN, "admin", "150000", "", "demo", now, name="赵敏")
        await repos.roles.grant(ADMIN, "admin", "150100", "", "demo", now, name="钱伟")
        await audit.append(
            session,
            at=now,
            actor="demo",
            action="role.grant",
            subject=f"user:{ADMIN}",
            payload={"role": "admin", "org": "150100"},
        )
    _print(f"  {REGION_ADMIN}: 自治区管理员；{ADMIN}: 呼和浩特市管理员（均由 CLI 授予）")
    await tour.say(ADMIN, "帮助")
    await tour.say(ADMIN, f"授权 {CHIEF} 部门负责人 150100 姓名=孙丽")
    await tour.say("stranger", "帮助")
    await tour.say(ADMIN, "抽签")


async def step_lookup(tour: Tour) -> None:
    from sqlalchemy import select

    from storage.models import Target

    _section("3. 查询检查对象（第十一至十四条）")
    async with tour.runtime.db.transaction() as session:
        target = (
            await session.execute(
                select(Target).where(Target.org_code.like("1501%")).order_by(Target.id).limit(1)
            )
        ).scalar_one()
    await tour.say(ADMIN, f"查询 {target.uscc or target.key}")
    await tour.say(ADMIN, f"修改对象 {target.key} 绩效分级=B 标识:园区=金桥开发区")


async def step_draw(tour: Tour) -> None:
    """Art. 27-28: a task, a preview, a committed draw, a witness, the cards to the teams."""
    _section("4. 抽查任务：新建、预览、承诺、见证、抽取（第二十二、二十七、二十八条）")
    today = tour.runtime.clock.now().astimezone(tour.runtime.settings.tz).date()
    # The check period begins today: the tour's inspectors answer in it (Art. 22).
    start, end = today, today + dt.timedelta(days=30)
    answers = await tour.say(
        ADMIN,
        f"新建任务 冬季污染源双随机抽查 范围=150100 特殊=25% 重点=20% 一般=10% "
        f"检查期={start}~{end}",
        show=400,
    )
    code = _task_code(answers)
    tour.task_code = code
    await tour.say(ADMIN, f"抽查预览 {code}", show=600)
    await tour.say(ADMIN, f"抽查 {code} 见证人={CHIEF}", show=600)
    _print(
        "\n  （承诺已发给见证人（部门负责人）和上级管理员，此时见证值尚未产生，谁也无法预知结果；"
        "封存人不能自己见证。）"
    )
    await tour.say(CHIEF, f"见证 {code} 双色球2026138期:03-07-12-19-25-31+09", show=800)
    cards = [m for m in tour.wecom.messages() if m.get("msgtype") == "template_card"]
    if cards:
        card = cards[0]
        users = card.get("touser", "")
        _print(f"\n📨 检查组 {users} 收到任务卡片（一次发送给全组）：")
        from bot.tools.console import render_card

        text, _ = render_card(card["template_card"], numbered=False)
        _print("   " + text.replace("\n", "\n   "))
    _print(f"\n  共 {len(cards)} 个检查组收到卡片。")


def _task_code(answers: list[str]) -> str:
    import re

    for answer in answers:
        match = re.search(r"T\d{4}-\d{6}-\d{3}", answer)
        if match:
            return match.group(0)
    raise RuntimeError("the task was not created: " + " / ".join(answers))


async def step_branch_task(tour: Tour) -> None:
    """Art. 5, 20: a branch proposes its own task; the league/city bureau approves it and
    organises the draw, and the branch's inspectors get their cards."""
    from sqlalchemy import func, select

    from storage.models import Inspector

    _section("4b. 旗县区分局的任务：分局提出，盟市局批准并组织抽取（第五、二十条）")
    async with tour.runtime.db.transaction() as session:
        count = func.count().label("n")
        branch = (
            await session.execute(
                select(Inspector.org_code, count)
                .where(Inspector.org_code.like("1501%"), Inspector.org_code != "150100")
                .where(Inspector.active.is_(True))
                .group_by(Inspector.org_code)
                .order_by(count.desc(), Inspector.org_code)
                .limit(1)
            )
        ).first()
        if branch is None:
            _print("  （本次名录中呼和浩特市没有分局检查人员，跳过）")
            return
        await Repositories(session).roles.grant(
            BRANCH_ADMIN, "admin", branch[0], "", "demo", tour.runtime.clock.now()
        )
    today = tour.runtime.clock.now().astimezone(tour.runtime.settings.tz).date()
    start, end = today, today + dt.timedelta(days=30)
    answers = await tour.say(
        BRANCH_ADMIN,
        f"新建任务 分局重点行业抽查 单位={branch[0]} 一般=1 检查期={start}~{end}",
        show=400,
    )
    code = _task_code(answers)
    await tour.say(ADMIN, f"批准任务 {code}", show=400)
    await tour.say(ADMIN, f"抽查 {code}", show=300)
    await tour.say(ADMIN, f"见证 {code} 双色球2026138期:03-07-12-19-25-31+09", show=400)


async def step_verify(tour: Tour) -> None:
    """Anyone can replay the draw from its export."""
    from storage import draws
    from storage import tasks as task_store

    _section("5. 验证抽取：任何人都可以复算")
    code = tour.task_code
    async with tour.runtime.db.transaction() as session:
        task = await task_store.get_task(session, code)
        assert task is not None
        problem = await draws.verify_task(session, task)
    verdict = "一致（按记录复算，抽取结果相同）" if problem is None else f"不一致：{problem}"
    _print(f"  shuangsuiji draw verify {code} → {verdict}")
    _print(f"  导出自包含记录：shuangsuiji draw export {code} {code}.json")
    _print(f"  只用标准库复算：python inspection/reference_verifier.py {code}.json")


async def open_teams(tour: Tour) -> dict[int, tuple[str, str]]:
    """Open inspections: number -> (the first active member, the card they got)."""
    from sqlalchemy import select

    from storage.models import Inspection, TeamMember

    async with tour.runtime.db.transaction() as session:
        rows = await session.execute(
            select(Inspection.number, TeamMember.userid, TeamMember.card_task_id)
            .join(TeamMember, TeamMember.inspection_id == Inspection.id)
            .where(TeamMember.active.is_(True), Inspection.status == "open")
            .order_by(Inspection.number, TeamMember.position)
        )
        teams: dict[int, tuple[str, str]] = {}
        for number, userid, card in rows.all():
            teams.setdefault(number, (userid, card or ""))
    return teams


async def step_results(tour: Tour) -> None:
    """Art. 29, 38, 40: inspectors answer on their cards; one asks to be swapped and the head
    approves with one tap; the task's record reads like the story. All through the callback."""

    from bot.tools.audit_view import render

    _section("6. 检查结果与替换（第二十九、三十八、四十条）")
    teams = await open_teams(tour)
    (n1, (one, card1)), (n2, (two, card2)), (n3, (three, _)) = list(teams.items())[:3]
    await tour.click(one, f"result:{n1}", card1, "vote_interaction", [("result", ["no_problem"])])
    await tour.click(
        two, f"result:{n2}", card2, "vote_interaction", [("result", ["ordered_to_rectify"])]
    )
    await tour.say(two, "污水处理设施未正常运行，已当场责令整改")
    await tour.say(three, f"申请替换 {n3} 临时借调外地，无法参加检查")
    approval = [m for m in tour.wecom.messages(CHIEF) if m.get("msgtype") == "template_card"]
    if approval:
        card = approval[-1]["template_card"]
        approve = card["button_list"][0]
        await tour.click(
            CHIEF, approve["key"], card["task_id"], card["card_type"], [], label=approve["text"]
        )
    _print(f"\n  更新的卡片：{len(tour.wecom.card_updates)} 张（全组的卡片关闭选项，显示结果）")
    async with tour.runtime.db.transaction() as session:
        entries = await audit.history(session, f"task:{tour.task_code}")
        lines = await render(session, entries, tour.runtime.settings.tz)
    _print(f"\n  shuangsuiji audit show --task {tour.task_code}（节选）：")
    for line in lines[-6:]:
        _print("   " + line[:160])


async def step_publish(tour: Tour) -> None:
    """Art. 37, 43: every team reports, the checking units publish on the bot's public page
    (一公开), and the league/city's quarterly statistics table is written."""

    from inspection.report import quarter_bounds, quarter_of
    from storage import publication, report, report_files
    from storage import tasks as task_store
    from storage.repos import Repositories
    from storage.tasks import rule_params

    _section("7. 一公开：公开结果、公开页面、季度统计表（第三十七、四十三条）")
    teams = await open_teams(tour)
    for number, (userid, card) in teams.items():  # the other teams report too, quietly
        await tour.click(
            userid,
            f"result:{number}",
            card,
            "vote_interaction",
            [("result", ["no_problem"])],
            quiet=True,
        )
    _print(
        f"\n  其余 {len(teams)} 个检查组也提交了结果，任务完成，开始按现行规则计算公开期限（第37条，按工作日）。"
    )
    async with tour.runtime.db.transaction() as session:
        task = await task_store.get_task(session, tour.task_code)
        assert task is not None
        units = sorted({r.org_code for r in await publication.unit_results(session, [task.id])})
        repos = Repositories(session)
        for unit in units:  # 谁检查、谁公开: a publisher of each checking unit
            await repos.roles.grant(
                PUBLISHER, "publisher", unit, "", "demo", tour.runtime.clock.now()
            )
        year = task.year
    await tour.say(PUBLISHER, f"公示 {tour.task_code}", show=600)
    base = tour.runtime.settings.public.url(f"/150100/{year}")
    _print(f"\n  公开页面（无需登录、无脚本，可搜索名称或信用代码，可下载 CSV/JSON）：{base}")
    _print(f"  抽取记录（承诺值、见证值）：{base}/draws")
    today = tour.runtime.clock.now().astimezone(tour.runtime.settings.tz).date()
    y, q = quarter_of(today)
    start, end = quarter_bounds(y, q)
    minimums = rule_params(start).ratios()
    async with tour.runtime.db.transaction() as session:
        sheets = await report.sheets(session, "150100", start, end, tour.runtime.settings.tz)
    title = f"呼和浩特市{y}年第{q}季度生态环境“双随机、一公开”情况统计表"
    table = tour.directory / f"统计表-150100-{y}Q{q}.xlsx"
    table.write_bytes(report_files.table_xlsx(title, sheets, minimums))
    chart = table.with_suffix(".png")
    chart.write_bytes(report_files.coverage_png(title, sheets[0], minimums))
    total = sheets[0].total
    _print(f"  季度统计表：{table}（双随机抽查 {total.random_checks} 次）；抽查比例图：{chart}")
    _print(
        f"  同一张表在聊天中：发送「统计 {y}Q{q}」；命令行：shuangsuiji report quarterly --org 150100 --year {y} --quarter {q} --out 表.xlsx"
    )


async def step_audit(tour: Tour) -> None:
    _section("8. 审计记录：哈希链校验")
    async with tour.runtime.db.transaction() as session:
        report = await audit.verify(session)
    _print(
        f"  shuangsuiji audit verify → 完整，共 {report.entries} 条记录" if report.ok else "  损坏"
    )


def steps() -> list[Step]:
    """The tour, in order; later features add their steps here."""
    return [
        step_directory,
        step_roles,
        step_lookup,
        step_draw,
        step_branch_task,
        step_verify,
        step_results,
        step_publish,
        step_audit,
    ]


async def run_demo(
    directory: Path,
    *,
    keep_running: bool = False,
    size: tuple[int, int] = (3000, 300),
    clock: Clock | None = None,
) -> int:
    """The tour; ``clock`` (the system's by default) is what the bot and the stand-in read."""
    clock = clock or SystemClock()
    now = clock.now
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    wecom = WeComStandIn(clock=lambda: now().timestamp())
    api_base = await wecom.start()
    settings = standin_settings(
        f"sqlite+aiosqlite:///{directory / 'demo.db'}", wecom, api_base, public={"enabled": True}
    )
    runtime = Runtime(settings, clock=clock)
    await runtime.migrate()
    port = await runtime.start()
    settings.public.base_url = f"http://127.0.0.1:{port}"  # the page this run serves
    url = f"http://127.0.0.1:{port}{settings.server.callback_path}"
    tour = Tour(runtime, wecom, url)
    tour.size = size
    tour.directory = directory
    _print("shuangsuiji demo — 双随机、一公开 企业微信机器人")
    _print(f"  数据库: {directory / 'demo.db'}")
    _print(f"  回调地址: {url}（本地企业微信模拟器按真实协议加密、签名后推送）")
    try:
        for step in steps():
            await step(tour)
        _section("完成")
        _print(
            f"  再次体验：shuangsuiji console --as {ADMIN} --database-url sqlite:///{directory / 'demo.db'}"
        )
        if keep_running:
            _print("  服务保持运行中，Ctrl-C 退出。")
            await asyncio.Event().wait()
    finally:
        await runtime.stop()
        await wecom.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(asyncio.run(run_demo(Path("./data/demo"))))
