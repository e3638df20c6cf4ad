"""The transport-neutral push feed (jmapcore.push), on every backend: what a
StateChange says, positions a client resumes from, and the type filter."""

from __future__ import annotations

import threading

from jmapcore import Core
from jmapcore.push import PushFeed, decode_position, encode_position, push_types
from jmapcore.testing.client import Client
from tests.mailhelpers import USING, import_messages, mailboxes, message


def create_note(client: Client, title: str = "n") -> str:
    result = client.call("Note/set", {"accountId": client.account_id, "create": {"n": {"title": title}}})
    return result["created"]["n"]["id"]


def get_state(client: Client, type_name: str, account_id: str | None = None, using=None) -> str:
    arguments = {"accountId": account_id or client.account_id, "ids": []}
    return client.call(f"{type_name}/get", arguments, using=using)["state"]


def test_nothing_moved_means_no_state_change(core: Core, alice: Client) -> None:
    """[core-7.1-stateChange] a feed with nothing new has nothing to say."""
    feed = PushFeed(core, alice.principal)
    assert feed.poll() is None


def test_state_change_names_each_moved_type_with_its_get_state(core: Core, alice: Client) -> None:
    """[core-7.1-stateChange] the state is the one Foo/get now returns, and
    only types that moved since the last push appear."""
    feed = PushFeed(core, alice.principal)
    create_note(alice)
    change = feed.poll()
    assert change == {
        "@type": "StateChange",
        "changed": {alice.account_id: {"Note": get_state(alice, "Note")}},
    }
    assert feed.poll() is None  # already told
    create_note(alice, "again")
    assert feed.poll()["changed"][alice.account_id] == {"Note": get_state(alice, "Note")}


def test_every_account_of_the_principal_is_covered(core: Core, alice: Client) -> None:
    """[core-7.1-stateChange] ``changed`` is keyed by account id."""
    other = [a for a in alice.principal.account_ids if a != alice.account_id][0]
    feed = PushFeed(core, alice.principal)
    alice.call("Note/set", {"accountId": other, "create": {"n": {"title": "x"}}})
    change = feed.poll()
    assert list(change["changed"]) == [other]
    assert change["changed"][other] == {"Note": get_state(alice, "Note", other)}


def test_type_filter_leaves_other_types_out(core: Core, mail: Client) -> None:
    """[core-7.3-types] [core-7.2-typesFilter] only listed types are pushed,
    and a change to an unlisted type pushes nothing."""
    feed = PushFeed(core, mail.principal, types={"Mailbox"})
    import_messages(mail, [message()])  # Email, Thread, EmailDelivery and Mailbox counts move
    change = feed.poll()
    assert change["changed"][mail.account_id] == {
        "Mailbox": get_state(mail, "Mailbox", using=USING)
    }
    email_only = PushFeed(core, mail.principal, types={"Email"})
    inbox = mailboxes(mail)["inbox"]["id"]
    mail.call(
        "Mailbox/set",
        {"accountId": mail.account_id, "update": {inbox: {"sortOrder": 5}}},
        using=USING,
    )
    assert email_only.poll() is None


def test_new_mail_moves_email_delivery(core: Core, mail: Client) -> None:
    """[mail-1.5-push] new mail changes the EmailDelivery pseudo-type; a
    keyword change does not."""
    feed = PushFeed(core, mail.principal, types={"EmailDelivery", "Email"})
    (email,) = import_messages(mail, [message()])
    assert set(feed.poll()["changed"][mail.account_id]) == {"EmailDelivery", "Email"}
    mail.call(
        "Email/set",
        {"accountId": mail.account_id, "update": {email["id"]: {"keywords/$seen": True}}},
        using=USING,
    )
    assert set(feed.poll()["changed"][mail.account_id]) == {"Email"}


def test_resuming_from_a_position_sends_what_was_missed(core: Core, alice: Client) -> None:
    """[core-7.3-eventId] [ws-4.3.5.2-enable] a position names the state
    reached; a feed resumed from it reports the types that moved since."""
    first = PushFeed(core, alice.principal)
    seen = first.push_state()
    create_note(alice)
    resumed = PushFeed(core, alice.principal, since=seen)
    assert resumed.resumed
    assert resumed.poll()["changed"] == {alice.account_id: {"Note": get_state(alice, "Note")}}
    current = PushFeed(core, alice.principal, since=resumed.push_state())
    assert current.poll() is None


def test_a_position_we_did_not_issue_is_ignored(core: Core, alice: Client) -> None:
    """A forged or corrupt Last-Event-ID starts from now, never fails."""
    for text in ["", "garbage", "p!!!", "p" + "A" * 9000, encode_position({})[:-2] + "@@"]:
        feed = PushFeed(core, alice.principal, since=text)
        assert not feed.resumed
        assert feed.poll() is None
    assert decode_position(encode_position({"a": (1, 2)})) == {"a": (1, 2)}


def test_a_new_epoch_counts_every_type_as_moved(core: Core, alice: Client) -> None:
    """After an index rebuild (new epoch) old positions cannot be compared:
    every type is reported, so the client resyncs."""
    seen = PushFeed(core, alice.principal).push_state()
    core.backend.bump_epoch(alice.account_id)
    change = PushFeed(core, alice.principal, since=seen).poll()
    moved = change["changed"][alice.account_id]
    assert set(moved) == set(push_types(core, alice.account_id)) >= {"Note", "Mailbox", "Email"}
    assert moved["Note"] == get_state(alice, "Note")


def test_backend_waiter_wakes_on_another_threads_commit(core: Core, alice: Client) -> None:
    """The waiter push channels share: a commit wakes it (bounded wait)."""
    feed = PushFeed(core, alice.principal)
    since = feed.modseqs()
    woke: list[dict[str, int]] = []
    waiter = threading.Thread(target=lambda: woke.append(core.backend.wait_for_change(since, 10.0)))
    waiter.start()
    create_note(alice)
    waiter.join(timeout=15)
    assert woke and woke[0][alice.account_id] > since[alice.account_id]


