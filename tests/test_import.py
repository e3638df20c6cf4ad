"""``jmapcore import`` end to end: mbox, Maildir++, .eml folders, the
progress bar and summary, exit codes, and what a client then sees; the
shared corpus through the CLI; the demo account's sample mail."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("jmap_mail")

from jmapcore.accounts import add_account, principal_for  # noqa: E402
from jmapcore.testing.client import Client  # noqa: E402
from jmapserver import importer  # noqa: E402
from jmapserver.cli import main  # noqa: E402
from jmapserver.config import Settings  # noqa: E402
from jmapserver.demo import DEMO_MESSAGES, seed_demo  # noqa: E402
from jmapserver.progress import Progress  # noqa: E402
from jmapserver.wiring import build_core  # noqa: E402
from tests.mailhelpers import MAIL, message  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
ALL_PROPERTIES = [
    "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt", "messageId",
    "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo", "subject", "sentAt",
    "headers", "bodyStructure", "bodyValues", "textBody", "htmlBody", "attachments", "hasAttachment",
    "preview",
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A data directory with the account ``alice`` (default mailboxes)."""
    path = tmp_path / "data"
    assert run(capsys, "account", "add", "alice", "--password", "pw", "--data", str(path))[0] == 0
    return path


@contextmanager
def client(data: Path) -> Iterator[Client]:
    core = build_core(Settings(data=data))
    try:
        yield Client(core, principal_for(core, "alice"), using=[MAIL])
    finally:
        core.close()


def call(c: Client, name: str, **arguments: object) -> dict:
    return c.call(name, {"accountId": c.account_id, **arguments})


def mailbox_paths(c: Client) -> dict[str, dict]:
    """Name path ("Work/Projects") → Mailbox."""
    listed = call(c, "Mailbox/get")["list"]
    by_id = {m["id"]: m for m in listed}

    def path(m: dict) -> str:
        return m["name"] if m["parentId"] is None else f"{path(by_id[m['parentId']])}/{m['name']}"

    return {path(m): m for m in listed}


def emails_in(c: Client, mailbox_id: str) -> list[dict]:
    ids = call(c, "Email/query", filter={"inMailbox": mailbox_id}, sort=[{"property": "receivedAt"}])["ids"]
    return call(c, "Email/get", ids=ids, properties=["subject", "keywords", "receivedAt", "mailboxIds", "blobId"])["list"]


# -- mbox ------------------------------------------------------------------------------

MALFORMED = (
    b"Subject: no date, no id, broken multipart\n"
    b"From: someone@example.com\n"
    b"Content-Type: multipart/mixed; boundary=nope\n\n"
    b"there is no boundary line at all\n"
)


def test_mbox_with_from_quoting_status_and_a_malformed_message(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = message("First", "Line one\nFrom here the text goes on\n>From quoted once\nend\n")
    first = first.replace(b"\nFrom here", b"\n>From here").replace(b"\n>From quoted", b"\n>>From quoted")
    second = message("Second", "seen and flagged").replace(b"Subject:", b"Status: RO\nX-Status: F\nSubject:", 1)
    mbox = tmp_path / "mail.mbox"
    mbox.write_bytes(
        b"From alice@example.com Sat Jan  3 01:05:34 2004\n" + first + b"\n"
        b"From bob@example.com Mon Feb  2 10:00:00 2004\n" + second + b"\n"
        b"From MAILER-DAEMON Tue Mar  2 12:00:00 +0100 2004\n" + MALFORMED + b"\n"
    )
    code, out, err = run(capsys, "import", "alice", str(mbox), "--data", str(data))
    assert code == 0, out + err
    assert "imported 3 of 3 messages from mbox" in out
    assert "  malformed:  1 (imported as they are)" in out
    for reason in ("no Date header", "no Message-ID header", "MIME defect: StartBoundaryNotFound"):
        assert f"1 × {reason}" in out
    assert "  failed:     0" in out and "Traceback" not in err
    with client(data) as c:
        inbox = mailbox_paths(c)["Inbox"]
        assert inbox["totalEmails"] == 3 and inbox["unreadEmails"] == 2
        got = emails_in(c, inbox["id"])
        assert [e["receivedAt"] for e in got] == [
            "2004-01-03T01:05:34Z", "2004-02-02T10:00:00Z", "2004-03-02T11:00:00Z",
        ], "the From_ line's date (UTC unless it names a zone)"
        assert [e["subject"] for e in got] == ["First", "Second", "no date, no id, broken multipart"]
        assert got[1]["keywords"] == {"$seen": True, "$flagged": True}
        raw = c.core.download(c.principal, c.account_id, got[0]["blobId"])[0]
        assert b"\nFrom here the text" in raw and b"\n>From quoted once" in raw, "mboxrd: one > removed"


# -- Maildir -------------------------------------------------------------------------


def _deliver(folder: Path, name: str, raw: bytes, sub: str = "cur", mtime: int = 1_700_000_000) -> None:
    for part in ("cur", "new", "tmp"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    path = folder / sub / name
    path.write_bytes(raw)
    os.utime(path, (mtime, mtime))


def test_maildir_plus_plus_folders_flags_and_trash(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "Maildir"
    _deliver(root, "1.a.host:2,SF", message("Seen flagged"), mtime=1_700_000_000)
    _deliver(root, "2.b.host", message("Brand new"), sub="new", mtime=1_700_000_100)
    _deliver(root, "3.c.host:2,ST", message("Deleted, not expunged"))
    _deliver(root, "4.d.host:2,Sa", message("Custom keyword"))
    (root / "dovecot-keywords").write_text("0 $Label1\n1 bad(keyword\n")
    (root / "tmp" / "5.e.host").write_bytes(message("Still being delivered"))
    _deliver(root / ".Work.Projects", "6.f.host:2,RS", message("Project mail"))
    _deliver(root / ".Work", "7.g.host:2,", message("Work mail"))
    _deliver(root / ".Sent", "8.h.host:2,S", message("Sent by me"))
    _deliver(root / ".Entw&APw-rfe", "9.i.host:2,D", message("Draft"))
    code, out, err = run(capsys, "import", "alice", str(root), "--data", str(data))
    assert code == 0, out + err
    assert "imported 8 of 8 messages from Maildir" in out
    assert "into Trash: 1" in out and "malformed:  0" in out
    for created in ("Work", "Work/Projects", "Entwürfe"):
        assert f"created mailbox {created}\n" in out
    assert "created mailbox Sent" not in out, "the existing Sent mailbox is reused"
    with client(data) as c:
        boxes = mailbox_paths(c)
        assert boxes["Work/Projects"]["parentId"] == boxes["Work"]["id"]
        inbox = {e["subject"]: e for e in emails_in(c, boxes["Inbox"]["id"])}
        assert set(inbox) == {"Seen flagged", "Brand new", "Custom keyword"}
        assert inbox["Seen flagged"]["keywords"] == {"$seen": True, "$flagged": True}
        assert inbox["Brand new"]["keywords"] == {} and inbox["Brand new"]["receivedAt"] == "2023-11-14T22:15:00Z"
        assert inbox["Seen flagged"]["receivedAt"] == "2023-11-14T22:13:20Z", "the file's mtime"
        assert inbox["Custom keyword"]["keywords"] == {"$seen": True, "$label1": True}
        assert [e["subject"] for e in emails_in(c, boxes["Trash"]["id"])] == ["Deleted, not expunged"]
        [project] = emails_in(c, boxes["Work/Projects"]["id"])
        assert project["keywords"] == {"$answered": True, "$seen": True}
        assert [e["subject"] for e in emails_in(c, boxes["Sent"]["id"])] == ["Sent by me"]
        [draft] = emails_in(c, boxes["Entwürfe"]["id"])
        assert draft["keywords"] == {"$draft": True}
        counts = {name: boxes[name]["totalEmails"] for name in ("Inbox", "Trash", "Work", "Work/Projects", "Sent")}
        assert counts == {"Inbox": 3, "Trash": 1, "Work": 1, "Work/Projects": 1, "Sent": 1}


# -- .eml files and folders --------------------------------------------------------


def test_eml_folder_into_a_named_mailbox_and_a_single_file(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "export"
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / "a.eml").write_bytes(message("A"))
    (folder / "sub" / "b.EML").write_bytes(message("B"))
    (folder / "sub" / "deeper" / "c.eml").write_bytes(message("C"))
    (folder / "notes.txt").write_text("not a message")
    code, out, _ = run(capsys, "import", "alice", str(folder), "--mailbox", "Old/2023", "--data", str(data), "--quiet")
    assert code == 0 and "imported 3 of 3 messages from .eml folder" in out
    assert "created mailbox Old\n" in out and "created mailbox Old/2023\n" in out
    single = tmp_path / "one.eml"
    single.write_bytes(message("Single"))
    code, out, _ = run(capsys, "import", "alice", str(single), "--mailbox", "ARCHIVE", "--data", str(data))
    assert code == 0 and "imported 1 of 1 messages from message" in out
    with client(data) as c:
        boxes = mailbox_paths(c)
        assert sorted(e["subject"] for e in emails_in(c, boxes["Old/2023"]["id"])) == ["A", "B", "C"]
        assert [e["subject"] for e in emails_in(c, boxes["Archive"]["id"])] == ["Single"]
        assert boxes["Inbox"]["totalEmails"] == 0


# -- failures, exit codes, progress --------------------------------------------------


def test_failures_are_listed_and_exit_1(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "good.eml").write_bytes(message("Good"))
    (folder / "gone.eml").symlink_to(tmp_path / "missing")
    code, out, err = run(capsys, "import", "alice", str(folder), "--data", str(data))
    assert code == 1
    assert "imported 1 of 2 messages" in out and "  failed:     1" in out
    assert "    gone.eml: cannot read the file: No such file or directory" in out
    assert "Traceback" not in err


def test_errors_before_the_import_are_one_sentence(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (("alice", str(tmp_path / "nowhere")), "does not exist"),
        (("alice", str(empty)), "is not a Maildir (no cur/ or new/) and holds no .eml files"),
        (("nobody", str(empty)), "no account named 'nobody'"),
    ]
    for argv, expected in cases:
        code, out, err = run(capsys, "import", *argv, "--data", str(data))
        assert (code, out) == (1, ""), err
        assert err.startswith("jmapcore: error: ") and expected in err and "Traceback" not in err
    code, _, err = run(capsys, "import", "alice", str(empty), "--data", str(tmp_path / "no-data"))
    assert code == 2 and "does not exist" in err


def test_a_batch_refused_as_a_whole_is_retried_one_by_one(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One message the server chokes on fails alone; its batch-mates are imported."""
    folder = tmp_path / "export"
    folder.mkdir()
    for n in range(5):
        (folder / f"{n}.eml").write_bytes(message(f"M{n}"))
    real = importer.Importer._import

    def choking(self: importer.Importer, batch: list) -> dict:
        if any(one.item.label == "3.eml" for one in batch):
            raise importer.ImportFailed("Email/import: serverFail: boom")
        return real(self, batch)

    monkeypatch.setattr(importer.Importer, "_import", choking)
    code, out, _ = run(capsys, "import", "alice", str(folder), "--data", str(data))
    assert code == 1 and "imported 4 of 5" in out and "    3.eml: Email/import: serverFail: boom" in out


def test_progress_on_a_terminal_and_in_a_log(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    bar = Progress(50, tty)
    for done in range(0, 51, 10):
        bar.update(done)
        bar._last_draw = 0.0  # redraw every time, whatever the clock says
    bar.finish(50)
    assert tty.getvalue().count("\r") == 7 and tty.getvalue().endswith("\n")
    assert "50/50 messages 100%" in tty.getvalue() and "ETA 0:00:00" in tty.getvalue()

    log = io.StringIO()
    bar = Progress(1000, log)
    for done in range(1001):
        bar.update(done)
    bar.finish(1000)
    lines = log.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in log.getvalue(), "a line at 10%, 20% ... 90%, and the last one"
    assert lines[0].startswith("[##") and " 100/1,000 messages  10%" in lines[0]

    folder = tmp_path / "export"
    folder.mkdir()
    for n in range(3):
        (folder / f"{n}.eml").write_bytes(message(f"M{n}"))
    code, out, err = run(capsys, "import", "alice", str(folder), "--data", str(data))
    assert code == 0 and "3/3 messages 100%" in err and "3/3" not in out, "the bar is on stderr"
    code, out, err = run(capsys, "import", "alice", str(folder), "--data", str(data), "--quiet")
    assert code == 0 and err == "" and "imported 3 of 3" in out


# -- the shared corpus, end to end ---------------------------------------------------


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not there")
def test_every_corpus_message_imports_and_answers_email_get(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """[robustness] each .eml of the corpus, through ``jmapcore import`` as a
    folder, becomes an Email that answers Email/get of every property with
    all body values, without an error."""
    files = sorted(CORPUS.rglob("*.eml"))
    code, out, err = run(capsys, "import", "alice", str(CORPUS), "--data", str(data), "--quiet")
    assert code == 0, out + err
    assert f"imported {len(files)} of {len(files)} messages" in out
    malformed = int(out.split("malformed:")[1].split()[0])
    assert 0 < malformed < len(files), "the corpus has broken messages, and most are fine"
    with client(data) as c:
        ids = call(c, "Email/query", filter={}, limit=1000)["ids"]
        assert len(ids) == len(files)
        for start in range(0, len(ids), 25):
            chunk = ids[start:start + 25]
            got = call(c, "Email/get", ids=chunk, properties=ALL_PROPERTIES, fetchAllBodyValues=True)
            assert got["notFound"] == [] and len(got["list"]) == len(chunk)
            for email in got["list"]:
                assert set(ALL_PROPERTIES) <= set(email)
                assert isinstance(email["bodyValues"], dict)


# -- the demo account ----------------------------------------------------------------


def test_demo_seed_fills_an_empty_inbox_once(tmp_path: Path) -> None:
    core = build_core(Settings(data=tmp_path / "demo"))
    try:
        account = add_account(core, "demo", "demo")
        assert seed_demo(core, account) == DEMO_MESSAGES
        assert seed_demo(core, account) == 0, "only while the Inbox is empty"
        c = Client(core, principal_for(core, "demo"), using=[MAIL])
        boxes = {m["role"]: m for m in call(c, "Mailbox/get")["list"]}
        assert boxes["inbox"]["totalEmails"] > 150 and 0 < boxes["inbox"]["unreadEmails"]
        assert boxes["inbox"]["totalThreads"] < boxes["inbox"]["totalEmails"], "threads, not just messages"
        assert boxes["sent"]["totalEmails"] > 0
        total = sum(b["totalEmails"] for b in boxes.values())
        assert total == DEMO_MESSAGES
        newest = call(c, "Email/query", filter={"inMailbox": boxes["inbox"]["id"]},
                      sort=[{"property": "receivedAt", "isAscending": False}], collapseThreads=True, limit=20)
        threads = call(c, "Email/get", ids=newest["ids"], properties=["threadId"])["list"]
        lengths = [len(t["emailIds"]) for t in call(c, "Thread/get", ids=[e["threadId"] for e in threads])["list"]]
        assert max(lengths) > 1
    finally:
        core.close()


def test_reindex_rebuilds_the_search_index(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``jmapcore reindex`` rebuilds full-text search from the stored messages."""
    folder = tmp_path / "eml"
    folder.mkdir()
    (folder / "a.eml").write_bytes(message("Harbour", "the ferry leaves at nine"))
    assert run(capsys, "import", "alice", str(folder), "--data", str(data), "--quiet")[0] == 0
    with client(data) as c:
        c.core.backend.rebuild_search(c.account_id, "Email", [])
        assert call(c, "Email/query", filter={"text": "ferry"})["ids"] == []
    code, out, err = run(capsys, "reindex", "alice", "--data", str(data))
    assert code == 0 and "1 Email" in out, err
    with client(data) as c:
        assert len(call(c, "Email/query", filter={"text": "ferry"})["ids"]) == 1
    code, _, err = run(capsys, "reindex", "nobody", "--data", str(data))
    assert code == 1 and "no account named 'nobody'" in err and "Traceback" not in err
