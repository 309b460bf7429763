"""What several handlers share: finding a task or an inspection by what a user typed, who may
act on it (the drawing department and the levels above, the team's active members), sending,
and the team's task card."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from inspection.results import PHRASES
from storage import results as store
from storage import task_approval
from storage import tasks as task_store
from storage.draws import Assignment, DrawRefused
from storage.models import CheckItem, Inspection, Target, Task, TeamMember
from storage.publication import unit_of

MANAGERS = {Role.ADMIN, Role.CHIEF}


METHOD_LABELS = {"onsite": "现场检查", "offsite": "非现场检查（正面清单，第31条）"}


@dataclass(frozen=True)
class CardRef:
    """The card a click came from: its task_id and the click's single-use ResponseCode."""

    task_id: str
    response_code: str


# --- lookups and who may act ---


async def load_task(ctx: Context, code: str, verb: str) -> Task:
    code = code.split()[0] if code.split() else ""
    if not code:
        raise UserError(
            f"请写明任务代码，如「{verb} T2026-150100-001」。发送「任务列表」查看任务。"
        )
    task = await task_store.get_task(ctx.session, code)
    if task is None:
        raise UserError(f"任务「{code}」不存在。发送「任务列表」查看您可见的任务。")
    return task


async def manager_role(ctx: Context, task: Task, roles: Iterable[Role] = MANAGERS) -> Role | None:
    """Admins and chiefs of the drawing department (a chief bound to another department of the
    same organisation is not), and of any organisation above it."""
    for b in ctx.actor.bindings:
        if b.role not in roles or not await ctx.repos.orgs.covers([b.org_code], task.org_code):
            continue
        other_dept = b.org_code == task.org_code and b.dept_code and task.drawing_dept
        if other_dept and b.dept_code != task.drawing_dept:
            continue
        return b.role
    return None


async def require_manager(ctx: Context, task: Task, roles: Iterable[Role] = MANAGERS) -> Role:
    role = await manager_role(ctx, task, roles)
    if role is None:
        who = "、".join("管理员" if r is Role.ADMIN else "部门负责人" for r in sorted(roles))
        org = await ctx.repos.orgs.name(task.org_code)
        raise UserError(f"任务 {task.code} 由{org}抽取，仅限其抽取部门及上级的{who}操作。")
    return role


async def manages(ctx: Context, org_code: str) -> bool:
    """Whether the user is an admin or chief of ``org_code`` or of an organisation above it."""
    for b in ctx.actor.bindings:
        if b.role in MANAGERS and await ctx.repos.orgs.covers([b.org_code], org_code):
            return True
    return False


async def require_drawer(ctx: Context, task: Task) -> None:
    """Art. 5: a banner/county branch's task is sealed and witnessed under its league/city
    bureau: by the admins and chiefs of the city (or the region), or by the branch admin the
    city authorised for this task. Other tasks: the drawing department and the levels above."""
    city = await task_approval.approving_org(ctx.repos, task)
    if city is None:
        await require_manager(ctx, task)
        return
    if task.authorised_drawer == ctx.actor.userid and await manager_role(ctx, task, {Role.ADMIN}):
        return
    if await manages(ctx, city):
        return
    raise UserError(
        f"旗县区分局的任务 {task.code} 由{await ctx.repos.orgs.name(city)}组织抽取（第5条）："
        "仅限其管理员、部门负责人，或其批准时授权的分局管理员操作。"
    )


def send(ctx: Context, users: Sequence[str], text: str, *, reply: bool = False) -> None:
    """Long texts are split by the outbox (storage.outbox.split_text)."""
    if reply:
        ctx.reply(text)
    elif users:
        ctx.outbox.text(users, text)


def local(ctx: Context, at: dt.datetime) -> str:
    return at.astimezone(ctx.settings.tz).strftime("%Y-%m-%d %H:%M")


def actor_name(ctx: Context) -> str:
    return ctx.actor.name or ctx.actor.userid


async def people(ctx: Context, userids: Iterable[str]) -> list[str]:
    """Names from the inspector directory, in order; the userid only when no name is known."""
    ids = list(userids)
    names = await store.names_of(ctx.session, ids)
    return [names.get(u, u) for u in ids]


async def person(ctx: Context, userid: str) -> str:
    (name,) = await people(ctx, [userid])
    return name


def within(text: str, limit: int, what: str) -> str:
    """What a person typed, stored as typed: refused when longer than its field holds."""
    if len(text) > limit:
        raise UserError(f"{what}最长{limit}个字，您输入了{len(text)}个字，请精简后重新发送。")
    return text


def card_decision(key: str, yes: str, no: str) -> tuple[int, bool]:
    """A decision card's button key ``<prefix>:<number>:<yes|no>``: the number and whether
    ``yes`` was tapped."""
    parts = key.split(":")
    if len(parts) != 3 or not _number(parts[1]) or parts[2] not in (yes, no):
        raise UserError("该卡片已失效或无法识别。")
    return int(parts[1]), parts[2] == yes


def numbered(text: str, verb: str, noun: str, where: str) -> int:
    """The number a decision command names (``批准替换 12``, ``#12`` too)."""
    word = text.strip().lstrip("#").split(" ")[0]
    if not _number(word):
        raise UserError(f"用法：{verb} <{noun}>，如「{verb} 12」。{noun}见{where}。")
    return int(word)


def optional_reason(msg: TextCommand, limit: int, what: str) -> str:
    """The reason typed after a command's first word, as typed; empty when none was given."""
    typed = msg.typed_after_words(1)
    return within(typed, limit, what) if typed.strip() else ""


def _number(word: str) -> bool:
    return word.isdigit() and len(word) <= 15


def subject(task: Task) -> str:
    return f"task:{task.code}"


async def load_inspection(ctx: Context, word: str, verb: str) -> Inspection:
    word = word.strip().removeprefix("编号")
    if not word.isdigit() or len(word) > 15:
        raise UserError(
            f"请写明检查编号（数字），如「{verb} 1001」。发送「我的任务」查看您的检查编号。"
        )
    inspection = await store.inspection_by_number(ctx.session, int(word))
    if inspection is None:
        raise UserError(f"编号 {word} 不存在。发送「我的任务」查看您的检查编号。")
    return inspection


async def task_of(ctx: Context, inspection: Inspection) -> Task:
    task = await ctx.session.get(Task, inspection.task_id)
    assert task is not None
    return task


async def target_of(ctx: Context, inspection: Inspection) -> Target:
    target = await ctx.session.get(Target, inspection.target_id)
    assert target is not None
    return target


async def require_member(
    ctx: Context, inspection: Inspection, doing: str = "提交该检查的结果"
) -> TeamMember:
    """Only an active member of the inspection's team may act on it (the database decides,
    never the card: anyone can forward a card); ``doing`` words the refusal in the verb's
    terms ("提交该检查的结果", "申请替换", ...)."""
    n = inspection.number
    member = await store.active_member(ctx.session, inspection.id, ctx.actor.userid)
    if member is None:
        if await store.was_member(ctx.session, inspection.id, ctx.actor.userid):
            raise UserError(f"您已被替换出编号 {n} 的检查组，不能{doing}。")
        raise UserError(f"您不是编号 {n} 检查组的成员，不能{doing}。")
    if inspection.status == "cancelled":
        raise UserError(f"编号 {n} 已撤销（任务经批准重新抽取），不能{doing}。")
    if inspection.status == "merged" and inspection.merged_into_id is not None:
        host = await ctx.session.get(Inspection, inspection.merged_into_id)
        where = host.number if host else "合并后的检查"
        raise UserError(
            f"编号 {n} 与编号 {where} 合并为一次检查，请在编号 {where} 提交结果（第19、21、23条）。"
        )
    return member


async def may_see(ctx: Context, inspection: Inspection, task: Task) -> bool:
    """The team, the task's managers, and the managers of the unit that checks it (a branch
    follows its inspections of its city's task, Art. 5)."""
    if await store.was_member(ctx.session, inspection.id, ctx.actor.userid):
        return True
    if await manager_role(ctx, task) is not None:
        return True
    return await manages(ctx, await unit_of(ctx.session, inspection))


async def task_managers(ctx: Context, task: Task) -> list[str]:
    chiefs = await ctx.repos.roles.holders(Role.CHIEF, [task.org_code], task.drawing_dept or None)
    admins = await ctx.repos.roles.holders(Role.ADMIN, [task.org_code])
    return sorted({*chiefs, *admins})


# --- the team's task card ---


def result_options(on: dt.date) -> list[dict[str, str]]:
    """The seven phrases of Art. 38, in order, then the region's additions in force."""
    options = [{"id": code.value, "text": phrase} for code, phrase in PHRASES.items()]
    extra = task_store.rule_params(on).extra_result_phrases
    options += [{"id": code, "text": phrase} for code, phrase in extra.items()]
    return options


def inspection_card(
    a: Assignment,
    task: Task,
    items: Sequence[str],
    *,
    card_task_id: str | None = None,
    unwitnessed: bool = False,
    options: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """One inspection's task card (vote_interaction): its result is submitted on the card
    itself (event key ``result:<number>``), handled by the results work. ``options``: the
    task's ``result_options``, when the caller makes many cards of one task."""
    team = "、".join(m.name + ("（辅助）" if m.auxiliary else "") for m in a.members)
    desc = "\n".join(
        [
            f"任务：{task.code} {task.name}",
            f"对象：{a.target_name}（{a.target_key}）",
            f"地址：{a.address or '见名录'}",
            # Art. 19: one visit covers every drawn site of the market entity.
            *(
                f"同一市场主体另一点位：{name}（{key}），地址：{address or '见名录'}"
                for key, name, address in a.sites
            ),
            f"事项：{'；'.join(items) if items else '按任务要求'}",
            # Art. 19, 21, 23: the departments of a joint task check the entity in this visit.
            *(
                [
                    f"联合抽查：发起科室 {task.initiating_dept}，"
                    f"参与科室 {'、'.join(task.participating_depts)}"
                ]
                if task.initiating_dept
                else []
            ),
            f"方式：{METHOD_LABELS.get(a.method, a.method)}"
            + ("；建设项目全覆盖" if a.origin == "construction" else ""),
            f"检查期：{task.check_start} 至 {task.check_end}",
            f"检查组：{team}",
            *(["抽取：未见证"] if unwitnessed else []),
            "检查完成后选择检查结果并提交。",
        ]
    )
    return {
        "card_type": "vote_interaction",
        "source": {"desc": "双随机、一公开 抽查任务"},
        "main_title": {"title": f"编号 {a.number} {a.target_name}"[:36], "desc": desc},
        "task_id": card_task_id or a.card_task_id,
        "checkbox": {
            "question_key": "result",
            "option_list": options if options is not None else result_options(task.check_start),
            "mode": 0,
        },
        "submit_button": {"text": "提交", "key": f"result:{a.number}"},
    }


async def item_names(ctx: Context, task: Task) -> list[str]:
    if not task.item_codes:
        return []
    orgs = await ctx.repos.orgs.ancestors(task.org_code)
    rows = await ctx.session.execute(
        select(CheckItem.code, CheckItem.name).where(
            CheckItem.code.in_(task.item_codes), CheckItem.org_code.in_(orgs)
        )
    )
    names = dict(rows.all())
    return [f"{c} {names[c]}" if c in names else c for c in task.item_codes]


# --- what storage refused, in the user's words ---


DRAW_STATUS_LABELS = {
    "committed": "已封存、待见证",
    "drawn": "已抽取",
    "failed": "抽取失败",
    "cancelled": "已作废",
    "abandoned": "已放弃（未见证）",  # before draws were cancelled, never re-drawn
    "superseded": "已被重新抽取取代",  # idem
}


def refusal_text(exc: DrawRefused, tz: dt.tzinfo) -> str:
    """The chat's wording of a refused draw operation (``storage.draws.DrawRefused``)."""
    f = exc.facts
    task = f.get("task", "")
    status = DRAW_STATUS_LABELS.get(f.get("status", ""), f.get("status", ""))
    match exc.reason:
        case "already_drawn":
            at = f["at"].astimezone(tz).strftime("%Y-%m-%d %H:%M")
            return (
                f"任务 {task} 已于{at}封存抽取（{status}）。同一任务只抽取一次，不能重新抽取；"
                f"不能使用的抽取可申请作废（「作废抽取 {task} <理由>」，须经上级批准），"
                f"再新建任务并写明「替代={task}」。"
            )
        case "task_cancelled":  # 取消任务 before sealing, or its draw cancelled (作废抽取)
            return (
                f"任务 {task} 已取消或其抽取已作废，任务已关闭，不能再抽取或修改。"
                f"如需重新安排，请新建任务（抽取作废的，写明「替代={task}」）。"
            )
        case "unwitnessed_needs_reason":
            return f"无见证抽取须写明理由：「抽查 {task} 无见证 <理由>」。"
        case "witnesses_invalid":
            return "见证人名单有误：至少一人，且不能重复。"
        case "witness_is_sealer":
            return "封存抽取的人不能同时做见证人（见证值须来自他人）。"
        case "witness_deadline_past":
            return "见证期限已过，请另定期限。"
        case "replaces_not_cancelled":
            return f"任务 {task} 要替代的任务 {f['replaces']} 的抽取未作废也未失败。"
        case "unwitnessed_draw":
            return f"任务 {task} 的抽取无见证，不接受见证值。"
        case "not_a_witness":
            return f"您不是任务 {task} 封存时确定的见证人，见证值只能由见证人本人提供。"
        case "witness_deadline_passed":
            at = f["deadline"].astimezone(tz).strftime("%Y-%m-%d %H:%M")
            return (
                f"任务 {task} 的见证期限（{at}）已过，不再接受见证值；此抽取只能作废"
                f"（「作废抽取 {task} <理由>」），不能重新封存。"
            )
        case "public_source_draw":
            return (
                f"任务 {task} 的见证值取封存时指定的公开随机源：请用「随机源值 {task} <数值>」"
                f"录入，由另一人「确认随机源 {task} <数值>」。"
            )
        case "no_public_source":
            return f"任务 {task} 封存时没有指定公开随机源。"
        case "source_value_format":
            return (
                f"数值「{f['value']}」应按公布的样子写成数字，可带小数点（如 3890.27），"
                "不加千位分隔符、单位或空格。"
            )
        case "source_value_typed":
            return f"任务 {task} 的随机源数值已录入，待另一人「确认随机源 {task} <数值>」。"
        case "source_value_not_typed":
            return f"任务 {task} 的随机源数值尚未录入：先发送「随机源值 {task} <数值>」。"
        case "source_self_confirmed":
            return "录入随机源数值的人不能自己确认，须由另一人核对。"
        case "witness_given":
            return f"您已为任务 {task} 提供过见证值，不能更改。"
        case "cancel_not_drawn":
            return f"任务 {task} 尚未封存抽取，无需作废（封存前可直接修改或取消任务）。"
        case "cancel_closed":
            return f"任务 {task} 的抽取{status}，不能作废。"
        case "cancel_task_complete":
            return f"任务 {task} 已完成，不能作废。"
        case "cancel_has_results":
            return f"任务 {task} 已有检查结果，不能作废。"
        case "cancel_pending":
            return f"任务 {task} 已有作废申请，等待上级批准。"
        case "cancel_not_requested":
            return f"任务 {task} 没有待批准的作废申请。"
        case "cancel_self_approval":
            return "申请作废的人不能自己批准。"
        case "task_complete":
            return f"任务 {task} 已完成，不能再抽取或修改。"
        case "task_sealed":
            at = f["at"].astimezone(tz).strftime("%Y-%m-%d %H:%M")
            return (
                f"任务 {task} 已于{at}封存抽取（第{f['attempt']}次），任务内容不能再修改或取消；"
                f"抽取无法使用的，可发送「作废抽取 {task} <理由>」，经上级批准作废后以新任务替代（第29条）。"
            )
        case "outside_draw":
            return f"任务 {task} 是双随机以外的检查（第6条），不参加抽取。"
        case "not_approved" | "not_proposed" if f.get("status") == "refused":
            return f"任务 {task} 已被盟市局退回，不能抽取或批准（第5条）。"
        case "not_approved":
            return f"任务 {task} 尚待盟市局批准，批准后方可抽取（第5条）。"
        case "not_proposed":
            return f"任务 {task} 不在待批准状态，无需批准或退回。"
        case "pool_insufficient":
            return f"任务 {task} 无法抽取：\n" + "\n".join(f"· {p}" for p in f["problems"])
        case "draw_closed":
            return f"任务 {task} 第{f['attempt']}次抽取已{status}。"
        case "amendment_mismatch":
            return f"抽取记录第{f['seq']}项变更与重放结果不符。"
        case "replacement_unavailable":
            return (
                f"无法替换：抽取记录依次产生的下一位 {f['name']}（{f['certificate']}）已停用或没有"
                "企业微信账号，且在申请替换前没有已确认的请假或回避登记，不能跳过（第29条）。"
                "请为其登记请假（或恢复其账号）后重新申请替换。申请仍待审批。"
            )
        case "no_live_draw":
            return f"编号 {f['number']} 不属于有效的抽取结果。"
        case "no_part":
            return "该抽取没有这部分结果。"
        case "no_draw":
            return f"任务 {task} 尚未抽取。"
        case "no_attempt":
            return f"任务 {task} 没有第{f['attempt']}次抽取。"
        case "awaiting_witness":
            return f"任务 {task} 正在等待见证值，抽取前不能导出（记录中含有密钥）。"
    return f"无法完成该操作（{exc.reason}）。"
