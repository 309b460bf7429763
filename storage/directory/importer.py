"""Importing a bureau's spreadsheet into one of the 一单两库 lists (Art. 8-18).

Bureaus keep these lists in Excel. `import_rows` takes such a spreadsheet as it is, validates
every row (pydantic models, Chinese reasons), adds new records, updates only the fields that
changed, and records every change of a target's tier, tags or status and of an inspector's
standing in `DirectoryHistory` (Art. 13, 16). Re-importing the same file changes nothing.

Import semantics:

* a column missing from the file leaves that field untouched; an empty cell in a column that
  is there clears the field (the spreadsheet is the directory);
* a target's key is its permit/registration number, else its USCC; an inspector's is the
  certificate number; a check item's is (organisation, item number);
* department-defined tags are columns headed ``标识：<名称>`` (Art. 12);
* records missing from the file are left alone (a partial file is not a deletion list).

Performance (bench/bench_import.py): existing records are read once as key -> (id,
fingerprint of the compared fields); rows are validated and written in batches with
executemany, never one SELECT per row; only rows whose fingerprint differs are read back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import JSON, Date, Table, Text, bindparam, insert, select, text, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from storage import audit, facts, register
from storage.directory.choices import APPROVAL_CHOICES, STATUS_CHOICES, TIER_CHOICES
from storage.directory.columns import SPECS, TAG_FIELD, TAG_PREFIX, Kind, Spec
from storage.directory.lookups import TABLES, load_orgs, load_target_index
from storage.directory.report import Change, ImportReport, StrictImportError
from storage.directory.rows import RowContext
from storage.directory.template import EXAMPLE_MARK
from storage.directory.values import clean_text
from storage.models import Department, DirectoryHistory
from storage.spreadsheet import Cell, SheetTable, cell_text, normalise_header, open_table

# Without the caller's settings, the day of ``now`` is taken in the settings' default zone.
DEFAULT_TZ = ZoneInfo(Settings.model_fields["timezone"].default)
BATCH = 2000
LOAD_PAGE = 10000
SQLITE_IMPORT_CACHE_KB = 65536
MAX_TAG_NAME = 30  # DirectoryHistory.field is 40 characters: "tags." + name
HISTORY_KIND = {Kind.targets: "target", Kind.inspectors: "inspector", Kind.items: "item"}
# DirectoryHistory.evidence of a change an import made; a change with other evidence ("chat":
# 修改对象; "inspection:N": a result) was made outside the sheet, and a re-import keeps it
# unless it overwrites. (Rows from before this marking have "": treated as the sheet's.)
IMPORT_EVIDENCE = "import"
CHAT_EDIT = "chat"


def _canon(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return tuple(_canon(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _canon(v)) for k, v in value.items()))
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _json_object(value: Any) -> dict[str, Any]:
    """A JSON column selected as text (most targets have no department tags: "{}")."""
    if isinstance(value, dict):
        return value
    return json.loads(value) if value and value != "{}" else {}


def _table(model: Any) -> Table:
    """The Core table of a model: executemany without the ORM's per-object work."""
    return cast(Table, model.__table__)


@dataclass
class _Pending:
    row: int
    key: str
    values: dict[str, Any]  # compared fields, file values
    tag_values: dict[str, str | None]
    record: dict[str, Any]  # full record, for an insert
    existing_id: int | None = None


class _Importer:
    def __init__(
        self,
        session: AsyncSession,
        spec: Spec,
        *,
        actor: str,
        now: dt.datetime,
        today: dt.date,
        strict: bool,
        report: ImportReport,
        overwrite: bool = False,
    ) -> None:
        self.session = session
        self.overwrite = overwrite
        self.edited_elsewhere: set[tuple[str, str]] = set()
        self.spec = spec
        self.model = TABLES[spec.kind]  # the ORM class
        self.actor = actor
        self.now = now
        self.today = today
        self.strict = strict
        self.report = report
        self.existing: dict[str, tuple[int, int]] = {}  # key -> (id, fingerprint)
        self.as_text: list[int] = []  # positions in `compared` of JSON and date fields
        self.seen: dict[str, int] = {}  # key -> first row in this file
        self.claimed: set[int] = set()  # existing ids already matched by a row of this file
        self.userids: dict[str, str] = {}  # inspectors: userid -> certificate number
        self.permit_usccs: set[str] = set()  # targets: USCCs of records keyed by a permit
        self.departments: dict[tuple[str, str], str] = {}  # (org, name or code) -> code
        self.new_departments: list[dict[str, Any]] = []
        self.pending: list[_Pending] = []
        self.compared: list[str] = []
        self.tag_names: list[str] = []
        self.file_headers: dict[str, str] = {}

    # -- setup --

    def _db_key(self, row: Any) -> str:
        if self.spec.kind is Kind.items:
            return f"{row.org_code}/{row.code}"
        if self.spec.kind is Kind.inspectors:
            return str(row.certificate_no)
        return str(row.key)

    def _fingerprint(self, row: Mapping[Any, Any], tags: Mapping[str, Any] | None) -> int:
        """A hash of the compared fields, the same for a stored record and an unchanged row.

        JSON and date fields are compared as text: the stored JSON text (selected without
        decoding, see `load`) against json.dumps of the row, the date's ISO form on both sides.
        A fingerprint that differs only sends the row to `_update`, which compares the decoded
        values, so a difference in representation costs time, never correctness. Equal
        fingerprints of one key with different values would need a 64-bit hash collision.
        """
        values = [row[f] for f in self.compared]
        for position in self.as_text:
            value = values[position]
            if value is not None and not isinstance(value, str):
                values[position] = (
                    json.dumps(value) if isinstance(value, list | dict) else str(value)
                )
        if self.tag_names:
            tags = tags or {}
            values.extend(tags.get(t) for t in self.tag_names)
        return hash(tuple(values))

    async def load(self, file_headers: dict[str, str]) -> None:
        """Existing records as key -> (id, fingerprint of the compared fields), read once."""
        spec = self.spec
        self.file_headers = file_headers
        # A target's "key" is derived, never compared: another key is another target.
        self.compared = [f for f in spec.model.model_fields if f in file_headers]
        self.tag_names = sorted(
            f[len(TAG_FIELD) :] for f in file_headers if f.startswith(TAG_FIELD)
        )
        key_names = {
            Kind.targets: ["key", "uscc"],
            Kind.inspectors: ["certificate_no", "userid", "active"],
            Kind.items: ["org_code", "code"],
        }[spec.kind]
        # Core columns (no ORM row machinery), and JSON and dates as text (see _fingerprint):
        # decoding and parsing them for 100,000 rows costs seconds.
        table = _table(self.model)
        self.as_text = [
            i for i, f in enumerate(self.compared) if isinstance(table.c[f].type, JSON | Date)
        ]
        names = ["id", *self.compared, *key_names, *(["tags"] if self.tag_names else [])]
        columns = [
            type_coerce(table.c[n], Text).label(n)
            if n == "tags" or isinstance(table.c[n].type, JSON | Date)
            else table.c[n]
            for n in dict.fromkeys(names)
        ]
        stmt = select(*columns).order_by(table.c.id).limit(LOAD_PAGE)
        last = 0
        while True:  # keyset pages: far cheaper than a server-side stream on aiosqlite
            rows = (await self.session.execute(stmt.where(table.c.id > last))).all()
            for row in rows:
                mapping = row._mapping
                tags = _json_object(mapping["tags"]) if self.tag_names else None
                self.existing[self._db_key(row)] = (row.id, self._fingerprint(mapping, tags))
                if spec.kind is Kind.inspectors and row.userid and row.active:
                    self.userids[row.userid] = row.certificate_no
                elif spec.kind is Kind.targets and row.uscc and row.key != row.uscc:
                    self.permit_usccs.add(row.uscc)
            if len(rows) < LOAD_PAGE:
                break
            last = rows[-1].id
        if spec.kind is Kind.inspectors:
            depts = await self.session.execute(
                select(Department.org_code, Department.code, Department.name)
            )
            for org_code, code, name in depts:
                self.departments.setdefault((org_code, clean_text(name)), code)
                self.departments.setdefault((org_code, clean_text(code)), code)

    async def run(self, table: SheetTable) -> None:
        context = RowContext(self.today, await load_orgs(self.session))
        if "conflicts" in table.present:
            context.targets = await load_target_index(self.session)
        await self.load(table.headers)
        # (Tried: writing one batch while validating the next. No faster: the SQLite thread
        # and this loop then contend for the GIL.)
        for number, record in table.rows:
            item = self.validate(number, record, context)
            if item is not None:
                self.classify(item)
            if len(self.pending) >= BATCH:
                await self.flush(self._take())
        await self.flush(self._take())

    # -- rows --

    def validate(
        self, number: int, record: dict[str, Cell], context: RowContext
    ) -> _Pending | None:
        spec, report = self.spec, self.report
        if clean_text(cell_text(record.get("name"))).startswith(EXAMPLE_MARK):
            report.examples_skipped.append(number)  # the template's example row
            return None
        tag_cells = {name: record.pop(TAG_FIELD + name, None) for name in self.tag_names}
        ok = True
        try:
            row = spec.model.model_validate(record, context=context)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                name = str(error["loc"][0]) if error["loc"] else ""
                reason = str(error.get("ctx", {}).get("error") or error["msg"])
                report.reject(number, self._header(name), reason, cell_text(record.get(name)))
            ok = False
        tag_values: dict[str, str | None] = {}
        for name, value in tag_cells.items():
            text = clean_text(value)
            if len(text) > 100:
                report.reject(number, self._header(TAG_FIELD + name), "超过100个字符", text)
                ok = False
            tag_values[name] = text or None
        if not ok:
            return None
        full = dict(row.__dict__)  # the validated fields; cheaper than model_dump()
        values = {f: full[f] for f in self.compared}
        key = self._key(number, row, values, full)
        if key is None:
            return None
        first = self.seen.get(key)
        if first is not None:
            column = self._header(self._key_field(row))
            report.reject(number, column, f"与第{first}行重复（同一文件中出现两次）", key)
            return None
        self.seen[key] = number
        return _Pending(number, key, values, tag_values, full)

    def _header(self, field_name: str) -> str:
        """The column as the file heads it (the user's own words), else our header."""
        return self.file_headers.get(field_name) or self.spec.header_of(field_name)

    def _key_field(self, row: Any) -> str:
        if self.spec.kind is Kind.targets:
            return "permit_no" if row.permit_no else "uscc"
        return "certificate_no" if self.spec.kind is Kind.inspectors else "code"

    def _key(
        self, number: int, row: Any, values: dict[str, Any], full: dict[str, Any]
    ) -> str | None:
        kind = self.spec.kind
        if kind is Kind.targets:
            key = row.permit_no or row.uscc
            if not key:
                self.report.reject(
                    number,
                    self._header("permit_no"),
                    "排污许可证编号和统一社会信用代码都为空：至少填写一项",
                )
                return None
            if row.permit_no and row.uscc:
                self.permit_usccs.add(row.uscc)
            elif key in self.permit_usccs and key not in self.existing:
                # Known by its permits: a row keyed by the USCC would add the company twice.
                self.report.reject(
                    number,
                    self._header("permit_no"),
                    "该单位已按排污许可证编号登记在名录中：请填写排污许可证编号",
                    str(key),
                )
                return None
            full["key"] = key
            return str(key)
        if kind is Kind.items:
            return f"{row.org_code}/{row.code}"
        # inspectors: a WeCom account belongs to one person; the department name -> code
        if row.userid:
            holder = self.userids.get(row.userid)
            if holder is not None and holder != row.certificate_no:
                self.report.reject(
                    number,
                    self._header("userid"),
                    f"企业微信账号已属于证号为 {holder} 的人员",
                    row.userid,
                )
                return None
            self.userids[row.userid] = row.certificate_no
        if "dept_code" in values:
            code = self._department(number, row.org_code, row.dept_code)
            if code is None:
                return None
            values["dept_code"] = full["dept_code"] = code
        return str(row.certificate_no)

    def _department(self, number: int, org_code: str, name: str) -> str | None:
        if not name:
            return ""
        found = self.departments.get((org_code, name))
        if found is not None:
            return found
        if len(name) > 20:
            self.report.reject(number, self._header("dept_code"), "新科室名称超过20个字符", name)
            return None
        # A department named for the first time is created, with its name as its code.
        self.departments[(org_code, name)] = name
        self.new_departments.append({"org_code": org_code, "code": name, "name": name})
        self.report.departments_created.append(f"{org_code}/{name}")
        return name

    def classify(self, item: _Pending) -> None:
        found = self.existing.get(item.key)
        if found is None and self.spec.kind is Kind.targets:
            # A target first known by its USCC now has a permit number: re-key that record.
            uscc = item.record.get("uscc")
            if uscc and item.key != uscc and uscc in self.existing:
                old_id, _ = self.existing[uscc]
                if old_id not in self.claimed:
                    self.claimed.add(old_id)
                    item.existing_id = old_id
                    item.values["key"] = item.key
                    self.report.updated += 1
                    self.pending.append(item)
                    return
        if found is None or found[0] in self.claimed:
            self.report.added += 1
            self.pending.append(item)
            return
        existing_id, digest = found
        self.claimed.add(existing_id)
        if digest == self._fingerprint(item.values, item.tag_values):
            self.report.unchanged += 1
            return
        item.existing_id = existing_id
        self.report.updated += 1
        self.pending.append(item)

    # -- writes --

    def _writing(self) -> bool:
        return not (self.strict and self.report.rejections)

    def _take(self) -> tuple[list[_Pending], list[dict[str, Any]]]:
        """The rows and departments to write next (taken now, written maybe later)."""
        taken = (self.pending, self.new_departments)
        self.pending, self.new_departments = [], []
        return taken

    async def flush(self, taken: tuple[list[_Pending], list[dict[str, Any]]]) -> None:
        pending, departments = taken
        if not self._writing():
            return
        if departments:
            await self.session.execute(insert(Department), departments)
        # Updates first: a re-keyed target frees its old key for a row later in the batch.
        await self._update([p for p in pending if p.existing_id is not None])
        await self._insert([p for p in pending if p.existing_id is None])

    async def _insert(self, items: list[_Pending]) -> None:
        # No history row per new record: the first change's "before" is the initial value, and
        # the import itself is in the audit record. (100,000 extra rows cost ~4 s.)
        if not items:
            return
        table = self.model
        has_updated_at = hasattr(table, "updated_at")
        records = []
        for item in items:
            record = item.record
            if self.spec.tags:
                record["tags"] = {k: v for k, v in item.tag_values.items() if v is not None}
            if has_updated_at:
                record["updated_at"] = self.now
            records.append(record)
        await self.session.execute(insert(_table(table)), records)

    def _history(self, key: str, field_name: str, before: Any, after: Any) -> dict[str, Any]:
        """A DirectoryHistory row; ``before`` and ``after`` must already be JSON values."""
        return {
            "kind": HISTORY_KIND[self.spec.kind],
            "subject_key": key[:64],
            "field": field_name[:40],
            "before": before,
            "after": after,
            "actor": self.actor,
            "at": self.now,
            "evidence": IMPORT_EVIDENCE,
        }

    async def _update(self, items: list[_Pending]) -> None:
        """Write only the fields that changed, and a history row for each tracked one."""
        if not items:
            return
        before = await self._current([item.existing_id for item in items if item.existing_id])
        self.edited_elsewhere = await self._edited_elsewhere([item.key for item in items])
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        history: list[dict[str, Any]] = []
        for item in items:
            assert item.existing_id is not None
            changes = self._changes(item, before[item.existing_id], history)
            if not changes:  # the digest differed but no value did (e.g. a re-ordered tag set)
                self.report.updated -= 1
                self.report.unchanged += 1
                continue
            if hasattr(self.model, "updated_at"):
                changes["updated_at"] = self.now
            groups.setdefault(tuple(sorted(changes)), []).append(
                {"_id": item.existing_id, **{f"_{k}": v for k, v in changes.items()}}
            )
        table = _table(self.model)
        for names, params in groups.items():
            stmt = (
                update(table)
                .where(table.c.id == bindparam("_id"))
                .values({name: bindparam(f"_{name}") for name in names})
            )
            await self.session.execute(stmt, params)
            if self.spec.kind is Kind.targets and "org_code" in names:
                # Checks count where the target is: its checks' facts move with it.
                await facts.refresh_targets(self.session, [p["_id"] for p in params])
        if history:
            await self.session.execute(insert(_table(DirectoryHistory)), history)

    async def _current(self, ids: list[int]) -> dict[int, Mapping[str, Any]]:
        """The stored values of the compared fields, for the records about to change."""
        table = self.model
        wanted = ["key", *self.compared] if self.spec.kind is Kind.targets else self.compared
        columns = [table.id, *(getattr(table, f) for f in dict.fromkeys(wanted))]
        if self.spec.tags:
            columns.append(table.tags)
        current: dict[int, Mapping[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self.session.execute(select(*columns).where(table.id.in_(chunk)))
            current.update({row.id: row._mapping for row in rows})
        return current

    async def _edited_elsewhere(self, keys: list[str]) -> set[tuple[str, str]]:
        """(key, field) whose last recorded change was made outside an import (in chat, or
        from an inspection): the value last imported is no longer the value stored."""
        if self.overwrite or not self.spec.tracked:
            return set()
        kind = HISTORY_KIND[self.spec.kind]
        h = DirectoryHistory
        last: dict[tuple[str, str], str] = {}
        for start in range(0, len(keys), 500):
            chunk = [k[:64] for k in keys[start : start + 500]]
            rows = await self.session.execute(
                select(h.subject_key, h.field, h.evidence)
                .where(h.kind == kind, h.subject_key.in_(chunk))
                .order_by(h.id)
            )
            for key, name, evidence in rows:
                last[(key, name)] = evidence or ""
        return {k for k, evidence in last.items() if evidence not in ("", IMPORT_EVIDENCE)}

    def _kept(self, item: _Pending, name: str, current: Any, wanted: Any) -> bool:
        """A value edited outside the sheet since the last import stays (unless overwriting)."""
        if (item.key[:64], name) not in self.edited_elsewhere:
            return False
        self.report.kept.append(self._change(item, name, current, wanted))
        return True

    def _change(self, item: _Pending, name: str, before: Any, after: Any) -> Change:
        label = f"标识：{name[5:]}" if name.startswith("tags.") else self._header(name)
        return Change(
            item.row,
            item.key,
            name,
            _jsonable(before),
            _jsonable(after),
            label,
            _as_written(name, before),
            _as_written(name, after),
        )

    def _changes(
        self, item: _Pending, old: Mapping[str, Any], history: list[dict[str, Any]]
    ) -> dict[str, Any]:
        changes = {f: v for f, v in item.values.items() if _canon(old[f]) != _canon(v)}
        for name in [n for n in changes if self._kept(item, n, old[n], changes[n])]:
            del changes[name]
        for name, value in changes.items():
            before, after = _jsonable(old[name]), _jsonable(value)
            self.report.note_change(self._change(item, name, old[name], value))
            if name in self.spec.tracked:
                history.append(self._history(item.key, name, before, after))
        if self.tag_names:
            old_tags = dict(old["tags"] or {})
            new_tags = dict(old_tags)
            for name, tag in item.tag_values.items():
                if old_tags.get(name) != tag and self._kept(
                    item, f"tags.{name}", old_tags.get(name), tag
                ):
                    continue
                if tag is None:
                    new_tags.pop(name, None)
                else:
                    new_tags[name] = tag
            if new_tags != old_tags:
                changes["tags"] = new_tags
            for name in sorted(set(old_tags) | set(new_tags)):
                if old_tags.get(name) != new_tags.get(name):
                    before, after = old_tags.get(name), new_tags.get(name)
                    self.report.note_change(self._change(item, f"tags.{name}", before, after))
                    history.append(self._history(item.key, f"tags.{name}", before, after))
        return changes


# A stored code as the sheet writes it (tier "special" is 特殊): the first Chinese word of its
# column's choices.
_WRITTEN: dict[str, dict[Any, str]] = {
    name: {code: word for word, code in reversed(list(choices.items())) if not word.isascii()}
    for name, choices in {
        "tier": TIER_CHOICES,
        "status": STATUS_CHOICES,
        "approval_level": APPROVAL_CHOICES,
    }.items()
}


def _as_written(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "、".join(map(str, value))
    if isinstance(value, str):
        return _WRITTEN.get(name, {}).get(value, value)
    return str(_jsonable(value))


def _check_header(spec: Spec, table: SheetTable, report: ImportReport) -> None:
    for column in spec.columns:
        if column.required and column.field not in table.present:
            report.reject(table.header_row, column.header, "缺少必填列")
    for name in table.present:
        if name.startswith(TAG_FIELD) and len(name) - len(TAG_FIELD) > MAX_TAG_NAME:
            report.reject(table.header_row, table.headers[name], "标识名称超过30个字符")


@contextlib.asynccontextmanager
async def _bulk_settings(session: AsyncSession) -> AsyncIterator[None]:
    """SQLite's default 2 MB page cache thrashes on 100,000 random-key index inserts."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    before = (await session.execute(text("PRAGMA cache_size"))).scalar_one()
    await session.execute(text(f"PRAGMA cache_size=-{SQLITE_IMPORT_CACHE_KB}"))
    try:
        yield
    finally:
        await session.execute(text(f"PRAGMA cache_size={int(before)}"))


async def import_rows(
    session: AsyncSession,
    kind: Kind | str,
    path: Path | str,
    *,
    actor: str,
    now: dt.datetime,
    strict: bool,
    today: dt.date | None = None,
    tz: dt.tzinfo | None = None,
    overwrite: bool = False,
) -> ImportReport:
    """Import a spreadsheet into one of the three lists, in the caller's transaction.

    Good rows go in; bad rows are reported (row, column, reason). With ``strict``, any bad row
    raises `StrictImportError` (carrying the full report) so the caller rolls back. ``today``
    (for refusing future dates) defaults to ``now``'s date in ``tz``, the settings' time zone
    (`Settings.tz`; when not given, `Settings.timezone`'s default). Raises `SpreadsheetError`
    when the file cannot be read at all (wrong type, no header row, unknown encoding).

    A value edited in chat (or set from an inspection) since the last import is kept, and
    listed in the report, unless ``overwrite``. The template's example row is skipped.
    """
    kind = Kind(kind)
    spec = SPECS[kind]
    path = Path(path)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    report = ImportReport(kind, path.name, strict=strict)
    importer = _Importer(
        session,
        spec,
        actor=actor,
        now=now,
        today=today or now.astimezone(tz or DEFAULT_TZ).date(),
        strict=strict,
        report=report,
        overwrite=overwrite,
    )
    prefixes = {normalise_header(TAG_PREFIX): TAG_FIELD} if spec.tags else {}
    with open_table(path, spec.header_map, prefixes=prefixes) as table:
        report.unknown_headers = table.unknown_headers
        _check_header(spec, table, report)
        if not report.rejections:
            async with _bulk_settings(session):
                await importer.run(table)
        registered = {"leave_from", "leave_until"} & set(table.present)
        declared = "conflicts" in table.present
    if not report.committed:
        raise StrictImportError(report)
    if report.rejections and not (report.added or report.updated or report.unchanged):
        return report  # nothing readable: no audit entry for an import that did nothing
    # The leave and conflict columns feed the register (Art. 29): one record each, once.
    register_versions = await register.reconcile_import(
        session,
        importer.seen if kind is Kind.inspectors else (),
        leave=bool(registered),
        conflicts=declared,
        actor=actor,
        now=now,
    )
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="directory.import",
        subject=f"directory:{kind.value}",
        payload={
            "file": path.name,
            "added": report.added,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": report.rejected,
            "strict": strict,
            "overwrite": overwrite,
            "kept": len(report.kept),
            "examples_skipped": report.examples_skipped,
            "departments_created": report.departments_created,
            "register_versions": register_versions,
        },
    )
    return report
