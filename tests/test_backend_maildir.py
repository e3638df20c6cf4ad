"""The Maildir backend: the shared conformance suite, plus the files it
writes through (one file per mailbox, hard links, flags in the info suffix,
dovecot-keywords, folders following Mailbox/set)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jmapcore import Core
from jmapcore.accounts import add_account, principal_for
from jmapcore.registry import Registry
from jmapcore.storage import AccountInfo, Put, StateConflict, WriteBatch
from jmapcore.testing.backend_conformance import *  # noqa: F403
from jmapcore.testing.client import Client, JmapError
from tests.mailhelpers import USING, import_messages, mailboxes, message, upload

jmap_maildir = pytest.importorskip("jmap_maildir")
MaildirBackend = jmap_maildir.MaildirBackend


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[MaildirBackend]:
    instance = jmap_maildir.open_backend(tmp_path / "data")
    yield instance
    instance.close()


def _root(mail: Client) -> Path:
    return mail.core.backend.tree(mail.account_id).root  # type: ignore[attr-defined]


def _files(folder: Path) -> list[Path]:
    return sorted((folder / "cur").iterdir()) + sorted((folder / "new").iterdir())


def _info(path: Path) -> str:
    return path.name.split(":2,", 1)[1]


def _email_set(mail: Client, **arguments: Any) -> dict[str, Any]:
    return mail.call("Email/set", {"accountId": mail.account_id, **arguments}, using=USING)


def _mailbox_set(mail: Client, **arguments: Any) -> dict[str, Any]:
    return mail.call("Mailbox/set", {"accountId": mail.account_id, **arguments}, using=USING)


def test_open_backend_options(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        jmap_maildir.open_backend(tmp_path / "d", nonsense=1)
    instance = jmap_maildir.open_backend(tmp_path / "d", maildir_root=str(tmp_path / "mail" / "%u"), sync=False)
    try:
        instance.directory.create_account(AccountInfo("A1", "joe", ("joe",)))
        assert instance.tree("A1").root == (tmp_path / "mail" / "joe").resolve()
        assert (tmp_path / "mail" / "joe" / "cur").is_dir()
    finally:
        instance.close()


def test_default_mailboxes_are_folders(mail: Client) -> None:
    root = _root(mail)
    for name in ("Drafts", "Sent", "Archive", "Junk", "Trash"):
        assert (root / f".{name}" / "cur").is_dir(), name
    assert (root / "cur").is_dir()  # Inbox is the root folder


def test_import_link_flags_and_destroy(mail: Client) -> None:
    root = _root(mail)
    boxes = mailboxes(mail)
    raw = message("files")
    (email,) = import_messages(mail, [raw], keywords={"$seen": True})
    (inbox_file,) = _files(root)
    assert inbox_file.read_bytes() == raw and _info(inbox_file) == "S"

    archive = boxes["archive"]["id"]
    _email_set(mail, update={email["id"]: {f"mailboxIds/{archive}": True, "keywords/$flagged": True}})
    (inbox_file,) = _files(root)
    (archive_file,) = _files(root / ".Archive")
    assert os.stat(inbox_file).st_ino == os.stat(archive_file).st_ino
    assert _info(inbox_file) == _info(archive_file) == "FS"

    _email_set(mail, update={email["id"]: {"keywords/work": True, "keywords/$seen": None}})
    (inbox_file,) = _files(root)
    (archive_file,) = _files(root / ".Archive")
    assert _info(inbox_file) == _info(archive_file) == "Fa"
    assert (root / "dovecot-keywords").read_text() == "0 work\n"
    assert (root / ".Archive" / "dovecot-keywords").read_text() == "0 work\n"

    _email_set(mail, update={email["id"]: {"mailboxIds": {archive: True}}})
    assert _files(root) == []
    (archive_file,) = _files(root / ".Archive")
    assert archive_file.read_bytes() == raw

    destroyed = _email_set(mail, destroy=[email["id"]])
    assert destroyed["destroyed"] == [email["id"]]
    assert _files(root / ".Archive") == []


def test_keyword_without_letter_stays_in_index(mail: Client) -> None:
    """A folder has 26 keyword letters: the 27th keyword is only in the index."""
    root = _root(mail)
    (email,) = import_messages(mail, [message("many")])
    keywords = {f"k{n:02d}": True for n in range(27)}
    result = _email_set(mail, update={email["id"]: {"keywords": keywords}})
    assert email["id"] in result["updated"]
    (inbox_file,) = _files(root)
    assert _info(inbox_file) == "abcdefghijklmnopqrstuvwxyz"
    assert len((root / "dovecot-keywords").read_text().splitlines()) == 26
    got = mail.call("Email/get", {"accountId": mail.account_id, "ids": [email["id"]], "properties": ["keywords"]}, using=USING)
    assert got["list"][0]["keywords"] == keywords


def test_mailbox_rename_moves_folder_and_children(mail: Client) -> None:
    root = _root(mail)
    created = _mailbox_set(mail, create={"p": {"name": "Projects"}, "c": {"name": "Old", "parentId": "#p"}})["created"]
    parent, child = created["p"]["id"], created["c"]["id"]
    assert (root / ".Projects.Old" / "cur").is_dir()
    (email,) = import_messages(mail, [message("moved")], mailbox="archive")
    _email_set(mail, update={email["id"]: {"mailboxIds": {child: True}}})
    assert len(_files(root / ".Projects.Old")) == 1

    _mailbox_set(mail, update={parent: {"name": "Work"}})
    assert not (root / ".Projects").exists() and not (root / ".Projects.Old").exists()
    assert len(_files(root / ".Work.Old")) == 1
    _mailbox_set(mail, update={child: {"name": "New"}})
    assert len(_files(root / ".Work.New")) == 1

    done = _mailbox_set(mail, destroy=[child], onDestroyRemoveEmails=True)
    assert done["destroyed"] == [child]
    assert not (root / ".Work.New").exists()


def test_swapping_names_and_inbox_children(mail: Client) -> None:
    root = _root(mail)
    inbox = mailboxes(mail)["inbox"]["id"]
    created = _mailbox_set(mail, create={"a": {"name": "A", "parentId": inbox}, "b": {"name": "B", "parentId": inbox}})
    a, b = created["created"]["a"]["id"], created["created"]["b"]["id"]
    assert (root / ".INBOX.A").is_dir() and (root / ".INBOX.B").is_dir()
    (email,) = import_messages(mail, [message("in a")], mailbox="inbox")
    _email_set(mail, update={email["id"]: {"mailboxIds": {a: True}}})
    swap = _mailbox_set(mail, update={a: {"name": "B"}, b: {"name": "A"}})
    assert set(swap["updated"]) == {a, b}
    assert len(_files(root / ".INBOX.B")) == 1 and _files(root / ".INBOX.A") == []


def test_state_conflict_touches_no_file(mail: Client) -> None:
    backend = mail.core.backend
    with backend.snapshot(mail.account_id) as snap:
        modseq = snap.type_modseq("Mailbox")
    batch = WriteBatch(
        mail.account_id,
        expect={"Mailbox": modseq + 1},
        puts=[Put("Mailbox", {"id": "Mlost", "name": "Lost"}, created=True)],
    )
    with pytest.raises(StateConflict):
        backend.commit(batch)
    assert not (_root(mail) / ".Lost").exists()


def _drop(folder: Path, name: str, raw: bytes, subdir: str = "new") -> Path:
    """Deliver as another program would: write in tmp/, rename into place."""
    tmp = folder / "tmp" / name.split(":")[0]
    tmp.write_bytes(raw)
    target = folder / subdir / name
    tmp.rename(target)
    return target


def test_external_delivery_becomes_an_email(mail: Client) -> None:
    root = _root(mail)
    boxes = mailboxes(mail)
    before = mail.call("Email/get", {"accountId": mail.account_id, "ids": []}, using=USING)["state"]
    raw = message("from outside")
    _drop(root, "1700000000.M1P1.elsewhere", raw)
    _drop(root / ".Archive", "1700000001.M2P1.elsewhere:2,S", message("seen outside"), subdir="cur")
    mail.core.backend.sync(mail.account_id)  # type: ignore[attr-defined]

    changes = mail.call("Email/changes", {"accountId": mail.account_id, "sinceState": before}, using=USING)
    assert len(changes["created"]) == 2
    got = mail.call(
        "Email/get",
        {"accountId": mail.account_id, "ids": changes["created"], "properties": ["subject", "mailboxIds", "keywords"]},
        using=USING,
    )["list"]
    by_subject = {e["subject"]: e for e in got}
    assert by_subject["from outside"]["mailboxIds"] == {boxes["inbox"]["id"]: True}
    assert by_subject["from outside"]["keywords"] == {}
    assert by_subject["seen outside"]["mailboxIds"] == {boxes["archive"]["id"]: True}
    assert by_subject["seen outside"]["keywords"] == {"$seen": True}
    counts = mailboxes(mail)
    assert (counts["inbox"]["totalEmails"], counts["inbox"]["unreadEmails"]) == (1, 1)
    assert (counts["archive"]["totalEmails"], counts["archive"]["unreadEmails"]) == (1, 0)

    # Adopted once only, and our own writes then move the adopted file.
    mail.core.backend.sync(mail.account_id)  # type: ignore[attr-defined]
    email_id = by_subject["from outside"]["id"]
    _email_set(mail, update={email_id: {"keywords/$seen": True}})
    (inbox_file,) = _files(root)
    assert inbox_file.parent.name == "cur" and _info(inbox_file) == "S"
    assert inbox_file.read_bytes() == raw
    mail.core.backend.sync(mail.account_id)  # type: ignore[attr-defined]
    total = mail.call("Email/query", {"accountId": mail.account_id}, using=USING)["ids"]
    assert len(total) == 2


def test_own_writes_are_not_adopted(mail: Client) -> None:
    import_messages(mail, [message("one"), message("two")])
    for _ in range(2):
        mail.core.backend.sync(mail.account_id)  # type: ignore[attr-defined]
    assert len(mail.call("Email/query", {"accountId": mail.account_id}, using=USING)["ids"]) == 2


def test_sync_skipped_while_another_process_syncs(mail: Client) -> None:
    import fcntl

    backend = mail.core.backend
    _drop(_root(mail), "1700000002.M3P1.elsewhere", message("later"))
    fd = os.open(backend.sync_lock_path(mail.account_id), os.O_RDWR | os.O_CREAT)  # type: ignore[attr-defined]
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        backend.sync(mail.account_id)  # type: ignore[attr-defined]
        assert mail.call("Email/query", {"accountId": mail.account_id}, using=USING)["ids"] == []
    finally:
        os.close(fd)
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    assert len(mail.call("Email/query", {"accountId": mail.account_id}, using=USING)["ids"]) == 1


def _only(folder: Path) -> Path:
    (found,) = _files(folder)
    return found


def test_external_flag_changes_and_removals(mail: Client) -> None:
    root = _root(mail)
    boxes = mailboxes(mail)
    archive = boxes["archive"]["id"]
    (email,) = import_messages(mail, [message("watched")])
    _email_set(mail, update={email["id"]: {f"mailboxIds/{archive}": True, "keywords/work": True, "keywords/$seen": True}})
    for _ in range(2):  # our own writes are not changes
        mail.core.backend.sync(mail.account_id)  # type: ignore[attr-defined]

    def keywords() -> dict[str, bool]:
        got = mail.call("Email/get", {"accountId": mail.account_id, "ids": [email["id"]], "properties": ["keywords", "mailboxIds"]}, using=USING)
        return got["list"][0]

    assert keywords()["keywords"] == {"work": True, "$seen": True}
    inbox_file = _only(root)
    inbox_file.rename(inbox_file.with_name(inbox_file.name.split(":2,")[0] + ":2,FS"))  # F added, "work" dropped
    mail.core.backend.sync(mail.account_id)  # type: ignore[attr-defined]
    assert keywords()["keywords"] == {"$flagged": True, "$seen": True}

    archive_file = _only(root / ".Archive")
    archive_file.unlink()
    mail.core.backend.sync(mail.account_id)  # type: ignore[attr-defined]
    assert keywords()["mailboxIds"] == {boxes["inbox"]["id"]: True}
    assert mailboxes(mail)["archive"]["totalEmails"] == 0

    inbox_file = _only(root)
    inbox_file.rename(inbox_file.with_name(inbox_file.name.split(":2,")[0] + ":2,FST"))  # IMAP \\Deleted
    mail.core.backend.sync(mail.account_id)  # type: ignore[attr-defined]
    got = mail.call("Email/get", {"accountId": mail.account_id, "ids": [email["id"]]}, using=USING)
    assert got["notFound"] == [email["id"]]
    assert _only(root).exists()  # hidden, not deleted: the other program expunges
    assert mailboxes(mail)["inbox"]["totalEmails"] == 0


def test_file_written_before_a_failed_commit_is_adopted(mail: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Design, section 2: a crash between the file write and the LMDB commit
    leaves a file with no Email; the next sync adopts it, so nothing is lost."""
    from jmap_lmdb import write

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("crash before commit")

    monkeypatch.setattr(write._Writer, "finish", fail)
    boxes = mailboxes(mail)
    raw = message("survivor")
    blob = upload(mail, raw)
    emails = {"m": {"blobId": blob, "mailboxIds": {boxes["inbox"]["id"]: True}}}
    with pytest.raises(JmapError, match="serverFail"):
        mail.call("Email/import", {"accountId": mail.account_id, "emails": emails}, using=USING)
    monkeypatch.undo()
    assert len(_files(_root(mail))) == 1
    # The upload's bytes left the store in the aborted transaction only.
    assert _stored_bytes(mail.core.backend, blob) == raw
    mail.core.backend.sync(mail.account_id)  # type: ignore[attr-defined]
    found = mail.call("Email/query", {"accountId": mail.account_id, "filter": {"subject": "survivor"}}, using=USING)
    assert len(found["ids"]) == 1
    # Adopted: the file now serves the bytes; the store has no copy.
    got = mail.call("Email/get", {"accountId": mail.account_id, "ids": found["ids"], "properties": ["blobId"]}, using=USING)
    assert got["list"][0]["blobId"] == blob and _stored_bytes(mail.core.backend, blob) is None
    assert _download(mail, blob) == raw


def test_fs_layout(tmp_path: Path) -> None:
    instance = jmap_maildir.open_backend(tmp_path / "data", layout="fs")
    try:
        core = Core(instance, Registry.from_entry_points([]))
        add_account(core, "fiona", "pw")
        client = Client(core, principal_for(core, "fiona"), using=USING)
        root = instance.tree(client.account_id).root
        created = _mailbox_set(client, create={"p": {"name": "Lists"}, "c": {"name": "python.org", "parentId": "#p"}})
        assert (root / "Lists" / "python.org" / "cur").is_dir()
        _mailbox_set(client, update={created["created"]["p"]["id"]: {"name": "Groups"}})
        assert (root / "Groups" / "python.org" / "cur").is_dir() and not (root / "Lists").exists()
    finally:
        instance.close()


def test_failing_sync_backs_off_and_retries(mail: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    sync = mail.core.backend._sync  # type: ignore[attr-defined]
    calls: list[int] = []
    real = sync.callback

    def broken(changes: Any) -> None:
        calls.append(len(changes.delivered))
        raise RuntimeError("plugin failed")

    monkeypatch.setattr(sync, "callback", broken)
    _drop(_root(mail), "1700000003.M4P1.elsewhere", message("retried"))
    with pytest.raises(RuntimeError):
        sync.maybe_sync(mail.account_id, force=True)
    assert mail.call("Email/query", {"accountId": mail.account_id}, using=USING)["ids"] == []  # logged, not raised
    assert calls == [1]  # backing off: the query did not try again
    monkeypatch.setattr(sync, "callback", real)
    sync.maybe_sync(mail.account_id, force=True)
    assert len(mail.call("Email/query", {"accountId": mail.account_id}, using=USING)["ids"]) == 1


def test_external_hard_links_and_moves_keep_one_email(mail: Client) -> None:
    """Dovecot copies with hard links and moves with link + unlink: the
    inode ties the files to one Email (design, section 6)."""
    root = _root(mail)
    boxes = mailboxes(mail)
    backend = mail.core.backend

    # A new message delivered into two folders as links of one file.
    first = _drop(root, "1700000004.M5P1.elsewhere:2,S", message("linked"), subdir="cur")
    os.link(first, root / ".Archive" / "cur" / "1700000004.M6P1.elsewhere:2,S")
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    (email_id,) = mail.call("Email/query", {"accountId": mail.account_id}, using=USING)["ids"]

    def mailbox_ids() -> set[str]:
        got = mail.call("Email/get", {"accountId": mail.account_id, "ids": [email_id], "properties": ["mailboxIds"]}, using=USING)
        return set(got["list"][0]["mailboxIds"])

    assert mailbox_ids() == {boxes["inbox"]["id"], boxes["archive"]["id"]}

    # Another program moves the Archive copy to Trash (link, then unlink).
    archived = _only(root / ".Archive")
    os.link(archived, root / ".Trash" / "cur" / "1700000004.M7P1.elsewhere:2,S")
    archived.unlink()
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    assert mail.call("Email/query", {"accountId": mail.account_id}, using=USING)["ids"] == [email_id]
    assert mailbox_ids() == {boxes["inbox"]["id"], boxes["trash"]["id"]}

    # Our own writes then find the adopted files.
    _email_set(mail, update={email_id: {"keywords/$flagged": True}})
    assert _info(_only(root)) == _info(_only(root / ".Trash")) == "FS"
    _email_set(mail, destroy=[email_id])
    assert _files(root) == [] and _files(root / ".Trash") == []


def test_move_keeps_the_inode_and_a_lost_file_leaves_the_mailbox(mail: Client) -> None:
    root = _root(mail)
    boxes = mailboxes(mail)
    raw = message("mover")
    (email,) = import_messages(mail, [raw])
    inode = os.stat(_only(root)).st_ino
    _email_set(mail, update={email["id"]: {"mailboxIds": {boxes["archive"]["id"]: True}, "keywords/$seen": True}})
    assert _files(root) == []
    moved = _only(root / ".Archive")
    assert os.stat(moved).st_ino == inode and _info(moved) == "S"

    # Lost behind our back, before any sync noticed: the file held the
    # only copy of the bytes (design, section 3), so no update brings it
    # back; the next sync takes the Email out of the mailbox, and its blob
    # is gone (404, no error).
    moved.unlink()
    backend = mail.core.backend
    backend._sync._checked[mail.account_id] = float("inf")  # type: ignore[attr-defined]
    _email_set(mail, update={email["id"]: {"keywords/$flagged": True}})
    assert _files(root / ".Archive") == []
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    assert mail.call("Email/query", {"accountId": mail.account_id}, using=USING)["ids"] == []
    assert mail.core.download(mail.principal, mail.account_id, email["blobId"]) is None


def test_external_folders_become_mailboxes(mail: Client) -> None:
    root = _root(mail)
    backend = mail.core.backend
    tree = backend.tree(mail.account_id)  # type: ignore[attr-defined]
    tree.create_folder(("Lists",))
    tree.create_folder(("Lists", "python"))
    tree.create_folder(("INBOX", "Receipts"))
    _drop(root / ".Lists.python", "1700000005.M8P1.elsewhere", message("on the list"))
    backend.sync(mail.account_id)  # type: ignore[attr-defined]

    boxes = {b["name"]: b for b in mail.call("Mailbox/get", {"accountId": mail.account_id}, using=USING)["list"]}
    assert boxes["python"]["parentId"] == boxes["Lists"]["id"]
    assert boxes["Receipts"]["parentId"] == boxes["Inbox"]["id"]
    assert boxes["python"]["totalEmails"] == 1

    tree.rename_folder(("Lists",), ("Groups",))
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    after = {b["id"]: b for b in mail.call("Mailbox/get", {"accountId": mail.account_id}, using=USING)["list"]}
    assert after[boxes["Lists"]["id"]]["name"] == "Groups"
    assert after[boxes["python"]["id"]]["parentId"] == boxes["Lists"]["id"]
    # Our own writes find the renamed folder.
    (email_id,) = mail.call("Email/query", {"accountId": mail.account_id, "filter": {"inMailbox": boxes["python"]["id"]}}, using=USING)["ids"]
    _email_set(mail, update={email_id: {"keywords/$seen": True}})
    assert _info(_only(root / ".Groups.python")) == "S"

    for message_file in _files(root / ".Groups.python"):
        message_file.unlink()
    tree.delete_folder(("Groups", "python"))
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    gone = mail.call("Mailbox/get", {"accountId": mail.account_id, "ids": [boxes["python"]["id"]]}, using=USING)
    assert gone["notFound"] == [boxes["python"]["id"]]
    assert mail.call("Email/get", {"accountId": mail.account_id, "ids": [email_id]}, using=USING)["notFound"] == [email_id]


def _import_until_killed(path: Path, ready: Any) -> None:
    """Child process: import and re-flag messages as fast as it can."""
    instance = jmap_maildir.open_backend(path)
    core = Core(instance, Registry.from_entry_points([]))
    client = Client(core, principal_for(core, "kim"), using=USING)
    inbox = mailboxes(client)["inbox"]["id"]
    for n in range(100_000):
        blob = upload(client, message(f"kill {n}"))
        created = client.call("Email/import", {"accountId": client.account_id, "emails": {"m": {"blobId": blob, "mailboxIds": {inbox: True}}}}, using=USING)["created"]["m"]
        client.call("Email/set", {"accountId": client.account_id, "update": {created["id"]: {"keywords/$seen": True}}}, using=USING)
        if n == 5:
            ready.set()


def test_sigkill_during_writes_loses_nothing(tmp_path: Path) -> None:
    """Design, section 2: after a SIGKILL mid-write and a sync, every Email
    has its file and every file is an Email."""
    import multiprocessing
    import signal
    import time

    from tests.mailhelpers import recount, stored_counts

    path = tmp_path / "data"
    instance = jmap_maildir.open_backend(path)
    add_account(Core(instance, Registry.from_entry_points([])), "kim", "pw")
    instance.close()
    fork = multiprocessing.get_context("fork")
    ready = fork.Event()
    child = fork.Process(target=_import_until_killed, args=(path, ready))
    child.start()
    assert ready.wait(30)
    time.sleep(0.3)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()

    instance = jmap_maildir.open_backend(path)
    try:
        core = Core(instance, Registry.from_entry_points([]))
        client = Client(core, principal_for(core, "kim"), using=USING)
        instance.sync(client.account_id)
        tree = instance.tree(client.account_id)
        ids = client.call("Email/query", {"accountId": client.account_id}, using=USING)["ids"]
        files = instance.read_internal(client.account_id, lambda r: {f["id"]: f["files"] for f in r.all("MaildirFile")})
        assert set(files) == set(ids)
        inbox = mailboxes(client)["inbox"]["id"]
        for email_id, found in files.items():
            assert tree.locate((), jmap_maildir.split_name(found[inbox])[0]) is not None, email_id
        assert len(_files(tree.root)) == len(ids) > 5
        assert stored_counts(client) == recount(client)
    finally:
        instance.close()


def test_account_adopts_an_existing_tree(tmp_path: Path) -> None:
    """Design, section 1: an account over an existing Maildir++ tree."""
    mail_root = tmp_path / "mail"
    existing = jmap_maildir.MaildirTree(mail_root / "lea")
    existing.create_folder(("Sent",))
    existing.create_folder(("Projects",))
    existing.deliver((), message("old inbox mail"), keywords=["$seen"])
    existing.deliver(("Sent",), message("sent long ago"))
    existing.deliver(("Projects",), message("plans"), keywords=["$flagged", "todo"])

    instance = jmap_maildir.open_backend(tmp_path / "data", maildir_root=str(mail_root / "%u"))
    try:
        core = Core(instance, Registry.from_entry_points([]))
        add_account(core, "lea", "pw")
        client = Client(core, principal_for(core, "lea"), using=USING)
        instance.sync(client.account_id)
        boxes = {b["name"]: b for b in client.call("Mailbox/get", {"accountId": client.account_id}, using=USING)["list"]}
        assert {"Inbox", "Sent", "Projects", "Drafts"} <= set(boxes)
        assert boxes["Sent"]["role"] == "sent"
        assert (boxes["Inbox"]["totalEmails"], boxes["Inbox"]["unreadEmails"]) == (1, 0)
        assert boxes["Sent"]["totalEmails"] == boxes["Projects"]["totalEmails"] == 1
        (plans,) = client.call("Email/query", {"accountId": client.account_id, "filter": {"inMailbox": boxes["Projects"]["id"]}}, using=USING)["ids"]
        got = client.call("Email/get", {"accountId": client.account_id, "ids": [plans], "properties": ["keywords"]}, using=USING)
        assert got["list"][0]["keywords"] == {"$flagged": True, "todo": True}
        instance.sync(client.account_id)
        assert len(client.call("Email/query", {"accountId": client.account_id}, using=USING)["ids"]) == 3
    finally:
        instance.close()


def test_subscriptions_follow_mailboxes(mail: Client) -> None:
    tree = mail.core.backend.tree(mail.account_id)  # type: ignore[attr-defined]
    assert {("Drafts",), ("Sent",), ("Trash",)} <= tree.subscriptions()
    created = _mailbox_set(mail, create={"p": {"name": "P", "isSubscribed": True}, "c": {"name": "C", "parentId": "#p", "isSubscribed": True}})
    parent, child = created["created"]["p"]["id"], created["created"]["c"]["id"]
    assert {("P",), ("P", "C")} <= tree.subscriptions()
    _mailbox_set(mail, update={parent: {"name": "Q"}})
    subscribed = tree.subscriptions()
    assert {("Q",), ("Q", "C")} <= subscribed and ("P",) not in subscribed and ("P", "C") not in subscribed
    _mailbox_set(mail, update={child: {"isSubscribed": False}})
    assert ("Q", "C") not in tree.subscriptions()
    _mailbox_set(mail, destroy=[child, parent])
    assert ("Q",) not in tree.subscriptions()


def _open_client(path: Path, name: str = "kim") -> tuple[MaildirBackend, Client]:
    """A backend and a client over ``path`` (the account made if missing)."""
    instance = jmap_maildir.open_backend(path)
    core = Core(instance, Registry.from_entry_points([]))
    if not any(a.name == name for a in instance.directory.list_accounts()):
        add_account(core, name, "pw")
    return instance, Client(core, principal_for(core, name), using=USING)


def _subjects(client: Client) -> dict[str, dict[str, Any]]:
    ids = client.call("Email/query", {"accountId": client.account_id}, using=USING)["ids"]
    got = client.call("Email/get", {"accountId": client.account_id, "ids": ids, "properties": ["subject", "keywords", "mailboxIds"]}, using=USING)
    return {e["subject"]: e for e in got["list"]}


def test_changes_made_while_no_process_ran(tmp_path: Path) -> None:
    """A new process compares the known files with the index: flag renames
    and removals made while it was stopped are found."""
    path = tmp_path / "data"
    instance, client = _open_client(path)
    try:
        import_messages(client, [message("kept"), message("reflagged"), message("removed")])
        root = instance.tree(client.account_id).root
        names = {s: e["id"] for s, e in _subjects(client).items()}
        files = instance.read_internal(client.account_id, lambda r: {f["id"]: f["files"] for f in r.all("MaildirFile")})
    finally:
        instance.close()
    (reflagged,) = files[names["reflagged"]].values()
    (removed,) = files[names["removed"]].values()
    (root / "cur" / reflagged).rename(root / "cur" / (reflagged.split(":2,")[0] + ":2,FS"))
    (root / "cur" / removed).unlink()

    instance, client = _open_client(path)
    try:
        instance.sync(client.account_id)
        found = _subjects(client)
        assert set(found) == {"kept", "reflagged"}
        assert found["reflagged"]["keywords"] == {"$flagged": True, "$seen": True}
        assert found["kept"]["keywords"] == {}
        inbox = mailboxes(client)["inbox"]
        assert (inbox["totalEmails"], inbox["unreadEmails"]) == (2, 1)
        instance.sync(client.account_id)
        assert set(_subjects(client)) == {"kept", "reflagged"}
    finally:
        instance.close()


def test_external_flag_change_reaches_the_hard_links(mail: Client) -> None:
    """Design, section 6: one message in two folders is one Email; a flag
    rename of one link is mirrored to the other, so both folders agree."""
    root = _root(mail)
    archive = mailboxes(mail)["archive"]["id"]
    (email,) = import_messages(mail, [message("linked")])
    _email_set(mail, update={email["id"]: {f"mailboxIds/{archive}": True}})
    inbox_file = _only(root)
    assert os.path.samefile(inbox_file, _only(root / ".Archive"))
    inbox_file.rename(inbox_file.with_name(inbox_file.name.split(":2,")[0] + ":2,FS"))
    mail.core.backend.sync(mail.account_id)  # type: ignore[attr-defined]
    got = mail.call("Email/get", {"accountId": mail.account_id, "ids": [email["id"]], "properties": ["keywords"]}, using=USING)
    assert got["list"][0]["keywords"] == {"$flagged": True, "$seen": True}
    assert _info(_only(root / ".Archive")) == "FS" and _info(_only(root)) == "FS"
    files = mail.core.backend.read_internal(mail.account_id, lambda r: r.get("MaildirFile", email["id"])["files"])  # type: ignore[attr-defined]
    assert sorted(files.values()) == sorted([_only(root).name, _only(root / ".Archive").name])
    before = mail.call("Email/get", {"accountId": mail.account_id, "ids": []}, using=USING)["state"]
    for _ in range(2):  # the mirrored rename is not another change
        mail.core.backend.sync(mail.account_id)  # type: ignore[attr-defined]
    changes = mail.call("Email/changes", {"accountId": mail.account_id, "sinceState": before}, using=USING)
    assert changes["updated"] == [] and changes["created"] == []


def _state(client: Client, method: str) -> str:
    return str(client.call(method, {"accountId": client.account_id, "ids": []}, using=USING)["state"])


def _assert_rebuilt(client: Client, email_state: str, mailbox_state: str, expected: dict[str, dict[str, bool]]) -> None:
    """The same messages with the same keywords; old states are refused."""
    found = _subjects(client)
    assert {s: e["keywords"] for s, e in found.items()} == expected
    for method, state in (("Email/changes", email_state), ("Mailbox/changes", mailbox_state)):
        error = client.error(method, {"accountId": client.account_id, "sinceState": state}, using=USING)
        assert error["type"] == "cannotCalculateChanges"
    from tests.mailhelpers import recount, stored_counts

    assert stored_counts(client) == recount(client)


def test_rebuild_account_adopts_the_tree_under_a_new_epoch(tmp_path: Path) -> None:
    """Design, section 5: the files are the truth."""
    instance, client = _open_client(tmp_path / "data")
    try:
        archive = mailboxes(client)["archive"]["id"]
        one, two = import_messages(client, [message("one"), message("two")])
        _email_set(client, update={one["id"]: {"keywords/$seen": True, f"mailboxIds/{archive}": True}, two["id"]: {"keywords/$flagged": True}})
        states = _state(client, "Email/get"), _state(client, "Mailbox/get")
        tree = instance.tree(client.account_id)
        files_before = sorted(p.name for p in _files(tree.root) + _files(tree.root / ".Archive"))
        instance.rebuild_account(client.account_id)
        _assert_rebuilt(client, *states, {"one": {"$seen": True}, "two": {"$flagged": True}})
        assert mailboxes(client)["archive"]["id"] == archive  # folders keep their mailboxes
        assert mailboxes(client)["archive"]["totalEmails"] == 1
        assert sorted(p.name for p in _files(tree.root) + _files(tree.root / ".Archive")) == files_before
        (email_id,) = client.call("Email/query", {"accountId": client.account_id, "filter": {"inMailbox": archive}}, using=USING)["ids"]
        got = client.call("Email/get", {"accountId": client.account_id, "ids": [email_id], "properties": ["mailboxIds"]}, using=USING)
        assert len(got["list"][0]["mailboxIds"]) == 2  # the hard links are still one Email
    finally:
        instance.close()


def test_marker_disagreement_rebuilds_on_open(tmp_path: Path) -> None:
    """A tree whose marker is not the index's (replaced, restored) is
    adopted anew by the next process."""
    path = tmp_path / "data"
    instance, client = _open_client(path)
    try:
        import_messages(client, [message("kept"), message("gone")])
        instance.sync(client.account_id)
        root = instance.tree(client.account_id).root
        states = _state(client, "Email/get"), _state(client, "Mailbox/get")
        gone = next(p for p in _files(root) if b"Subject: gone" in p.read_bytes())
    finally:
        instance.close()
    marker = root / jmap_maildir.rebuild.MARKER_FILE
    assert marker.read_text().strip()
    marker.write_text("another tree\n")
    gone.unlink()
    instance, client = _open_client(path)
    try:
        _assert_rebuilt(client, *states, {"kept": {}})
        assert marker.read_text().strip() != "another tree"
        instance.sync(client.account_id)
        assert set(_subjects(client)) == {"kept"}
    finally:
        instance.close()
    instance, client = _open_client(path)  # markers agree now: no rebuild
    try:
        email_state = _state(client, "Email/get")
        instance.sync(client.account_id)
        assert _state(client, "Email/get") == email_state
        client.call("Email/changes", {"accountId": client.account_id, "sinceState": email_state}, using=USING)
    finally:
        instance.close()


def test_folders_renamed_and_removed_while_no_process_ran(tmp_path: Path) -> None:
    """A new process compares the folders with the index: a renamed folder
    keeps its mailbox and Emails, a removed one takes them with it."""
    import shutil

    path = tmp_path / "data"
    instance, client = _open_client(path)
    try:
        boxes = mailboxes(client)
        archive, trash = boxes["archive"]["id"], boxes["trash"]["id"]
        kept, dropped = import_messages(client, [message("kept"), message("dropped")])
        _email_set(client, update={kept["id"]: {"mailboxIds": {archive: True}}, dropped["id"]: {"mailboxIds": {trash: True}}})
        root = instance.tree(client.account_id).root
    finally:
        instance.close()
    (root / ".Archive").rename(root / ".Old")
    shutil.rmtree(root / ".Trash")

    instance, client = _open_client(path)
    try:
        instance.sync(client.account_id)
        got = client.call("Mailbox/get", {"accountId": client.account_id}, using=USING)["list"]
        by_id = {b["id"]: b for b in got}
        assert by_id[archive]["name"] == "Old" and by_id[archive]["totalEmails"] == 1
        assert trash not in by_id
        assert [b["name"] for b in got].count("Old") == 1
        assert set(_subjects(client)) == {"kept"}
        assert client.call("Email/query", {"accountId": client.account_id}, using=USING)["ids"] == [kept["id"]]
    finally:
        instance.close()


def test_deleted_sidecar_then_account_add_adopts_the_tree(tmp_path: Path) -> None:
    """The directory lives in the sidecar (see jmap_maildir.rebuild): with
    the sidecar deleted, adding the account again adopts its files."""
    import shutil

    instance, client = _open_client(tmp_path / "data")
    try:
        archive = mailboxes(client)["archive"]["id"]
        one, _ = import_messages(client, [message("one"), message("two")])
        _email_set(client, update={one["id"]: {"keywords/$seen": True, f"mailboxIds/{archive}": True}})
        instance.sync(client.account_id)
    finally:
        instance.close()
    for item in (tmp_path / "data").iterdir():  # all but the default Maildir root
        if item.is_dir() and item.name != "maildir":
            shutil.rmtree(item)
        elif not item.is_dir():
            item.unlink()
    instance, client = _open_client(tmp_path / "data")
    try:
        assert {s: e["keywords"] for s, e in _subjects(client).items()} == {"one": {"$seen": True}, "two": {}}
        assert mailboxes(client)["archive"]["totalEmails"] == 1
        from tests.mailhelpers import recount, stored_counts

        assert stored_counts(client) == recount(client)
    finally:
        instance.close()


# -- our own writes and the stored listing (issue 4: p99 after writes) ---------------


def _date_back(root: Path, seconds: float = 5.0) -> None:
    """Every directory's mtime well in the past, so the next listing is trusted."""
    past = time.time() - seconds
    for directory, _, _ in os.walk(root):
        os.utime(directory, (past, past))


def test_delivery_in_the_same_second_as_our_write_is_found(mail: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our committed writes go into the stored listing, but a file another
    program writes into the same directory in the same clock second (on a
    file system with 1 s mtimes both changes leave one mtime, long past by
    the time anyone looks) is still found and becomes an Email."""
    root = _root(mail)
    backend = mail.core.backend
    (email,) = import_messages(mail, [message("ours")])
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    _date_back(root)
    backend.sync(mail.account_id)  # type: ignore[attr-defined]  # a trusted (settled) listing
    second = int(time.time()) - 3
    real_set_flags = jmap_maildir.MaildirTree.set_flags

    def with_a_delivery_in_the_same_second(self: Any, *args: Any, **kwargs: Any) -> Any:
        moved = real_set_flags(self, *args, **kwargs)
        _drop(root, "1700000100.M9P9.elsewhere:2,S", message("theirs"), subdir="cur")
        os.utime(root / "cur", (second, second))  # one 1-second tick for both changes
        return moved

    monkeypatch.setattr(jmap_maildir.MaildirTree, "set_flags", with_a_delivery_in_the_same_second)
    _email_set(mail, update={email["id"]: {"keywords/$flagged": True}})
    monkeypatch.undo()
    assert (root / "cur").stat().st_mtime == second
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    got = _subjects(mail)
    assert set(got) == {"ours", "theirs"}
    assert got["ours"]["keywords"] == {"$flagged": True}
    assert got["theirs"]["keywords"] == {"$seen": True}
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    assert len(_subjects(mail)) == 2  # adopted once


def test_our_file_removed_before_any_listing_saw_it(mail: Client) -> None:
    """A file we wrote that another program deletes before the next sync
    (no listing ever saw it) still counts as removed (RFC 8621 §4: the
    Email leaves the mailbox)."""
    root = _root(mail)
    backend = mail.core.backend
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    (email,) = import_messages(mail, [message("short-lived")])
    _only(root).unlink()
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    got = mail.call("Email/get", {"accountId": mail.account_id, "ids": [email["id"]], "properties": ["mailboxIds"]}, using=USING)
    assert got["notFound"] == [email["id"]] or got["list"][0]["mailboxIds"] == {}


def test_own_writes_need_no_lookup_at_the_next_sync(mail: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync after our own import, flag change and move lists the
    folders again but finds nothing to resolve: no write transaction."""
    backend = mail.core.backend
    boxes = mailboxes(mail)
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    emails = import_messages(mail, [message(f"m{i}") for i in range(5)])
    _email_set(mail, update={emails[0]["id"]: {"keywords/$seen": True},
                             emails[1]["id"]: {"mailboxIds": {boxes["archive"]["id"]: True}}})
    _email_set(mail, destroy=[emails[2]["id"]])
    writes: list[object] = []
    real = backend.write_internal

    def counting(account_id: str, fn: Any) -> Any:
        writes.append(fn)
        return real(account_id, fn)

    monkeypatch.setattr(backend, "write_internal", counting)
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    assert writes == []
    monkeypatch.undo()
    assert len(_subjects(mail)) == 4


def test_rebuild_and_adoption_write_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Design, section 5: rebuilding a large account is many bounded write
    transactions, not one: both the removal of the old Emails and the
    adoption of the files go to the plugin CHUNK at a time."""
    from jmap_maildir import sync as sync_module

    monkeypatch.setattr(sync_module, "CHUNK", 2)
    instance, client = _open_client(tmp_path / "data")
    try:
        archive = mailboxes(client)["archive"]["id"]
        emails = import_messages(client, [message(f"m{i}") for i in range(5)])
        _email_set(client, update={emails[0]["id"]: {f"mailboxIds/{archive}": True, "keywords/$seen": True}})
        states = _state(client, "Email/get"), _state(client, "Mailbox/get")
        sizes: list[int] = []
        real_commit = instance.commit

        def counting(batch: WriteBatch) -> Any:
            if batch.external is not None:
                sizes.append(sum(1 for p in batch.puts if p.type_name == "Email")
                             + sum(1 for d in batch.destroys if d.type_name == "Email"))
            return real_commit(batch)

        monkeypatch.setattr(instance, "commit", counting)
        instance.rebuild_account(client.account_id)
        monkeypatch.undo()
        # 6 removals (m0 had two mailboxes) in 3 batches, then 5 files adopted in 3
        assert max(sizes) <= 2 and len(sizes) == 6
        expected = {f"m{i}": {} for i in range(1, 5)} | {"m0": {"$seen": True}}
        _assert_rebuilt(client, *states, expected)
        assert mailboxes(client)["archive"]["totalEmails"] == 1
    finally:
        instance.close()


def test_push_waiter_wakes_on_an_external_delivery(mail: Client) -> None:
    """Issue 4: external changes wake push waiters.  A thread blocked in
    wait_for_change (RFC 8620 §7 push rests on it) returns a higher modseq
    soon after another program drops a file into new/, with no request
    being made meanwhile; with nothing delivered it waits its time out."""
    import threading

    backend = mail.core.backend
    root = _root(mail)
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    since = backend.current_modseqs([mail.account_id])
    quiet = backend.wait_for_change(since, 0.7)  # our own looks are no change
    assert quiet[mail.account_id] == since[mail.account_id]

    woken: dict[str, int] = {}
    waiter = threading.Thread(target=lambda: woken.update(backend.wait_for_change(since, 30.0)))
    waiter.start()
    time.sleep(0.2)  # the waiter is waiting
    dropped = time.monotonic()
    _drop(root, "1700000200.M1P1.elsewhere", message("pushed"))
    waiter.join(timeout=30.0)
    elapsed = time.monotonic() - dropped
    assert not waiter.is_alive()
    assert woken[mail.account_id] > since[mail.account_id]
    assert elapsed < 5.0  # a generous bound: the waiter looks every 0.5 s
    assert set(_subjects(mail)) == {"pushed"}


# -- message blobs are the files (design, section 3) ---------------------------------


def _stored_bytes(backend: Any, blob_id: str) -> bytes | None:
    """The blob's bytes in the LMDB store itself (not through the files)."""
    raw = backend._env.read(lambda txn, dbs: txn.get(blob_id.encode(), db=dbs.blobdata))
    return None if raw is None else bytes(raw)


def _download(mail: Client, blob_id: str, offset: int = 0, length: int | None = None) -> bytes | None:
    found = mail.core.download(mail.principal, mail.account_id, blob_id, offset, length)
    return None if found is None else found[0]


def test_an_imported_message_is_served_from_its_file(mail: Client) -> None:
    root = _root(mail)
    backend = mail.core.backend
    raw = message("the file is the truth")
    (email,) = import_messages(mail, [raw])
    blob_id = email["blobId"]
    assert _stored_bytes(backend, blob_id) is None  # stored once: in the file
    assert _download(mail, blob_id) == raw
    assert _download(mail, blob_id, 3, 10) == raw[3:13]
    assert _download(mail, blob_id, len(raw) - 4) == raw[-4:]
    info = mail.call("Email/get", {"accountId": mail.account_id, "ids": [email["id"]], "properties": ["size", "subject"]}, using=USING)
    assert info["list"][0]["subject"] == "the file is the truth" and info["list"][0]["size"] == len(raw)

    # The bytes on disk are what a download gives.
    (inbox_file,) = _files(root)
    edited = raw.replace(b"the file is the truth", b"THE FILE IS THE TRUTH")
    inbox_file.write_bytes(edited)
    assert _download(mail, blob_id) == edited

    # Another program renames it with other flags: found by its base name,
    # before and after the sync.
    renamed = inbox_file.with_name(inbox_file.name.split(":2,")[0] + ":2,RS")
    inbox_file.rename(renamed)
    assert _download(mail, blob_id, 0, 5) == edited[:5]
    backend.sync(mail.account_id)  # type: ignore[attr-defined]
    assert _download(mail, blob_id) == edited

    # A hard link elsewhere serves it when the first file is gone.
    archive = mailboxes(mail)["archive"]["id"]
    _email_set(mail, update={email["id"]: {f"mailboxIds/{archive}": True}})
    renamed.unlink()
    assert _download(mail, blob_id) == edited
    (_only(root / ".Archive")).unlink()
    assert _download(mail, blob_id) is None  # no file left: 404, no exception
    with backend.snapshot(mail.account_id) as snap:  # type: ignore[attr-defined]
        assert snap.read_blob(blob_id) is None and snap.read_blob(blob_id, 2, 3) is None


def test_uploads_stay_in_the_store_until_an_email_takes_them(mail: Client) -> None:
    backend = mail.core.backend
    raw = message("uploaded first")
    blob_id = upload(mail, raw)
    assert _stored_bytes(backend, blob_id) == raw
    (email,) = import_messages(mail, [raw])
    assert email["blobId"] == blob_id and _stored_bytes(backend, blob_id) is None
    assert _download(mail, blob_id) == raw
    # A second Email of the same bytes gets its own file, written from the first's.
    (again,) = import_messages(mail, [raw])
    assert again["id"] != email["id"]
    assert [p.read_bytes() for p in _files(_root(mail))] == [raw, raw]
    # Destroying both: the bytes go back into the store before the files
    # go, so the blob stays readable until it expires, as on LMDB.
    _email_set(mail, destroy=[email["id"]])
    assert _stored_bytes(backend, blob_id) is None
    _email_set(mail, destroy=[again["id"]])
    assert _files(_root(mail)) == [] and _stored_bytes(backend, blob_id) == raw
    assert _download(mail, blob_id) == raw
    assert backend.expire_blobs(mail.account_id, time.time() + 10) == 1  # type: ignore[attr-defined]
    assert _download(mail, blob_id) is None and _stored_bytes(backend, blob_id) is None


def test_an_adopted_tree_stores_no_message_bytes(tmp_path: Path) -> None:
    mail_root = tmp_path / "mail"
    existing = jmap_maildir.MaildirTree(mail_root / "ada")
    padding = (b"x" * 78 + b"\r\n") * 750  # 300 x 60 kB: 18 MB of mail
    raws = [message(f"big {n}") + padding for n in range(300)]
    for raw in raws:
        existing.deliver((), raw)
    instance = jmap_maildir.open_backend(tmp_path / "data", maildir_root=str(mail_root / "%u"))
    try:
        core = Core(instance, Registry.from_entry_points([]))
        add_account(core, "ada", "pw")
        client = Client(core, principal_for(core, "ada"), using=USING)
        instance.sync(client.account_id)
        ids = client.call("Email/query", {"accountId": client.account_id}, using=USING)["ids"]
        assert len(ids) == 300
        got = client.call("Email/get", {"accountId": client.account_id, "ids": ids[:5], "properties": ["blobId"]}, using=USING)
        for email in got["list"]:
            assert _stored_bytes(instance, email["blobId"]) is None
            data = _download(client, email["blobId"])
            assert data is not None and data in raws
        tree_size = sum(p.stat().st_size for p in (mail_root / "ada" / "cur").iterdir())
        index = (tmp_path / "data" / "data.mdb").stat().st_blocks * 512
        assert tree_size > 18_000_000 and index < tree_size / 3, (index, tree_size)
    finally:
        instance.close()
