"""RFC 8621 §3-5: Thread, Email and SearchSnippet, through real JMAP calls."""

from __future__ import annotations

import random

import msgspec
import pytest

from jmapcore.testing.querychanges import splice
from tests.mailhelpers import (
    USING,
    days,
    import_messages,
    mailboxes,
    message,
    recount,
    stored_counts,
    upload,
)


def _call(client, name, **arguments):
    return client.call(name, {"accountId": client.account_id, **arguments}, using=USING)


def test_import_get_list_properties_and_counts(mail):
    """[mail-4.8-response] [mail-4.1.1-blobId] [mail-4.1.3-convenience] [mail-2-counts]"""
    raw = message("Lunch?", "Shall we?", sender='"Alice A." <alice@example.com>', date=days(3))
    [created] = import_messages(mail, [raw], keywords={"$Flagged": True}, received=[days(4)])
    assert set(created) == {"id", "blobId", "threadId", "size"} and created["size"] == len(raw)
    got = _call(mail, "Email/get", ids=[created["id"]], properties=[
        "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt", "subject", "from", "to",
        "sentAt", "preview", "hasAttachment", "messageId"])["list"][0]
    assert got["keywords"] == {"$flagged": True}, "[mail-4.1.1-keywordSyntax] keywords come back lowercased"
    assert got["receivedAt"] == "2024-01-05T00:00:00Z"
    assert got["subject"] == "Lunch?" and got["from"] == [{"name": "Alice A.", "email": "alice@example.com"}]
    assert got["sentAt"] == "2024-01-04T00:00:00Z" or got["sentAt"].startswith("2024-01-04T00:00:00")
    assert got["preview"].startswith("Shall we?") and got["hasAttachment"] is False
    assert mail.core.download(mail.principal, mail.account_id, got["blobId"])[0] == raw
    inbox = mailboxes(mail)["inbox"]
    assert (inbox["totalEmails"], inbox["unreadEmails"], inbox["totalThreads"], inbox["unreadThreads"]) == (1, 1, 1, 1)
    _call(mail, "Email/set", update={created["id"]: {"keywords/$seen": True}})
    inbox = mailboxes(mail)["inbox"]
    assert (inbox["unreadEmails"], inbox["unreadThreads"]) == (0, 0)


def test_threading_reply_before_parent(mail):
    """[mail-3-algorithm] [mail-3-everyEmail] [mail-3-props] a reply that
    arrives first joins its parent's thread when the parent comes."""
    parent_id = "<parent@example.com>"
    reply = message("Re: Plans", "yes", message_id="<reply@example.com>", in_reply_to=parent_id, references=[parent_id], date=days(2))
    [first] = import_messages(mail, [reply], received=[days(2)])
    other = import_messages(mail, [message("Plans B", "unrelated", references=[parent_id])])[0]
    [parent] = import_messages(mail, [message("Plans", "the plan", message_id=parent_id, date=days(1))], received=[days(1)])
    assert parent["threadId"] == first["threadId"]
    assert other["threadId"] != first["threadId"], "same Message-ID but another subject: another thread"
    thread = _call(mail, "Thread/get", ids=[first["threadId"]])["list"][0]
    assert thread["emailIds"] == [parent["id"], first["id"]], "oldest first"
    assert mailboxes(mail)["inbox"]["totalThreads"] == 2


def test_email_set_create_from_structure_and_body_values(mail):
    """[mail-4.6-scope] [mail-4.6-createdResult] [mail-4.2-fetchValues] [mail-4.1.4-bodyPart]"""
    attachment = upload(mail, b"%PDF-1.4 fake")
    drafts = mailboxes(mail)["drafts"]["id"]
    result = _call(mail, "Email/set", create={"d": {
        "mailboxIds": {drafts: True},
        "keywords": {"$draft": True},
        "from": [{"name": "Mary", "email": "mary@example.com"}],
        "to": [{"name": None, "email": "bob@example.com"}],
        "subject": "Report ✓",
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "bodyValues": {"t": {"value": "Please find the report attached.\n"}},
        "attachments": [{"blobId": attachment, "type": "application/pdf", "name": "report.pdf"}],
    }})
    created = result["created"]["d"]
    assert set(created) >= {"id", "blobId", "threadId", "size"}
    got = _call(mail, "Email/get", ids=[created["id"]], fetchTextBodyValues=True)["list"][0]
    assert got["subject"] == "Report ✓" and got["hasAttachment"] is True
    text_part = got["textBody"][0]
    assert got["bodyValues"][text_part["partId"]]["value"] == "Please find the report attached.\n"
    [pdf] = got["attachments"]
    assert (pdf["name"], pdf["type"]) == ("report.pdf", "application/pdf")
    assert mail.core.download(mail.principal, mail.account_id, pdf["blobId"])[0] == b"%PDF-1.4 fake"
    assert mailboxes(mail)["drafts"]["unreadEmails"] == 0, "drafts are not unread"
    bad = _call(mail, "Email/set", create={"x": {"mailboxIds": {drafts: True}, "headers": []}, "y": {"mailboxIds": {}}})
    assert bad["notCreated"]["x"]["type"] == "invalidProperties"
    assert bad["notCreated"]["y"]["type"] == "invalidProperties"
    missing = _call(mail, "Email/set", create={"z": {"mailboxIds": {drafts: True}, "attachments": [{"blobId": "Bnothere", "type": "image/png"}]}})
    assert missing["notCreated"]["z"]["type"] == "blobNotFound" and missing["notCreated"]["z"]["notFound"] == ["Bnothere"]


def test_generated_message_id_uses_the_sender_domain(mail):
    """[mail-4.6-generatedHeaders] a generated Message-ID names the From
    address's domain, not this machine's host name."""
    drafts = mailboxes(mail)["drafts"]["id"]
    made = _call(mail, "Email/set", create={
        "a": {"mailboxIds": {drafts: True}, "from": [{"email": "mary@Example.COM"}], "subject": "x"},
        "b": {"mailboxIds": {drafts: True}, "subject": "no sender"},
    })["created"]
    got = _call(mail, "Email/get", ids=[made["a"]["id"], made["b"]["id"]], properties=["messageId"])["list"]
    ids = {e["id"]: e["messageId"][0] for e in got}
    assert ids[made["a"]["id"]].endswith("@example.com")
    assert "@" in ids[made["b"]["id"]]  # still generated without a sender


def test_email_set_update_rules(mail):
    """[mail-4.6-immutable] [mail-4.1.1-keywordSyntax] [mail-4.1.1-mailboxIds]"""
    [email] = import_messages(mail, [message()])
    boxes = mailboxes(mail)
    email_id = email["id"]
    ok = _call(mail, "Email/set", update={email_id: {
        "keywords/$seen": True, f"mailboxIds/{boxes['archive']['id']}": True, f"mailboxIds/{boxes['inbox']['id']}": None}})
    assert ok["updated"] == {email_id: None}
    got = _call(mail, "Email/get", ids=[email_id], properties=["keywords", "mailboxIds"])["list"][0]
    assert got["keywords"] == {"$seen": True} and got["mailboxIds"] == {boxes["archive"]["id"]: True}
    for patch in ({"subject": "x"}, {"keywords": {"bad word": True}}, {"keywords": {"$seen": False}},
                  {"mailboxIds": {}}, {"mailboxIds": {"Mnope": True}}, {f"mailboxIds/{boxes['archive']['id']}": None}):
        error = _call(mail, "Email/set", update={email_id: patch})["notUpdated"][email_id]
        assert error["type"] == "invalidProperties", patch
    assert stored_counts(mail) == recount(mail)
    gone = _call(mail, "Email/set", destroy=[email_id, "Enope"])
    assert gone["destroyed"] == [email_id] and gone["notDestroyed"]["Enope"]["type"] == "notFound"
    assert stored_counts(mail) == recount(mail)


def test_body_parts_headers_and_part_blobs(mail):
    """[mail-4.1.3-headerProp] [mail-4.1.3-echoCase] [mail-4.1.4-textBody] [mail-4.1.4-htmlBody]
    [mail-4.1.4-attachments] [mail-4.2-bodyProperties]"""
    raw = message("Pics", "see attached", html="<p>see <b>attached</b></p>", attachment=("cat.png", b"\x89PNG....", "image/png"))
    [email] = import_messages(mail, [raw])
    got = _call(mail, "Email/get", ids=[email["id"]], properties=[
        "header:Subject", "header:from:asAddresses", "header:X-Missing:all", "bodyStructure", "textBody", "htmlBody", "attachments"],
        bodyProperties=["partId", "blobId", "type", "name", "subParts"])["list"][0]
    assert got["header:Subject"] == " Pics"
    assert got["header:from:asAddresses"] == [{"name": "Alice", "email": "alice@example.com"}]
    assert got["header:X-Missing:all"] == []
    assert got["bodyStructure"]["type"] == "multipart/mixed" and got["bodyStructure"]["partId"] is None
    assert [p["type"] for p in got["textBody"]] == ["text/plain"]
    assert [p["type"] for p in got["htmlBody"]] == ["text/html"]
    [cat] = got["attachments"]
    assert cat["name"] == "cat.png"
    assert mail.core.download(mail.principal, mail.account_id, cat["blobId"])[0] == b"\x89PNG...."
    error = mail.error("Email/get", {"accountId": mail.account_id, "ids": [email["id"]], "properties": ["header:From:asDate"]}, using=USING)
    assert error["type"] == "invalidArguments"


def test_email_parse(mail):
    """[mail-4.9-args] [mail-4.9-nullMeta] [mail-4.9-response]"""
    blob = upload(mail, message("Parsed", "body text"))
    result = _call(mail, "Email/parse", blobIds=[blob, "Bmissing"], properties=["subject", "id", "mailboxIds", "size"])
    assert result["parsed"][blob] == {"subject": "Parsed", "id": None, "mailboxIds": None, "size": result["parsed"][blob]["size"]}
    assert result["notFound"] == ["Bmissing"]


def test_email_copy(mail):
    """[mail-4.7-copy]"""
    [email] = import_messages(mail, [message("copy me")])
    other = "xmary2"
    target = mailboxes(mail, other)["inbox"]["id"]
    response = mail.request([["Email/copy", {
        "fromAccountId": mail.account_id, "accountId": other,
        "create": {"c": {"id": email["id"], "mailboxIds": {target: True}, "keywords": {"$seen": True}}},
        "onSuccessDestroyOriginal": True}, "0"]], using=USING)["methodResponses"]
    assert [r[0] for r in response] == ["Email/copy", "Email/set"]
    copied = response[0][1]["created"]["c"]
    got = mail.call("Email/get", {"accountId": other, "ids": [copied["id"]], "properties": ["subject", "keywords"]}, using=USING)
    assert got["list"][0] == {"id": copied["id"], "subject": "copy me", "keywords": {"$seen": True}}
    assert response[1][1]["destroyed"] == [email["id"]]


def test_query_inbox_sort_collapse_and_search(mail):
    """[mail-4.4.1-filter] [mail-4.4.2-sort] [mail-4.4-collapseThreads] [mail-4.4.1-matching]"""
    root = "<root@example.com>"
    raws = [
        message("Trip", "pack the tent", message_id=root),
        message("Re: Trip", "and the stove", in_reply_to=root, references=[root]),
        message("Invoice", "amount due: 42 euros", sender="Billing <billing@shop.example>"),
        message("Photos", "from the trip", attachment=("a.jpg", b"jpg", "image/jpeg")),
    ]
    emails = import_messages(mail, raws, received=[days(1), days(2), days(3), days(4)])
    inbox = mailboxes(mail)["inbox"]["id"]
    newest_first = _call(mail, "Email/query", filter={"inMailbox": inbox}, sort=[{"property": "receivedAt", "isAscending": False}], limit=3, calculateTotal=True)
    assert newest_first["ids"] == [emails[3]["id"], emails[2]["id"], emails[1]["id"]] and newest_first["total"] == 4
    collapsed = _call(mail, "Email/query", filter={"inMailbox": inbox}, sort=[{"property": "receivedAt", "isAscending": False}], collapseThreads=True, calculateTotal=True)
    assert collapsed["ids"] == [emails[3]["id"], emails[2]["id"], emails[1]["id"]] and collapsed["total"] == 3
    assert _call(mail, "Email/query", filter={"text": "stove"})["ids"] == [emails[1]["id"]]
    assert set(_call(mail, "Email/query", filter={"body": "trip"})["ids"]) == {emails[3]["id"]}
    assert _call(mail, "Email/query", filter={"from": "billing@shop.example"})["ids"] == [emails[2]["id"]]
    assert _call(mail, "Email/query", filter={"subject": "invoice"})["ids"] == [emails[2]["id"]]
    assert _call(mail, "Email/query", filter={"hasAttachment": True})["ids"] == [emails[3]["id"]]
    assert _call(mail, "Email/query", filter={"header": ["Subject", "photo"]})["ids"] == [emails[3]["id"]]
    by_subject = _call(mail, "Email/query", sort=[{"property": "subject"}, {"property": "receivedAt"}])["ids"]
    assert by_subject == [emails[2]["id"], emails[3]["id"], emails[0]["id"], emails[1]["id"]]
    error = mail.error("Email/query", {"accountId": mail.account_id, "sort": [{"property": "hasKeyword"}]}, using=USING)
    assert error["type"] == "invalidArguments"
    snippets = _call(mail, "SearchSnippet/get", filter={"text": "stove"}, emailIds=[emails[1]["id"], "Enope"])
    assert snippets["list"][0]["preview"] is not None and "<mark>stove</mark>" in snippets["list"][0]["preview"]
    assert snippets["notFound"] == ["Enope"]


FILTERS = [
    None,
    {"inMailbox": "INBOX"},
    {"hasKeyword": "$flagged"},
    {"someInThreadHaveKeyword": "$seen"},
    {"operator": "AND", "conditions": [{"inMailbox": "INBOX"}, {"notKeyword": "$seen"}]},
]
SORTS = [
    [{"property": "receivedAt", "isAscending": False}],
    [{"property": "subject"}],
    [{"property": "allInThreadHaveKeyword", "keyword": "$seen"}, {"property": "receivedAt"}],
]


def _swap(node, inbox):
    return msgspec.json.decode(msgspec.json.encode(node).replace(b'"INBOX"', f'"{inbox}"'.encode()))




@pytest.mark.parametrize("seed", range(2))
def test_query_changes_against_brute_force(mail, seed):
    """[mail-4.5-queryChanges] [core-5.6-spliceModel] with collapseThreads and
    thread-keyword filters, after random imports, keyword and mailbox moves
    and destroys; counts stay exact throughout ([mail-2-counts])."""
    rng = random.Random(seed)
    boxes = mailboxes(mail)
    inbox = boxes["inbox"]["id"]
    roots = [f"<r{i}@example.com>" for i in range(4)]
    raws = [message(f"Topic {i % 4}" if i < 4 else f"Re: Topic {i % 4}", f"body {i}", message_id=f"<m{i}@example.com>" if i >= 4 else roots[i],
                    references=[roots[i % 4]] if i >= 4 else None) for i in range(12)]
    emails = import_messages(mail, raws, received=[days(rng.randrange(30)) for _ in raws])
    ids = [e["id"] for e in emails]
    queries = [(f, s, c) for f in FILTERS for s in SORTS for c in (False, True)]
    before = {}
    for f, s, c in queries:
        before[(str(f), str(s), c)] = _call(mail, "Email/query", filter=_swap(f, inbox), sort=s, collapseThreads=c)
    _call(mail, "Email/set", update={i: {"keywords/$seen": True} for i in rng.sample(ids, 4)}
          | {i: {"keywords/$flagged": True} for i in rng.sample(ids, 3)})
    moved = rng.sample(ids, 2)
    _call(mail, "Email/set", update={i: {"mailboxIds": {boxes["archive"]["id"]: True}} for i in moved})
    _call(mail, "Email/set", destroy=rng.sample([i for i in ids if i not in moved], 2))
    import_messages(mail, [message("Re: Topic 1", "late", references=[roots[1]])], received=[days(40)])
    assert stored_counts(mail) == recount(mail)
    for f, s, c in queries:
        old = before[(str(f), str(s), c)]
        new = _call(mail, "Email/query", filter=_swap(f, inbox), sort=s, collapseThreads=c, calculateTotal=True)
        changes = _call(mail, "Email/queryChanges", filter=_swap(f, inbox), sort=s, collapseThreads=c,
                        sinceQueryState=old["queryState"], calculateTotal=True)
        assert changes["total"] == new["total"] == len(new["ids"]), "kept counts agree with the results"
        assert splice(old["ids"], changes["removed"], changes["added"], new["total"]) == new["ids"], (f, s, c)


def test_email_delivery_state_changes_only_on_new_mail(mail):
    """[mail-1.5-push] EmailDelivery changes when mail arrives, not on flag changes."""
    def delivery():
        with mail.core.backend.snapshot(mail.account_id) as snap:
            return snap.type_modseq("EmailDelivery")

    start = delivery()
    [email] = import_messages(mail, [message()])
    after_import = delivery()
    assert after_import > start
    _call(mail, "Email/set", update={email["id"]: {"keywords/$seen": True}})
    assert delivery() == after_import


def test_search_index_rebuild(mail):
    """The full-text index can be rebuilt from the stored messages; old
    query states are then refused rather than trusted."""
    emails = import_messages(mail, [message("Kayak trip", "paddles and a tent"), message("Budget", "numbers")])
    state = _call(mail, "Email/query", filter={"text": "kayak"})["queryState"]
    mail.core.backend.rebuild_search(mail.account_id, "Email", [])
    assert _call(mail, "Email/query", filter={"text": "kayak"})["ids"] == [], "an emptied index finds nothing"
    rebuilt = mail.core.rebuild_search(mail.account_id)
    assert rebuilt["Email"] == 2
    assert all(count == 0 for name, count in rebuilt.items() if name != "Email")  # no cards or events here
    assert _call(mail, "Email/query", filter={"text": "paddles"})["ids"] == [emails[0]["id"]]
    error = mail.error("Email/queryChanges", {"accountId": mail.account_id, "filter": {"text": "kayak"}, "sinceQueryState": state}, using=USING)
    assert error["type"] == "cannotCalculateChanges"
