"""Contact details typed into free text are masked wherever text leaves for analysis."""

from __future__ import annotations

from dispatch.adapters.vault import scrub


def test_phone_id_card_and_email_numbers_are_masked_and_nothing_else() -> None:
    assert scrub("联系电话13812345678，身份证310104198001011234") == "联系电话138****5678，身份证310104********1234"
    assert scrub("call +86 138-1234-5678 or 021-64881234") == "call 138****5678 or 021-****1234"
    assert scrub("mail zhang.san@example.com.cn") == "mail z***@example.com.cn"
    kept = "工单 CAOJING-20261126-00001，订单号 20250924000361234567，3 处，8 米"
    assert scrub(kept) == kept
    assert scrub(None) is None and scrub("") == ""
