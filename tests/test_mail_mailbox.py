"""RFC 8621 §2: Mailbox."""

from __future__ import annotations

from tests.mailhelpers import USING, import_messages, mailboxes, message, recount, stored_counts


def _set(client, **arguments):
    return client.call("Mailbox/set", {"accountId": client.account_id, **arguments}, using=USING)


def test_default_mailboxes_and_capability(mail):
    """[mail-1.3.1-mailCap] [mail-2-props] [mail-2-rights] [mail-2-role]"""
    boxes = mailboxes(mail)
    assert set(boxes) == {"inbox", "drafts", "sent", "archive", "junk", "trash"}
    inbox = boxes["inbox"]
    assert inbox["name"] == "Inbox" and inbox["parentId"] is None and inbox["isSubscribed"] is True
    assert (inbox["totalEmails"], inbox["unreadEmails"], inbox["totalThreads"], inbox["unreadThreads"]) == (0, 0, 0, 0)
    assert all(inbox["myRights"].values()) and len(inbox["myRights"]) == 9
    session = mail.core.session(mail.principal, "http://x")
    capability = session["accounts"][mail.account_id]["accountCapabilities"]["urn:ietf:params:jmap:mail"]
    assert capability["maxSizeMailboxName"] >= 100 and "receivedAt" in capability["emailQuerySortOptions"]
    assert set(capability) == {"maxMailboxesPerEmail", "maxMailboxDepth", "maxSizeMailboxName",
                               "maxSizeAttachmentsPerEmail", "emailQuerySortOptions", "mayCreateTopLevelMailbox"}
    assert session["primaryAccounts"]["urn:ietf:params:jmap:mail"] == mail.account_id


def test_create_children_and_name_rules(mail):
    """[mail-2-name] [mail-2-noLoops] [mail-2-role] [core-5.3-finalValid]"""
    inbox = mailboxes(mail)["inbox"]["id"]
    result = _set(mail, create={
        "a": {"name": "Projects", "parentId": inbox},
        "b": {"name": "Projects", "parentId": inbox},
        "c": {"name": "Receipts", "parentId": "#a"},
        "empty": {"name": ""},
        "badRole": {"name": "X", "role": "Inbox"},
        "dupRole": {"name": "Y", "role": "inbox"},
        "control": {"name": "a\u0007b"},
    })
    assert set(result["created"]) == {"a", "c"}
    assert result["created"]["a"]["totalEmails"] == 0 and result["created"]["a"]["myRights"]["mayRename"]
    for key in ("b", "empty", "badRole", "dupRole", "control"):
        assert result["notCreated"][key]["type"] == "invalidProperties", key
    a, c = result["created"]["a"]["id"], result["created"]["c"]["id"]
    # Swapping two sibling names in one call is fine: checked on the final state.
    other = _set(mail, create={"d": {"name": "Other", "parentId": inbox}})["created"]["d"]["id"]
    swap = _set(mail, update={a: {"name": "Other"}, other: {"name": "Projects"}})
    assert set(swap["updated"]) == {a, other}
    loop = _set(mail, update={a: {"parentId": c}})
    assert loop["notUpdated"][a]["type"] == "invalidProperties"
    has_child = _set(mail, destroy=[a])
    assert has_child["notDestroyed"][a]["type"] == "mailboxHasChild"
    both = _set(mail, destroy=[a, c])
    assert sorted(both["destroyed"]) == sorted([a, c])


def test_destroy_non_empty_mailbox(mail):
    """[mail-2.5-onDestroyRemoveEmails] [mail-2-emailInMailbox]"""
    folder = _set(mail, create={"f": {"name": "Folder"}})["created"]["f"]["id"]
    boxes = mailboxes(mail)
    only_here, also_inbox = import_messages(mail, [message("one"), message("two")], mailbox="Folder")
    mail.call("Email/set", {"accountId": mail.account_id, "update": {also_inbox["id"]: {f"mailboxIds/{boxes['inbox']['id']}": True}}}, using=USING)
    refused = _set(mail, destroy=[folder])
    assert refused["notDestroyed"][folder]["type"] == "mailboxHasEmail"
    done = _set(mail, destroy=[folder], onDestroyRemoveEmails=True)
    assert done["destroyed"] == [folder]
    got = mail.call("Email/get", {"accountId": mail.account_id, "ids": [only_here["id"], also_inbox["id"]], "properties": ["mailboxIds"]}, using=USING)
    assert got["notFound"] == [only_here["id"]]
    assert got["list"][0]["mailboxIds"] == {boxes["inbox"]["id"]: True}
    assert stored_counts(mail) == recount(mail)


def test_changes_report_count_only_updates(mail):
    """[mail-2.2-changes] updatedProperties names the counts when only they changed."""
    state = mail.call("Mailbox/get", {"accountId": mail.account_id, "ids": []}, using=USING)["state"]
    import_messages(mail, [message("counted")])
    changes = mail.call("Mailbox/changes", {"accountId": mail.account_id, "sinceState": state}, using=USING)
    assert changes["updated"] == [mailboxes(mail)["inbox"]["id"]]
    assert sorted(changes["updatedProperties"]) == ["totalEmails", "totalThreads", "unreadEmails", "unreadThreads"]
    state = changes["newState"]
    inbox = mailboxes(mail)["inbox"]["id"]
    _set(mail, update={inbox: {"sortOrder": 9}})
    changes = mail.call("Mailbox/changes", {"accountId": mail.account_id, "sinceState": state}, using=USING)
    assert changes["updated"] == [inbox] and changes["updatedProperties"] is None


def test_query_filters_and_tree(mail):
    """[mail-2.3-filter] [mail-2.3-sort] [mail-2.3-queryArgs] [mail-2.4-queryChanges]"""
    inbox = mailboxes(mail)["inbox"]["id"]
    created = _set(mail, create={
        "z": {"name": "Zeta", "parentId": inbox, "sortOrder": 1},
        "a": {"name": "alpha", "parentId": inbox, "sortOrder": 2},
        "child": {"name": "Kid", "parentId": "#z", "isSubscribed": False},
    })["created"]
    z, a, kid = created["z"]["id"], created["a"]["id"], created["child"]["id"]
    query = lambda **kw: mail.call("Mailbox/query", {"accountId": mail.account_id, **kw}, using=USING)  # noqa: E731
    assert query(filter={"parentId": inbox}, sort=[{"property": "name"}])["ids"] == [a, z]
    assert query(filter={"parentId": inbox}, sort=[{"property": "sortOrder"}])["ids"] == [z, a]
    assert query(filter={"role": "inbox"})["ids"] == [inbox]
    assert len(query(filter={"hasAnyRole": True})["ids"]) == 6
    assert query(filter={"isSubscribed": False})["ids"] == [kid]
    assert query(filter={"name": "ETA"})["ids"] == [z]
    tree = query(sort=[{"property": "sortOrder"}, {"property": "name"}], sortAsTree=True)["ids"]
    assert tree.index(inbox) < tree.index(z) < tree.index(kid) < tree.index(a)
    only_subtree = query(filter={"operator": "NOT", "conditions": [{"role": "inbox"}]}, filterAsTree=True)["ids"]
    assert z not in only_subtree and kid not in only_subtree
