"""Quotas (RFC 9425): Quota/get, /changes, /query, /queryChanges, usage kept
incrementally with the Emails, and the hard limit enforced on Email/set,
Email/import and Email/copy, on every backend (the ``mail`` fixture)."""

from __future__ import annotations

import pytest
from jmap_quota.admin import set_quota
from jmap_quota.usage import total_size

from jmapcore.testing.client import Client
from tests.mailhelpers import USING, import_messages, mailboxes, message, upload
from tests.support import jmapcore

QUOTA = "urn:ietf:params:jmap:quota"
Q_USING = [*USING, QUOTA]


def quota_get(client: Client, account_id: str | None = None, using: list[str] = Q_USING) -> dict:
    return client.call("Quota/get", {"accountId": account_id or client.account_id, "ids": None}, using=using)


def used_in_store(client: Client) -> int:
    with client.core.backend.snapshot(client.account_id) as snap:
        return total_size(snap)


def test_capability_and_no_quota_by_default(mail: Client) -> None:
    """[quota-2-capability] {} in the session and the account; an account
    without a limit has no Quota."""
    session = mail.core.session(mail.principal, "http://localhost")
    assert session["capabilities"][QUOTA] == {}
    assert session["accounts"][mail.account_id]["accountCapabilities"][QUOTA] == {}
    assert quota_get(mail)["list"] == []


def test_quota_properties_and_incremental_usage(mail: Client) -> None:
    """[quota-4.1-props] [quota-3-enums] [quota-4-methods] used follows the
    Emails (import, destroy) in the same commit; /changes says only used
    changed; the type is pushed ([quota-6-push])."""
    import_messages(mail, [message("before the quota", body="a" * 1000)])
    set_quota(mail.core, mail.account_id, 100_000)
    (quota,) = quota_get(mail)["list"]
    assert quota == {
        "id": quota["id"], "resourceType": "octets", "used": used_in_store(mail), "hardLimit": 100_000,
        "warnLimit": None, "softLimit": None, "scope": "account", "name": "Mail storage",
        "types": ["Email"], "description": quota["description"],
    }
    assert quota["used"] > 1000
    state = quota_get(mail)["state"]
    [email] = import_messages(mail, [message("second", body="b" * 500)])
    got = quota_get(mail)
    assert got["list"][0]["used"] == used_in_store(mail) == quota["used"] + email["size"]
    changes = mail.call("Quota/changes", {"accountId": mail.account_id, "sinceState": state}, using=Q_USING)
    assert changes["updated"] == [quota["id"]] and changes["created"] == changes["destroyed"] == []
    assert changes["updatedProperties"] == ["used"]
    mail.call("Email/set", {"accountId": mail.account_id, "destroy": [email["id"]]}, using=USING)
    assert quota_get(mail)["list"][0]["used"] == quota["used"] == used_in_store(mail)
    assert "Quota" in mail.core.registry.push_types()


def test_types_filtered_by_using(mail: Client) -> None:
    """[quota-4.1-typesFiltered] without the mail capability in `using`, the
    storage quota (types: Email) is not returned."""
    set_quota(mail.core, mail.account_id, 10_000)
    assert len(quota_get(mail)["list"]) == 1
    assert quota_get(mail, using=["urn:ietf:params:jmap:core", QUOTA])["list"] == []


def test_over_quota_on_import_create_and_copy(mail: Client) -> None:
    """[mail-4.8-errors] overQuota from Email/import, Email/set create and
    Email/copy; what fits is still created, in the same call."""
    [first] = import_messages(mail, [message("fits", body="c" * 200)])
    set_quota(mail.core, mail.account_id, used_in_store(mail) + 1500)
    inbox = mailboxes(mail)["inbox"]["id"]
    big, small = upload(mail, message("big", body="d" * 3000)), upload(mail, message("small", body="e" * 100))
    result = mail.call("Email/import", {"accountId": mail.account_id, "emails": {
        "big": {"blobId": big, "mailboxIds": {inbox: True}},
        "small": {"blobId": small, "mailboxIds": {inbox: True}},
    }}, using=USING)
    assert result["notCreated"]["big"]["type"] == "overQuota"
    assert "small" in result["created"]
    created = mail.call("Email/set", {"accountId": mail.account_id, "create": {
        "d": {"mailboxIds": {inbox: True}, "subject": "draft", "textBody": [{"partId": "1", "type": "text/plain"}],
              "bodyValues": {"1": {"value": "f" * 3000}}},
    }}, using=USING)
    assert created["notCreated"]["d"]["type"] == "overQuota"
    assert "permanent" not in created["notCreated"]["d"]  # internal, never on the wire
    # Copy into a full account: the other account gets a limit of 0.
    other = "xmary2"
    set_quota(mail.core, other, 0)
    copied = mail.call("Email/copy", {"fromAccountId": mail.account_id, "accountId": other, "create": {
        "c": {"id": first["id"], "mailboxIds": {mailboxes(mail, other)["inbox"]["id"]: True}}}}, using=USING)
    assert copied["notCreated"]["c"]["type"] == "overQuota"
    (quota,) = quota_get(mail)["list"]
    assert quota["used"] == used_in_store(mail) <= quota["hardLimit"]


def test_query_and_query_changes(mail: Client) -> None:
    """[quota-4-methods] filters name/scope/resourceType/type; sorts name and used."""
    set_quota(mail.core, mail.account_id, 50_000)
    quota_id = quota_get(mail)["list"][0]["id"]

    def query(filter_: dict) -> list[str]:
        return mail.call("Quota/query", {"accountId": mail.account_id, "filter": filter_,
                                         "sort": [{"property": "used"}, {"property": "name"}]}, using=Q_USING)["ids"]

    assert query({"name": "storage"}) == [quota_id]
    assert query({"scope": "account", "resourceType": "octets", "type": "Email"}) == [quota_id]
    assert query({"scope": "domain"}) == query({"resourceType": "count"}) == query({"type": "Mailbox"}) == []
    state = mail.call("Quota/query", {"accountId": mail.account_id}, using=Q_USING)["queryState"]
    import_messages(mail, [message("moves used")])
    changes = mail.call("Quota/queryChanges", {"accountId": mail.account_id, "sinceQueryState": state},
                        using=Q_USING)
    assert changes["removed"] == [] or changes["removed"] == [quota_id]


def test_removing_the_limit_and_usage_after_it(mail: Client) -> None:
    """--none removes the Quota; usage is still kept, so a later limit
    starts from the right figure."""
    set_quota(mail.core, mail.account_id, 50_000)
    set_quota(mail.core, mail.account_id, None)
    assert quota_get(mail)["list"] == []
    import_messages(mail, [message("while unlimited", body="g" * 700)])
    set_quota(mail.core, mail.account_id, 50_000)
    assert quota_get(mail)["list"][0]["used"] == used_in_store(mail)


@pytest.mark.server
def test_cli_account_quota(tmp_path) -> None:
    data = str(tmp_path / "data")
    assert jmapcore("account", "add", "dora", "--password", "pw", "--data", data).returncode == 0
    shown = jmapcore("account", "quota", "dora", "--data", data)
    assert shown.returncode == 0 and shown.stdout.strip() == "used 0 octets, limit none"
    shown = jmapcore("account", "quota", "dora", "--octets", "1000000", "--data", data)
    assert shown.stdout.strip() == "used 0 octets, limit 1000000 octets"
    shown = jmapcore("account", "quota", "dora", "--none", "--data", data)
    assert shown.stdout.strip() == "used 0 octets, limit none"
    wrong = jmapcore("account", "quota", "nobody", "--octets", "5", "--data", data)
    assert wrong.returncode == 1 and "no account named" in wrong.stderr


def test_maildir_external_deliveries_are_counted(mail: Client) -> None:
    """Messages another program drops into a Maildir count towards used
    (never refused: they are already there), and removing the file frees it."""
    backend = mail.core.backend
    if not hasattr(backend, "tree"):
        pytest.skip("Maildir only")
    set_quota(mail.core, mail.account_id, 1000)
    root = backend.tree(mail.account_id).root
    raw = message("dropped", body="h" * 3000)
    (root / "tmp" / "1700000000.M1P1.x").write_bytes(raw)
    (root / "tmp" / "1700000000.M1P1.x").rename(root / "new" / "1700000000.M1P1.x")
    backend.sync(mail.account_id)
    (quota,) = quota_get(mail)["list"]
    assert quota["used"] == used_in_store(mail) >= len(raw) > quota["hardLimit"]
    (root / "new" / "1700000000.M1P1.x").unlink()
    backend.sync(mail.account_id)
    assert quota_get(mail)["list"][0]["used"] == used_in_store(mail) == 0
