"""Every refusal in Chinese: one sentence per error code (docs/errors.md), for the people's pages
and for the API when a client asks in Chinese (``Accept-Language: zh``). The CLI keeps its own
English sentences (``str(error)``); both come from the same code, so they cannot disagree on what
happened — only on the words.

A sentence names things as a person knows them — the case number, the department's Chinese name,
the step — from the words the page passes in (``case``, ``department``, ``step``, …) or that the
error carries (``error.words``, e.g. the time a locked account opens again, in local time). A word
the caller does not know falls back to a general one ("该工单", "本部门"). Never an id, never an
English enum: a unit test holds every code to a sentence and every sentence to Chinese.
"""

from __future__ import annotations

from string import Formatter
from typing import Any

__all__ = ["CHINESE", "DETAILS", "FIELDS", "STEPS", "chinese", "detail", "sentence"]

# the words a sentence may use, and what stands in when the caller does not know them
_DEFAULTS = {"case": "该工单", "department": "本部门", "step": "这一步", "until": "稍后", "field": "填写的内容",
             "grid": "所选网格", "limit": "规定大小", "wait": "片刻"}

STEPS = {"report": "上报", "accept": "受理", "first_contact": "首问办结", "dispatch": "派单", "acknowledge": "报到",
         "reject": "退单", "handle": "处置", "feedback": "反馈", "evaluate": "评价", "close": "办结", "reopen": "返工",
         "escalate": "督办升级", "duplicate": "标记重复件", "cancel": "撤销", "extension": "申请延期",
         "extension-approve": "同意延期", "extension-refuse": "不同意延期", "hold": "挂起", "resume": "恢复", "place": "定位"}

CHINESE: dict[str, str] = {
    # sign-in and permission
    "dispatch_error": "操作未能完成：{field}有误",
    "unauthenticated": "用户名或密码不正确，或登录已过期：请重新登录",
    "account_locked": "登录失败次数过多，账户已暂时锁定：请于 {until} 后再试",
    "forbidden": "您没有权限进行这项操作，或这件工单不在您的辖区",
    "backfill_not_allowed": "只有系统管理员可以补录过去的业务时间",
    "forged_department": "消息所称的部门与发送它的部门不符，已拒收",
    "forged_actor": "消息所称的操作人不是该通道允许的身份，已拒收",
    "not_an_answer": "部门的答复通道只接受报到、退单、处置、反馈和申请延期",
    "refused": "{case}：这一步被拒绝",
    "rate_limited": "操作过于频繁：请 {wait} 后再试",
    "too_large": "提交的内容过大（超过{limit}）：请缩小后重试",
    "not_found": "没有这个页面",
    "method_not_allowed": "这个页面不能这样提交",
    "internal_error": "系统出现意外问题，已记录：请稍后再试",
    "usage": "命令的用法不正确",
    "interrupted": "操作已中断",
    "oversized": "消息过大，已拒收",
    "parking_full": "{case} 等待派单的答复过多，已拒收",
    "invalid_event": "无法读取的事件，已隔离",
    "position_outside_grids": "这个位置不在任何网格内：请选择网格",
    "not_waiting_to_be_placed": "这条上报已不在待定位队列中：可能已由其他调度员定位",
    "command_not_found": "没有找到这次提交的记录",
    "unknown_user": "没有这个用户",
    "user_exists": "这个用户名已被使用",
    "invalid_command": "{field}：填写有误，请检查后重试",
    "business_time_out_of_range": "业务时间超出允许范围（不早于 2000 年，不晚于当前时间 15 分钟）",
    "duplicate_command": "这一操作已经提交过，不会重复记录",
    "already_reported": "这件事已经上报过（{case}）",
    "concurrent_change": "{case} 刚被他人修改：请再试一次",
    "ticket_not_found": "没有找到工单 {case}",
    "unknown_reference": "没有这个{field}",
    "unknown_grid": "没有这个网格",
    "unknown_community": "没有这个社区",
    "unknown_street": "没有这个街道",
    "unknown_district": "没有这个区",
    "unknown_department": "没有这个部门",
    "unknown_category": "没有这个类别",
    "unknown_priority": "没有这个紧急程度",
    "reference_data_error": "基础数据文件有误：{field}",
    "would_orphan_tickets": "新的基础数据缺少已有工单用到的网格、类别或部门",
    # the lifecycle
    "transition_error": "{case} 现在不能{step}",
    "ticket_closed": "{case} 已经结束，不能再{step}",
    "illegal_transition": "{case} 当前的状态不能{step}",
    "ticket_not_dispatched": "{case} 还没有派单，不能{step}",
    "ticket_not_handled": "{case} 还没有处置完成，不能{step}",
    "ticket_not_evaluated": "{case} 还没有评价，不能{step}",
    "feedback_not_given": "{case} 还没有向报告人反馈处置结果：请先反馈，再评价",
    "not_your_whistle": "{department}在 {case} 上没有待答复的派单",
    "call_already_answered": "{department}已经答复过 {case} 的派单",
    "awaiting_dispatch": "{case} 还没有到达这次派单：请等派单到达后再答复",
    "call_replaced": "{case} 的这次派单已被重新派单取代",
    "not_lead_department": "{case} 只有主办部门可以{step}",
    "already_escalated": "{case} 已经升级到这一级或更高",
    "top_of_ladder": "{case} 已在区级，不能再升级",
    "rework_required": "{case} 群众不满意或问题未解决：请返工，或写明中心研判理由后办结",
    "reopen_needs_reason": "{case} 群众满意且问题已解决：返工需写明理由",
    "duplicate_of_ended": "原案件已撤销或本身是重复件：请标记为承办工作的那件工单的重复件",
    "extension_pending": "{case} 已有一项延期申请等待网格中心审批",
    "no_extension_pending": "{case} 没有等待审批的延期申请",
    "already_on_hold": "{case} 已经挂起",
    "not_on_hold": "{case} 没有挂起",
    "time_goes_backwards": "{case} 的业务时间早于它的上一步",
    # databases
    "database_error": "数据库无法按要求使用",
    "database_not_found": "没有找到数据库",
    "not_a_dispatch_database": "这不是本系统的数据库",
    "database_needs_upgrade": "数据库需要升级：请联系系统管理员",
    "database_unavailable": "数据库暂时无法连接：请稍后再试",
    "unsafe_target": "目标位置已有其他数据，为安全起见未写入",
}


# what a refusal of bad input is about (``error.words["why"]``), when the code alone says too little
DETAILS: dict[str, str] = {
    "photo_too_large": "照片太大（超过 {limit}）：请换一张较小的照片",
    "photo_type": "照片格式不支持：请上传 JPEG、PNG、WebP 或 GIF 图片",
    "photo_unreadable": "照片无法识别：请重新拍摄或换一张照片",
    "body_too_large": "提交的内容过大（超过 {limit}）：请缩小照片或删减文字后重试",
    "extension_hours": "延期小时数：请填写 1 到 720 的整数",
    "place_grid": "请选择这条上报所在的网格，再定位",
    "no_such_step": "没有这个操作",
    "stale_form": "页面已过期：请刷新页面后重试",
    "media_not_yours": "照片只能在这次上报时上传，不能引用已存的照片",
    "rules_differ": "规则与现行基础数据有 {count} 处不同：推演只能改时限规则、派单路由和工作日历，地点、部门、紧急程度和类别须保持不变",
    "rules_sections": "规则只能包含时限规则、类别的派单路由、工作时间和工作日历这几部分",
    "rules_category": "规则里的类别须是现行的类别，请按现行类别的编号填写",
}

# the fields of a command as a form names them
FIELDS = {"description": "描述", "reason": "理由", "result": "处置结果", "message": "反馈内容", "original_id": "原案件编号",
          "photo": "照片", "grid": "网格", "category": "类别", "channel": "来源", "location": "位置", "lead": "主办部门",
          "cooperating": "协办部门", "satisfaction": "评价", "override": "研判理由", "mode": "首问方式",
          "minutes": "延期时长", "hours": "延期小时数", "reporter": "报告人", "position": "位置", "note": "备注",
          "priority": "紧急程度", "department": "部门", "media": "照片", "occurred_at": "业务时间", "name": "用户名"}


class _Words(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return _DEFAULTS.get(key, "")


def sentence(code: str, **words: Any) -> str:
    """The Chinese sentence of ``code`` with ``words`` filled in (unknown code: a general one)."""
    template = CHINESE.get(code) or CHINESE["dispatch_error"]
    given = _Words({k: v for k, v in words.items() if v not in (None, "")})
    return Formatter().vformat(template, (), given)


def detail(why: str, **words: Any) -> str:
    """The sentence of a refusal that is about one thing (``DETAILS``): a photo, a form, a field."""
    return Formatter().vformat(DETAILS[why], (), _Words(words))


def chinese(error: Any, **words: Any) -> str:
    """A refusal in Chinese: its code's sentence, with what the error itself carries (``words``)
    and what the caller knows (the case number, the department's name, the step)."""
    carried = dict(getattr(error, "words", None) or {}) | {k: v for k, v in words.items() if v}
    code = getattr(error, "code", "dispatch_error")
    why = carried.pop("why", None)
    if why in DETAILS:
        return detail(why, **carried)
    if "field" not in carried:  # "description: too long" → 描述
        head = str(error).split(":", 1)[0].strip().split(".")[-1]
        if head in FIELDS:
            carried["field"] = FIELDS[head]
    return sentence(code, **carried)
