"""A realistic synthetic directory for the demo and the bench, written as spreadsheets.

The demo loads these files through `storage.directory.import_rows`, the same path a bureau's
own spreadsheets take. Everything is deterministic given the seed (``random.Random(seed)``):
this is made-up data, not a draw, so no secure randomness is wanted here.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from inspection.uscc import CHARSET, make_uscc
from storage.directory.columns import SPECS, TAG_FIELD, Kind, headers
from storage.directory.importer import import_rows
from storage.directory.report import ImportReport
from storage.spreadsheet import Cell, SheetSpec, write_csv, write_xlsx

SEED_MIGRATION = Path(__file__).parent / "migrations" / "versions" / "0002_seed_organisations.py"
NIGHT_TAG = "夜间生产"  # a department-defined tag (Art. 12), as a 标识：夜间生产 column


@dataclass(frozen=True)
class Org:
    code: str
    name: str
    level: str
    parent_code: str | None


@cache
def organisations() -> tuple[Org, ...]:
    """The seeded organisation tree (the 0002 migration is the single source of truth)."""
    spec = importlib.util.spec_from_file_location("_seed_organisations", SEED_MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(
        Org(str(r["code"]), str(r["name"]), str(r["level"]), r["parent_code"])
        for r in module.rows()
    )


def counties() -> list[Org]:
    return [o for o in organisations() if o.level == "county"]


# --- targets --------------------------------------------------------------------------------

# industry -> (pollutant types, typical supervision type, performance-graded?)
INDUSTRIES: dict[str, tuple[tuple[str, ...], str, bool]] = {
    "电力、热力生产和供应业": (("废气", "废水", "固体废物"), "排污许可重点管理", True),
    "煤炭开采和洗选业": (("废水", "固体废物", "扬尘"), "排污许可重点管理", False),
    "化学原料和化学制品制造业": (("废气", "废水", "危险废物"), "排污许可重点管理", True),
    "有色金属冶炼和压延加工业": (("废气", "废水", "重金属"), "排污许可重点管理", True),
    "黑色金属冶炼和压延加工业": (("废气", "固体废物"), "排污许可重点管理", True),
    "非金属矿物制品业": (("废气", "扬尘"), "排污许可简化管理", True),
    "农副食品加工业": (("废水", "废气"), "排污许可简化管理", False),
    "食品制造业": (("废水",), "排污许可简化管理", False),
    "医药制造业": (("废气", "废水", "危险废物"), "排污许可重点管理", True),
    "畜牧业": (("废水", "恶臭"), "排污许可简化管理", False),
    "水的生产和供应业": (("废水", "污泥"), "排污许可重点管理", False),
    "生态保护和环境治理业": (("危险废物", "废气"), "排污许可重点管理", False),
    "卫生": (("医疗废物", "废水"), "排污许可简化管理", False),
    "机动车、电子产品和日用产品修理业": (("废气", "危险废物"), "排污登记管理", False),
    "石油、煤炭及其他燃料加工业": (("废气", "废水", "危险废物"), "排污许可重点管理", True),
}
INDUSTRY_WORDS = {
    "电力、热力生产和供应业": ("热电", "发电", "能源", "供热"),
    "煤炭开采和洗选业": ("煤业", "矿业", "煤炭"),
    "化学原料和化学制品制造业": ("化工", "化学", "氯碱"),
    "有色金属冶炼和压延加工业": ("铝业", "稀土", "有色金属"),
    "黑色金属冶炼和压延加工业": ("钢铁", "特钢", "铁合金"),
    "非金属矿物制品业": ("水泥", "建材", "玻璃"),
    "农副食品加工业": ("肉业", "粮油", "淀粉"),
    "食品制造业": ("乳业", "食品", "饮品"),
    "医药制造业": ("制药", "药业", "生物"),
    "畜牧业": ("牧业", "养殖", "牧场"),
    "水的生产和供应业": ("水务", "污水处理", "供排水"),
    "生态保护和环境治理业": ("环保", "固废处置", "环境科技"),
    "卫生": ("医院", "中心卫生院", "人民医院"),
    "机动车、电子产品和日用产品修理业": ("汽车维修", "汽修", "机动车检测"),
    "石油、煤炭及其他燃料加工业": ("煤化工", "焦化", "能源化工"),
}
TRADE_NAME_CHARS = "鑫泰华盛恒达兴隆瑞宏远鼎源丰正通利新昌金宇伊蒙草原塞北黄河阴山天骄嘉和信诚永"
FORMS = ("有限公司", "有限责任公司", "股份有限公司")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐韩冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬鹏辉建国志文斌宇浩凯健俊帆帅旭宁龙林欣晨阳巴特尔其木格乌兰图雅"
MONGOLIAN_NAMES = ("巴特尔", "其木格", "乌兰图雅", "额尔敦", "苏和", "那仁", "阿拉坦", "斯琴")


def _person(rng: random.Random) -> str:
    if rng.random() < 0.12:
        return rng.choice(MONGOLIAN_NAMES) + rng.choice(("", "", "巴雅尔", "花"))
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _date_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randrange((end - start).days + 1))


def _weighted(rng: random.Random, table: Sequence[tuple[Any, float]]) -> Any:
    values, weights = zip(*table, strict=True)
    return rng.choices(values, weights)[0]


def _uscc(rng: random.Random, county: str, used: set[str]) -> str:
    while True:
        # 9 = market-regulation authority, 1 = company; then the division, then an organisation
        # code in the "MA" series used for codes issued since 2015.
        body = "MA" + "".join(rng.choice(CHARSET) for _ in range(7))
        code = make_uscc("91" + county + body)
        if code not in used:
            used.add(code)
            return code


def target_rows(rng: random.Random, count: int) -> Iterator[dict[str, Cell]]:
    """``count`` target rows (field -> cell), about one company in ten with two sites."""
    places = counties()
    by_code = {o.code: o for o in organisations()}
    used_codes: set[str] = set()
    used_names: set[str] = set()
    produced = 0
    end = dt.date(2024, 6, 30)
    while produced < count:
        county = rng.choice(places)
        city = by_code[str(county.parent_code)]
        industry = rng.choice(list(INDUSTRIES))
        pollutants, supervision, graded = INDUSTRIES[industry]
        for _ in range(100):
            prefix = rng.choice(("内蒙古", city.name.removesuffix("生态环境局")))
            trade = "".join(rng.sample(TRADE_NAME_CHARS, 2))
            name = prefix + trade + rng.choice(INDUSTRY_WORDS[industry]) + rng.choice(FORMS)
            if name not in used_names:
                break
        else:
            name = f"{name[:-4]}{produced}号{name[-4:]}"
        used_names.add(name)
        uscc = _uscc(rng, county.code, used_codes)
        established = _date_between(rng, dt.date(1985, 1, 1), dt.date(2023, 12, 31))
        sites = 2 if rng.random() < 0.1 else 1
        permitted = rng.random() < 0.9  # the rest are known by their USCC only
        tier = _weighted(rng, (("特殊", 0.02), ("重点", 0.18), ("一般", 0.80)))
        for site in range(1, sites + 1 if permitted else 2):
            if produced >= count:
                return
            construction = rng.random() < 0.08
            row: dict[str, Cell] = {
                "name": name,
                "uscc": uscc,
                "permit_no": f"{uscc}{site:03d}{'P' if tier != '一般' else 'W'}"
                if permitted
                else "",
                "legal_rep": _person(rng),
                "entity_type": rng.choice(("有限责任公司", "股份有限公司", "国有企业")),
                "registration_authority": county.name.removesuffix("分局") + "市场监督管理局",
                "established_on": established,
                "org_code": county.code if rng.random() < 0.7 else county.name,
                "tier": tier,
                "industry": industry,
                "pollutant_types": "、".join(pollutants),
                "scale": _weighted(
                    rng, (("大型", 0.05), ("中型", 0.2), ("小型", 0.55), ("微型", 0.2))
                ),
                "production_cycle": _weighted(
                    rng, (("全年", 0.8), ("季节性", 0.15), ("间歇", 0.05))
                ),
                "supervision_type": supervision if tier != "一般" else "排污登记管理",
                "performance_grade": rng.choice("ABCD") if graded and rng.random() < 0.6 else "",
                "on_positive_list": "是" if rng.random() < 0.05 else "否",
                "construction_status": "在建" if construction else "已投产",
                "approval_level": _weighted(
                    rng,
                    (
                        ("", 0.6),
                        ("生态环境部", 0.02),
                        ("自治区", 0.08),
                        ("盟市", 0.2),
                        ("旗县区", 0.1),
                    ),
                ),
                "construction_started_on": None,
                "operation_started_on": None,
                "status": _weighted(rng, (("在营", 0.93), ("停产", 0.05), ("注销", 0.02))),
                "address": f"{city.name.removesuffix('生态环境局')}{county.name.removesuffix('分局')}"
                f"{rng.choice(('工业园区', '经济开发区', '镇', '街道'))}{rng.randint(1, 300)}号",
                TAG_FIELD + NIGHT_TAG: "是" if rng.random() < 0.1 else "",
            }
            if row["approval_level"] or construction:
                started = _date_between(rng, dt.date(2018, 1, 1), end)
                row["construction_started_on"] = started
                if not construction:
                    row["operation_started_on"] = _date_between(
                        rng, started, min(end, started + dt.timedelta(days=900))
                    )
            produced += 1
            yield row


# --- inspectors and check items -------------------------------------------------------------

DEPARTMENTS = ("执法科", "大气环境科", "水生态环境科", "土壤与固体废物科", "辐射安全科")
EXPERTISE = ("大气", "水", "固废", "危废", "辐射", "环评", "自动监控", "土壤", "噪声")


def inspector_rows(
    rng: random.Random, count: int, conflict_names: Sequence[str] = ()
) -> Iterator[dict[str, Cell]]:
    """Inspectors across the organisations: more at city bureaus, some auxiliary experts."""
    orgs = list(organisations())
    weights = [10 if o.level == "region" else 6 if o.level == "city" else 2 for o in orgs]
    for n in range(1, count + 1):
        org = rng.choices(orgs, weights)[0]
        auxiliary = rng.random() < 0.08
        issued = _date_between(rng, dt.date(2008, 1, 1), dt.date(2024, 6, 30))
        on_leave = rng.random() < 0.04
        leave_from = _date_between(rng, dt.date(2025, 1, 1), dt.date(2025, 12, 1))
        yield {
            "name": _person(rng),
            "gender": rng.choice("男女"),
            "unit": (
                rng.choice(("自治区生态环境监测站", "内蒙古大学生态与环境学院"))
                if auxiliary
                else org.name
            ),
            "org_code": org.code,
            "dept_code": "监测站" if auxiliary else rng.choice(DEPARTMENTS),
            "certificate_no": (f"GZ{org.code}{n:05d}" if auxiliary else f"{org.code}{n:06d}"),
            "certificate_kind": "工作证" if auxiliary else "执法证",
            "certificate_issued_on": issued,
            "position": rng.choice(("科员", "副科长", "科长", "主任科员", "一级主任科员")),
            "phone": f"1{rng.choice('35789')}{rng.randrange(10**9):09d}",
            "userid": f"insp{n:04d}",
            "auxiliary": "是" if auxiliary else "否",
            "years_of_service": min(40, 2024 - issued.year + rng.randint(0, 10)),
            "expertise": "、".join(rng.sample(EXPERTISE, rng.randint(1, 3))),
            "leave_from": leave_from if on_leave else None,
            "leave_until": leave_from + dt.timedelta(days=rng.randint(3, 30)) if on_leave else None,
            "conflicts": rng.choice(conflict_names)
            if conflict_names and rng.random() < 0.03
            else "",
            "active": "否" if rng.random() < 0.02 else "是",
        }


CHECK_ITEMS = (
    ("排污许可制度执行情况检查", "持有排污许可证或进行排污登记的单位", "《排污许可管理条例》"),
    ("环境影响评价制度执行情况检查", "建设项目建设单位", "《中华人民共和国环境影响评价法》"),
    (
        "建设项目环境保护设施“三同时”执行情况检查",
        "建设项目建设单位",
        "《建设项目环境保护管理条例》",
    ),
    (
        "危险废物规范化环境管理检查",
        "危险废物产生、经营单位",
        "《中华人民共和国固体废物污染环境防治法》",
    ),
    (
        "污染源自动监控设施运行情况检查",
        "安装自动监控设施的排污单位",
        "《污染源自动监控设施现场监督检查办法》",
    ),
    ("排污单位自行监测情况检查", "持有排污许可证的排污单位", "《排污许可管理条例》"),
    (
        "重污染天气应急减排措施落实情况检查",
        "纳入重污染天气应急减排清单的企业",
        "《中华人民共和国大气污染防治法》",
    ),
    (
        "挥发性有机物污染防治情况检查",
        "涉挥发性有机物排放的企业",
        "《中华人民共和国大气污染防治法》",
    ),
    ("扬尘污染防治措施落实情况检查", "工业企业堆场、建设工地", "《中华人民共和国大气污染防治法》"),
    ("入河排污口设置情况检查", "设置入河排污口的单位", "《中华人民共和国水污染防治法》"),
    (
        "工业固体废物污染环境防治情况检查",
        "产生工业固体废物的单位",
        "《中华人民共和国固体废物污染环境防治法》",
    ),
    (
        "土壤污染重点监管单位义务履行情况检查",
        "土壤污染重点监管单位",
        "《中华人民共和国土壤污染防治法》",
    ),
    (
        "突发环境事件应急预案备案情况检查",
        "可能发生突发环境事件的企业",
        "《突发环境事件应急管理办法》",
    ),
    (
        "核技术利用单位辐射安全检查",
        "使用放射性同位素和射线装置的单位",
        "《放射性同位素与射线装置安全和防护条例》",
    ),
    ("医疗废物处置情况检查", "医疗机构、医疗废物集中处置单位", "《医疗废物管理条例》"),
    ("噪声污染防治情况检查", "工业企业", "《中华人民共和国噪声污染防治法》"),
    ("环境信息依法披露情况检查", "依法披露环境信息的企业", "《企业环境信息依法披露管理办法》"),
    ("排污口规范化设置情况检查", "排污单位", "《排污口规范化整治技术要求》"),
    ("生态环境监测机构监测活动检查", "生态环境监测机构", "《生态环境监测机构监督管理办法》"),
    ("机动车排放检验机构检查", "机动车排放检验机构", "《中华人民共和国大气污染防治法》"),
)


def item_rows(count: int = 20) -> Iterator[dict[str, Cell]]:
    """The region department's check-item list (Art. 8-10); the first items are directed."""
    for n, (name, scope, basis) in enumerate(CHECK_ITEMS[:count], start=1):
        yield {
            "code": f"NMG-{n:03d}",
            "name": name,
            "target_scope": scope,
            "check_type": "定向" if n in (14, 19, 20) else "不定向",
            "method": "非现场" if n in (17,) else "现场",
            "legal_basis": basis,
            "responsible_dept": "执法科" if n not in (14,) else "辐射安全科",
            "org_code": "150000",
            "active": "是",
        }


# --- files ----------------------------------------------------------------------------------

Format = Literal["xlsx", "csv"]


def write_rows(kind: Kind | str, path: Path, rows: Iterator[dict[str, Cell]]) -> Path:
    """Rows (field -> cell) under the list's Chinese headers, plus any 标识：<名称> columns."""
    spec = SPECS[Kind(kind)]
    fields = [c.field for c in spec.columns]
    first = next(rows, None)
    extra = [f for f in (first or {}) if f.startswith(TAG_FIELD)]
    all_headers = [*headers(spec.kind), *(spec.header_of(f) for f in extra)]

    def cells() -> Iterator[list[Cell]]:
        if first is None:
            return
        for row in itertools.chain([first], rows):
            yield [row.get(f) for f in (*fields, *extra)]

    if path.suffix.lower() == ".csv":
        write_csv(path, all_headers, cells())
    else:
        write_xlsx(path, [SheetSpec(spec.label, all_headers, cells())])
    return path


def write_directory(
    out_dir: Path | str,
    *,
    seed: int = 2024,
    targets: int = 3000,
    inspectors: int = 300,
    items: int = 20,
    fmt: Format = "xlsx",
) -> dict[Kind, Path]:
    """Write targets, inspectors and items spreadsheets; returns them in import order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    target_list = list(target_rows(rng, targets))
    names = sorted({str(r["name"]) for r in target_list})
    paths = {
        Kind.targets: write_rows(Kind.targets, out / f"targets.{fmt}", iter(target_list)),
        Kind.inspectors: write_rows(
            Kind.inspectors, out / f"inspectors.{fmt}", inspector_rows(rng, inspectors, names)
        ),
        Kind.items: write_rows(Kind.items, out / f"items.{fmt}", item_rows(items)),
    }
    return paths


async def import_directory(
    session: AsyncSession, paths: dict[Kind, Path], *, actor: str, now: dt.datetime
) -> dict[Kind, ImportReport]:
    """Load the files through the ordinary import (targets first: conflicts refer to them)."""
    reports = {}
    for kind in (Kind.targets, Kind.inspectors, Kind.items):
        if kind in paths:
            reports[kind] = await import_rows(
                session, kind, paths[kind], actor=actor, now=now, strict=True
            )
    return reports
