"""Routers and the dispatcher, after aiogram: each handler module owns a `router`; handlers are
short async functions under a decorator that says when they run; the application includes the
routers explicitly, in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.chat.context import ROLE_LABELS, Context, Role, UserError
from bot.chat.inbound import CardEvent, Inbound, OtherEvent, TextCommand
from inspection.params import NoParamsInEffect

CommandHandler = Callable[[TextCommand, Context], Awaitable[None]]
CardHandler = Callable[[CardEvent, Context], Awaitable[None]]
EventHandler = Callable[[OtherEvent, Context], Awaitable[None]]
DueHandler = Callable[[dict[str, Any], Context], Awaitable[None]]
H = TypeVar("H", bound=Callable[..., Awaitable[None]])


@dataclass(frozen=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    roles: frozenset[Role] | None  # None: anyone, known or not
    usage: str
    summary: str
    handler: CommandHandler

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class CardRoute:
    key_prefix: str
    handler: CardHandler


@dataclass
class Router:
    name: str
    commands: list[Command] = field(default_factory=list)
    cards: list[CardRoute] = field(default_factory=list)
    events: dict[str, EventHandler] = field(default_factory=dict)
    conversations: dict[str, CommandHandler] = field(default_factory=dict)
    due: dict[str, DueHandler] = field(default_factory=dict)

    def command(
        self,
        name: str,
        *aliases: str,
        roles: Iterable[Role] | None = None,
        usage: str = "",
        summary: str = "",
    ) -> Callable[[H], H]:
        def register(fn: H) -> H:
            self.commands.append(
                Command(
                    name,
                    aliases,
                    frozenset(roles) if roles is not None else None,
                    usage or name,
                    summary or (fn.__doc__ or "").strip().splitlines()[0],
                    fn,
                )
            )
            return fn

        return register

    def card(self, key_prefix: str) -> Callable[[H], H]:
        """Card events whose EventKey starts with `key_prefix` (e.g. "result:")."""

        def register(fn: H) -> H:
            self.cards.append(CardRoute(key_prefix, fn))
            return fn

        return register

    def event(self, kind: str) -> Callable[[H], H]:
        def register(fn: H) -> H:
            self.events[kind] = fn
            return fn

        return register

    def conversation(self, state: str) -> Callable[[H], H]:
        """Free text from a user whose conversation is in `state` (e.g. a description owed)."""

        def register(fn: H) -> H:
            self.conversations[state] = fn
            return fn

        return register

    def due_action(self, kind: str) -> Callable[[H], H]:
        def register(fn: H) -> H:
            self.due[kind] = fn
            return fn

        return register


class Dispatcher:
    def __init__(self, routers: Sequence[Router] = ()) -> None:
        self.routers: list[Router] = []
        self._by_name: dict[str, Command] = {}
        for router in routers:
            self.include(router)

    def include(self, router: Router) -> None:
        for command in router.commands:
            for name in command.names:
                if name in self._by_name:
                    raise ValueError(f"command name {name!r} registered twice")
                self._by_name[name] = command
        self.routers.append(router)

    @property
    def commands(self) -> list[Command]:
        return [c for r in self.routers for c in r.commands]

    def find(self, text: str, *, prefixes: bool = True) -> tuple[Command, str] | None:
        """The command and its argument text; with `prefixes`, also for Chinese names typed
        without a space (「查询某公司」)."""
        head, _, rest = text.partition(" ")
        if head in self._by_name:
            return self._by_name[head], rest.strip()
        if not prefixes:
            return None
        for name in sorted(self._by_name, key=len, reverse=True):
            if text.startswith(name) and not name.isascii():
                return self._by_name[name], text[len(name) :].strip()
        return None

    def visible_to(self, roles: frozenset[Role]) -> list[Command]:
        return [c for c in self.commands if c.roles is None or c.roles & roles]

    def due_handler(self, kind: str) -> DueHandler | None:
        for router in self.routers:
            if kind in router.due:
                return router.due[kind]
        return None

    async def dispatch(self, message: Inbound, ctx: Context) -> None:
        ctx.commands = self.visible_to
        try:
            await self._dispatch(message, ctx)
        except NoParamsInEffect as exc:
            # Art. 45: a date before the first configured rules has none in force; say so.
            raise UserError(f"{exc}，无法按当时的规则办理。请联系自治区管理员配置。") from exc

    async def _dispatch(self, message: Inbound, ctx: Context) -> None:
        if isinstance(message, TextCommand):
            await self._text(message, ctx)
        elif isinstance(message, CardEvent):
            await self._card(message, ctx)
        else:
            for router in self.routers:
                handler = router.events.get(message.kind)
                if handler is not None:
                    await handler(message, ctx)
                    return
            if not message.kind.startswith("event:"):
                ctx.reply("目前只能处理文字消息。发送「帮助」查看可用命令。")

    async def _text(self, message: TextCommand, ctx: Context) -> None:
        # A user in the middle of something (a description owed) is answering it, unless the
        # message plainly starts with a command word: "帮助企业整改…" is a description.
        found = self.find(message.text, prefixes=False)
        if found is None:
            state = await ctx.repos.conversations.state(ctx.actor.userid, ctx.now())
            if state is not None:
                for router in self.routers:
                    handler = router.conversations.get(state)
                    if handler is not None:
                        await handler(message, ctx)
                        return
            found = self.find(message.text)
        if found is None:
            raise UserError(self._unknown(message.text, ctx))
        command, rest = found
        if command.roles is not None:
            if not ctx.actor.known:
                raise UserError("您还不是本系统的用户。请联系本单位管理员为您开通。")
            if not command.roles & ctx.actor.roles:
                allowed = "、".join(ROLE_LABELS[r] for r in sorted(command.roles))
                raise UserError(
                    f"「{command.name}」仅限{allowed}使用。发送「帮助」查看您可用的命令。"
                )
        consumed = message.text[: len(message.text) - len(rest)].rstrip() if rest else message.text
        raw = message.typed_after(consumed) if message.raw is not None else None
        args = TextCommand(message.user, rest, message.msg_id, message.create_time, raw, message)
        await command.handler(args, ctx)

    def _unknown(self, text: str, ctx: Context) -> str:
        head = text.split(" ", 1)[0][:20] or text[:20]
        close = [
            c.name
            for c in self.visible_to(ctx.actor.roles)
            if any(ch in c.name for ch in head) and len(head) <= 8
        ][:3]
        hint = f"您是不是想用：{'、'.join(close)}？" if close else ""
        return f"未识别的命令「{head}」。{hint}发送「帮助」查看可用命令。"

    async def _card(self, event: CardEvent, ctx: Context) -> None:
        for router in self.routers:
            for route in router.cards:
                if event.event_key.startswith(route.key_prefix):
                    await route.handler(event, ctx)
                    return
        raise UserError("该卡片已失效或无法识别。")
