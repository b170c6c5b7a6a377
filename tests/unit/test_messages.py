"""One catalogue gives every error code its Chinese sentence (dispatch.domain.messages): no code without
one, no sentence with an English word or an id, and the sentence names what the page knows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dispatch.domain import errors
from dispatch.domain.messages import CHINESE, DETAILS, chinese, sentence

DOC = (Path(__file__).parents[2] / "docs" / "errors.md").read_text(encoding="utf-8")
CJK = re.compile(r"[\u4e00-\u9fff]")
# what may stay in Latin letters in a sentence a person reads: file formats and units
LATIN_OK = {"JPEG", "PNG", "WebP", "GIF", "JSON", "MB", "KB"}


def _codes_of_classes() -> set[str]:
    found, stack = set(), [errors.DispatchError]
    while stack:
        cls = stack.pop()
        try:  # the code the class answers with (HiddenTicket speaks as ticket_not_found)
            found.add(cls.__new__(cls).code)
        except AttributeError:  # a code made of what an instance carries (Refused)
            found.add(errors._snake(cls.__name__))
        stack.extend(cls.__subclasses__())
    return found


def _codes_of_the_doc() -> set[str]:
    """The codes in the first cell of each table row of docs/errors.md."""
    cells = [line.split("|")[1] for line in DOC.splitlines() if line.startswith("| `")]
    return {code for cell in cells for code in re.findall(r"`([a-z_]+)`", cell)}


def test_every_code_of_the_errors_and_of_the_docs_has_a_chinese_sentence() -> None:
    codes = _codes_of_classes() | _codes_of_the_doc()
    assert len(codes) > 60
    assert sorted(codes - CHINESE.keys()) == []


@pytest.mark.parametrize("code", sorted(CHINESE))
def test_every_sentence_is_chinese_and_names_no_id(code: str) -> None:
    said = sentence(code)
    assert CJK.search(said), said
    latin = set(re.findall(r"[A-Za-z_]{2,}", said)) - LATIN_OK
    assert not latin, f"{code}: {said}"
    assert "{" not in said


@pytest.mark.parametrize("why", sorted(DETAILS))
def test_every_detail_is_chinese(why: str) -> None:
    said = chinese(errors.InvalidCommand("x").saying(why=why, limit="10 MB"))
    assert CJK.search(said) and not set(re.findall(r"[A-Za-z_]{2,}", said)) - LATIN_OK, said


def test_a_refusal_names_the_case_number_the_department_and_the_step() -> None:
    said = chinese(errors.NotYourWhistle("chengguan has no call on ticket 0b0c…"), case="CAOJING-20261120-00001",
                   department="城管")
    assert said == "城管在 CAOJING-20261120-00001 上没有待答复的派单"
    assert chinese(errors.TicketNotHandled("cannot evaluate ticket …: it is dispatched"), case="C-1",
                   step="评价") == "C-1 还没有处置完成，不能评价"
    # without the words, general ones: never an id, never the English sentence
    assert chinese(errors.NotLeadDepartment("only the lead department gives the feedback")) == "该工单 只有主办部门可以这一步"


def test_bad_input_names_the_field_in_chinese() -> None:
    assert chinese(errors.InvalidCommand("description: String should have at most 4000 characters")) == \
        "描述：填写有误，请检查后重试"
    assert chinese(errors.InvalidCommand("photo: not a picture this server can read").saying(why="photo_unreadable")) \
        == "照片无法识别：请重新拍摄或换一张照片"


def test_a_locked_account_says_until_when_in_the_words_the_page_gives() -> None:
    locked = errors.AccountLocked("too many failed sign-ins: try again after 2026-11-20T09:15+00:00")
    assert chinese(locked, until="17:15") == "登录失败次数过多，账户已暂时锁定：请于 17:15 后再试"


def test_a_refusal_from_the_kafka_engine_speaks_its_own_code() -> None:
    refused = errors.Refused("ticket … is closed; nothing more can happen to it", "ticket_closed")
    assert chinese(refused, case="C-9", step="处置") == "C-9 已经结束，不能再处置"
