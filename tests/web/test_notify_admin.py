"""Who hears what is managed at every door: the API and the admin page (the CLI in the
integration tests), by admins only; a robot's access token never shows, a secret is only ever
named."""

from __future__ import annotations

import re

from tests.web.support import Api, sign_in_page

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ROBOT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=robot-access-token-123"


def test_the_api_manages_channels_for_admins_only(api: Api) -> None:
    for who in ("desk-cg", "disp-a", "lead-a"):
        assert api.get(who, "/api/notify/channels").status_code == 403
        assert api.post(who, "/api/notify/channels", {"owner": "department:城管", "kind": "wecom",
                                                       "target": ROBOT}).status_code == 403
    made = api.post("boss", "/api/notify/channels", {"owner": "department:城管", "kind": "wecom", "target": ROBOT,
                                                      "label": "城管值班群"})
    assert made.status_code == 201, made.text
    assert made.json()["owner"] == "department:chengguan" and "robot-access-token" not in made.text
    listed = api.get("boss", "/api/notify/channels")
    assert [c["label"] for c in listed.json()] == ["城管值班群"] and "robot-access-token" not in listed.text
    literal = api.post("boss", "/api/notify/channels", {"owner": "street:漕泾镇", "kind": "dingtalk",
                                                         "target": ROBOT, "secret": "SECabc"})
    assert literal.status_code == 422 and "never the secret itself" in literal.json()["detail"]
    level = api.post("boss", "/api/notify/channels", {"owner": "street:漕泾镇", "kind": "dingtalk", "target": ROBOT,
                                                       "secret": "env:DINGTALK_SECRET"})
    assert level.status_code == 201 and level.json()["owner"] == "street:caojing"
    assert api.client.delete(f"/api/notify/channels/{made.json()['id']}",
                             headers=api.headers("boss")).status_code == 200
    assert [c["owner"] for c in api.get("boss", "/api/notify/channels").json()] == ["street:caojing"]
    assert api.get("boss", "/api/notify/failed").json() == []
    assert api.post("boss", "/api/notify/resend", {}).json() == {"resent": 0}


def test_the_admin_page_adds_lists_and_removes_channels(api: Api) -> None:
    csrf = sign_in_page(api, "disp-a")
    assert api.client.get("/admin/notify").status_code == 403
    assert "消息通知" not in api.client.get("/console").text.split("<main", 1)[0]
    csrf = sign_in_page(api, "boss")
    page = api.client.get("/admin/notify")
    assert page.status_code == 200 and "还没有通知渠道" in page.text and "部门：城管" in page.text
    added = api.client.post("/admin/notify/add", data={"csrf": csrf, "owner": "department:chengguan", "kind": "wecom",
                                                       "target": ROBOT, "label": "城管值班群", "quiet": "yes"},
                            headers=FORM, follow_redirects=True)
    assert "已添加渠道" in added.text and "城管值班群" in added.text and "robot-access-token" not in added.text
    bad = api.client.post("/admin/notify/add", data={"csrf": csrf, "owner": "department:chengguan", "kind": "email",
                                                     "target": "not-an-address"}, headers=FORM, follow_redirects=True)
    assert "渠道信息有误" in bad.text
    channel = re.search(r'action="/admin/notify/(\d+)/remove"', added.text)
    assert channel
    removed = api.client.post(f"/admin/notify/{channel.group(1)}/remove", data={"csrf": csrf}, headers=FORM,
                              follow_redirects=True)
    assert "已删除渠道" in removed.text and "还没有通知渠道" in removed.text
    stale = api.client.post("/admin/notify/add", data={"csrf": "0" * 64, "owner": "department:chengguan",
                                                       "kind": "wecom", "target": ROBOT}, headers=FORM)
    assert stale.status_code in (303, 403) and "还没有通知渠道" in api.client.get("/admin/notify").text
