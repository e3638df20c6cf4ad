"""The README's curl examples, run in-process against the demo account: the
documentation cannot drift from what the server answers."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from jmapcore.accounts import add_account, principal_for

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
BODIES = re.findall(r"curl -u demo:demo \S+/jmap/api/ .*?-d '(.*?)'\n```", README, re.S)


def test_the_readme_has_request_examples():
    assert len(BODIES) >= 2


@pytest.mark.parametrize("body", BODIES)
def test_readme_request_examples_run(core, body):
    pytest.importorskip("jmap_mail")
    from jmapserver.demo import seed_demo

    account = add_account(core, "demo", "demo")
    seed_demo(core, account)
    principal = principal_for(core, "demo")
    boxes = core.api(principal, msgspec.json.encode({
        "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
        "methodCalls": [["Mailbox/query", {"accountId": account.account_id, "filter": {"role": "inbox"}}, "0"]],
    }))
    inbox = msgspec.json.decode(boxes.body)["methodResponses"][0][1]["ids"][0]
    request = body.replace("ACCOUNT", account.account_id).replace('"INBOX"', f'"{inbox}"')
    result = core.api(principal, request.encode())
    assert result.status == 200, result.body
    responses = msgspec.json.decode(result.body)["methodResponses"]
    assert all(name != "error" for name, _, _ in responses), responses
    last = responses[-1][1]
    assert last.get("list") or last.get("second") == "world"
