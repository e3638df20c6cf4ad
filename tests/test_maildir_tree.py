"""The Maildir file layer (issue 4): folder names in modified UTF-7
(RFC 3501 §5.1.3) for Maildir++ and LAYOUT=fs, flags and the
``dovecot-keywords`` letters shared with Dovecot, tree operations, hard
links, external changes found cheaply, symlink escapes refused, and a
writer killed at random moments never leaving half a message."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import signal
import stat
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

try:
    import jmap_maildir  # noqa: F401
except ImportError:  # an editable install made before the package existed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "backends"))

from jmap_maildir import (
    FolderExists,
    FolderHasChildren,
    FolderNotEmpty,
    FolderNotFound,
    FolderStamp,
    InvalidName,
    Layout,
    LockTimeout,
    MaildirTree,
    MessageFile,
    MessageGone,
    UnsafePath,
    folder_dirname,
    folder_path,
    keywords_file,
    mutf7_decode,
    mutf7_encode,
    names,
)
from jmap_maildir import flags as mflags
from jmap_maildir.scan import FolderChanges

LAYOUTS = ["maildir++", "fs"]
MESSAGE = b"From: a@example.com\r\nSubject: hello\r\n\r\nbody \xff bytes\r\n"


@pytest.fixture(params=LAYOUTS)
def tree(request: pytest.FixtureRequest, tmp_path: Path) -> MaildirTree:
    return MaildirTree(tmp_path / "acct", request.param, host="testhost")


def settle(root: Path, seconds: float = 5.0) -> None:
    """Date every directory back, as if the last change were long ago, so
    the next listing is trusted (scan.SETTLE_NS)."""
    past = time.time() - seconds
    for directory, _, _ in os.walk(root):
        os.utime(directory, (past, past))


def drop(
    tree: MaildirTree, folder: tuple[str, ...], subdir: str, name: str, data: bytes = MESSAGE
) -> Path:
    """Write a message file the way another program would."""
    path = tree.folder_dir(folder) / subdir / name
    path.write_bytes(data)
    return path


# -- modified UTF-7 (RFC 3501 §5.1.3) ------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("☺!", "&Jjo-!"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("Réunions", "R&AOk-unions"),
        ("𝄞", "&2DTdHg-"),
        ("", ""),
    ],
)
def test_mutf7_known_vectors(text: str, encoded: str) -> None:
    assert mutf7_encode(text) == encoded
    assert mutf7_decode(encoded) == text


@given(st.text())
def test_mutf7_round_trip_any_unicode(text: str) -> None:
    encoded = mutf7_encode(text)
    assert all("\x20" <= c <= "\x7e" for c in encoded)
    assert mutf7_decode(encoded) == text


@given(st.text(alphabet=st.sampled_from("&/.-,+~\\ aZ\u00e9\u4e2d\U0001f600\x00\x7f")))
def test_mutf7_round_trip_separators_and_astral(text: str) -> None:
    assert mutf7_decode(mutf7_encode(text)) == text


def test_mutf7_refuses_lone_surrogates() -> None:
    with pytest.raises(InvalidName):
        mutf7_encode("\udc00")


@pytest.mark.parametrize(
    "bad",
    [
        "&Jjo!",  # run never terminated (the RFC's own bad example)
        "&U,BTFw-&ZeVnLIqe-",  # two adjacent runs: not canonical
        "&AGE-",  # printable ASCII base64-encoded
        "&",
        "caf\u00e9",  # raw non-ASCII
        "&2DQ-",  # lone high surrogate
        "&Jj-",  # not whole UTF-16 units
        "&Jjp-",  # non-zero padding bits
        "a\x01",
    ],
)
def test_mutf7_rejects_invalid_and_non_canonical(bad: str) -> None:
    with pytest.raises(InvalidName):
        mutf7_decode(bad)


# -- folder names ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "maildirpp", "fs"),
    [
        ((), "", ""),
        (("Work", "Projects"), ".Work.Projects", "Work/Projects"),
        (("INBOX", "Sub"), ".INBOX.Sub", "INBOX/Sub"),
        (("v1.2",), ".v1\\2e2", "v1.2"),
        (("a/b",), ".a\\2fb", "a\\2fb"),
        ((".hidden",), ".\\2ehidden", "\\2ehidden"),
        (("~home",), ".\\7ehome", "\\7ehome"),
        (("back\\slash",), ".back\\5cslash", "back\\5cslash"),
        (("Réunions", "Tom & Jerry"), ".R&AOk-unions.Tom &- Jerry", "R&AOk-unions/Tom &- Jerry"),
    ],
)
def test_folder_dirnames(path: tuple[str, ...], maildirpp: str, fs: str) -> None:
    assert folder_dirname(path, "maildir++") == maildirpp
    assert folder_dirname(path, "fs") == fs
    assert folder_path(maildirpp, "maildir++") == path
    assert folder_path(fs, "fs") == path


segments = st.text(min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..") and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in s)
)


@given(st.lists(segments, min_size=1, max_size=4), st.sampled_from(LAYOUTS))
def test_folder_names_round_trip_and_stay_inside(path: list[str], layout: Layout) -> None:
    if path[0].casefold() == "inbox":
        return
    try:
        dirname = folder_dirname(path, layout)
    except InvalidName as exc:  # only length, or a LAYOUT=fs clash with cur/new/tmp etc.
        assert "bytes on disk" in str(exc) or (layout == "fs" and "collide" in str(exc))
        return
    assert folder_path(dirname, layout) == tuple(path)
    assert "\0" not in dirname
    components = [dirname] if layout == "maildir++" else dirname.split("/")
    assert all(c not in ("", ".", "..") for c in components)
    if layout == "maildir++":
        assert "/" not in dirname and dirname.startswith(".") and not dirname.startswith("..")
    else:
        assert not any(c.startswith(".") for c in components)


@pytest.mark.parametrize(
    ("path", "layout"),
    [
        (("",), "maildir++"),
        (("a", ""), "fs"),
        ((".",), "maildir++"),
        (("..",), "fs"),
        (("..", "other-account"), "maildir++"),
        (("a\0b",), "maildir++"),
        (("tab\there",), "fs"),
        (("del\x7f",), "maildir++"),
        (("c1\x85",), "fs"),
        (("lone\ud800",), "maildir++"),
        (("inbox",), "maildir++"),
        (("INBOX",), "fs"),
        (("Inbox", "Sub"), "maildir++"),
        (("cur",), "fs"),
        (("Work", "tmp"), "fs"),
        (("dovecot-keywords",), "fs"),
        (("Dovecot.index",), "fs"),
        (("x" * 300,), "fs"),
        (("x" * 200, "y" * 60), "maildir++"),
    ],
)
def test_hostile_names_refused(path: tuple[str, ...], layout: Layout) -> None:
    with pytest.raises(InvalidName):
        folder_dirname(path, layout)


def test_reserved_maildir_names_are_fine_in_maildirpp() -> None:
    assert folder_dirname(("tmp",), "maildir++") == ".tmp"


def test_without_escape_character_dots_are_refused_clearly() -> None:
    with pytest.raises(InvalidName, match="without an escape character"):
        folder_dirname(("v1.2",), "maildir++", escape_char=None)
    assert folder_dirname(("v1.2",), "fs", escape_char=None) == "v1.2"
    with pytest.raises(InvalidName):
        folder_dirname(("a/b",), "fs", escape_char=None)


@pytest.mark.parametrize(
    ("dirname", "layout"),
    [
        (".a\\2Eb", "maildir++"),  # upper-case hex: Dovecot writes lower case
        (".\\61", "maildir++"),  # needless escape
        (".&AGE-", "maildir++"),  # non-canonical modified UTF-7
        (".a..b", "maildir++"),  # empty segment
        ("..x", "maildir++"),
        (".a\\2", "maildir++"),  # truncated escape
        ("Work", "maildir++"),  # no leading dot
        ("INBOX", "fs"),  # INBOX's children's parent, not a folder
        ("a//b", "fs"),
    ],
)
def test_non_canonical_directories_are_no_folders(dirname: str, layout: Layout) -> None:
    with pytest.raises(InvalidName):
        folder_path(dirname, layout)


def test_message_names_are_checked() -> None:
    for bad in ["", ".hidden", "../x", "a/b", "a\0b"]:
        with pytest.raises(InvalidName):
            names.check_message_name(bad)


# -- flags -----------------------------------------------------------------------


def test_info_parse_and_format_sorted() -> None:
    parsed = mflags.parse_info("2,SbTaF")
    assert parsed.system == {"S", "T", "F"} and parsed.letters == {"a", "b"}
    assert parsed.deleted
    assert mflags.format_info(parsed) == "2,FSTab"
    assert mflags.parse_info(None) == mflags.MaildirFlags()
    assert mflags.parse_info("1,experimental") == mflags.MaildirFlags()
    assert mflags.split_name("123.M1P2Q3.host,S=5:2,S") == ("123.M1P2Q3.host,S=5", "2,S")
    assert mflags.split_name("123.M1P2Q3.host") == ("123.M1P2Q3.host", None)


def test_system_flags_map_both_ways_and_trashed_is_no_keyword() -> None:
    flags = mflags.parse_info("2,DFPRST")
    assert mflags.keywords_of(flags, {}) == {
        "$draft",
        "$flagged",
        "$forwarded",
        "$answered",
        "$seen",
    }
    system, others = mflags.split_keywords(
        ["$Seen", "$DRAFT", "$forwarded", "$answered", "$flagged", "Work"]
    )
    assert system == {"S", "D", "P", "R", "F"} and others == {"work"}


def test_keyword_letters_are_case_insensitive() -> None:
    names_by_letter = {"a": "Junk", "b": "junk", "c": "$Label1"}
    flags = mflags.parse_info("2,bc")
    assert mflags.keywords_of(flags, names_by_letter) == {"junk", "$label1"}
    table = keywords_file.KeywordTable(names_by_letter)
    assert table.letter_for("JUNK") == "a" and table.letter_for("$label1") == "c"


def test_keywords_file_parse_ignores_bad_lines() -> None:
    data = b"0 $Label1\n1 NonJunk\nbad line\n27 far\n1 again\n3 has space\n"
    assert keywords_file.parse(data) == {"a": "$Label1", "b": "NonJunk"}


# -- dovecot-keywords shared with Dovecot ------------------------------------------------


def test_dovecot_keywords_are_read_reused_and_extended(tree: MaildirTree) -> None:
    inbox = tree.folder_dir(())
    (inbox / "dovecot-keywords").write_text("0 $Label1\n2 NonJunk\n")
    drop(tree, (), "cur", "1.M1P1Q1.other:2,Sac")
    [entry] = tree.scan(()).entries.values()
    assert entry.keywords == {"$seen", "$label1", "nonjunk"}

    moved = tree.set_flags(entry.file, "S", ["$label1", "project-x", "NonJunk"])
    assert moved.name == "1.M1P1Q1.other:2,Sabc"
    assert (inbox / "dovecot-keywords").read_text() == "0 $Label1\n2 NonJunk\n1 project-x\n"
    assert tree.scan(()).entries[entry.base].keywords == {
        "$seen",
        "$label1",
        "nonjunk",
        "project-x",
    }


def test_letters_run_out_after_26_and_the_rest_is_unmapped(tree: MaildirTree) -> None:
    inbox = tree.folder_dir(())
    (inbox / "dovecot-keywords").write_text("".join(f"{i} kw{i}\n" for i in range(25)))
    message = tree.deliver((), MESSAGE, keywords=["kw3", "last", "one-more", "bad(atom"])
    assert message.unmapped == {"one-more", "bad(atom"}
    assert message.flags.letters == {"d", "z"}
    assert tree.keyword_table(()).names["z"] == "last"


def test_unknown_letters_and_flags_survive_a_flag_change(tree: MaildirTree) -> None:
    drop(tree, (), "cur", "2.M1P1Q1.other:2,SXq")
    [entry] = tree.scan(()).entries.values()
    assert entry.keywords == {"$seen"}
    moved = tree.set_flags(entry.file, "F")
    assert moved.name == "2.M1P1Q1.other:2,FXq"


def test_forwarded_letter_of_another_server_follows_p(tree: MaildirTree) -> None:
    (tree.folder_dir(()) / "dovecot-keywords").write_text("0 $Forwarded\n")
    drop(tree, (), "cur", "3.M1P1Q1.other:2,a")
    [entry] = tree.scan(()).entries.values()
    assert entry.keywords == {"$forwarded"}
    assert tree.set_flags(entry.file, keywords=["$forwarded"]).name.endswith(":2,Pa")
    assert tree.set_flags(entry.file, keywords=[]).name.endswith(":2,")


def test_keywords_lock_is_respected_and_stale_locks_broken(tmp_path: Path) -> None:
    tree = MaildirTree(tmp_path / "acct", lock_timeout=0.1, lock_stale=30)
    lock = tree.root / "dovecot-keywords.lock"
    lock.write_text("")
    with pytest.raises(LockTimeout):
        tree.deliver((), MESSAGE, keywords=["held"])
    old = time.time() - 60
    os.utime(lock, (old, old))
    assert tree.deliver((), MESSAGE, keywords=["held"]).flags.letters == {"a"}
    assert not lock.exists()


# -- tree operations -------------------------------------------------------------


def test_folders_create_rename_delete(tree: MaildirTree) -> None:
    tree.create_folder(["Work", "Projects"])
    tree.create_folder(["Work"])
    tree.create_folder(["INBOX", "Receipts"])
    tree.create_folder(["v1.2"])
    with pytest.raises(FolderExists):
        tree.create_folder(["Work"])
    assert set(tree.folders()) == {
        (),
        ("Work",),
        ("Work", "Projects"),
        ("INBOX", "Receipts"),
        ("v1.2",),
    }

    message = tree.deliver(["Work", "Projects"], MESSAGE)
    tree.rename_folder(["Work"], ["Job", "Old"])
    assert set(tree.folders()) == {
        (),
        ("Job", "Old"),
        ("Job", "Old", "Projects"),
        ("INBOX", "Receipts"),
        ("v1.2",),
    }
    moved = MessageFile(("Job", "Old", "Projects"), "cur", message.name)
    assert tree.read(moved) == MESSAGE
    with pytest.raises(InvalidName):
        tree.rename_folder(["Job"], ["Job", "Inner"])
    with pytest.raises(FolderExists):
        tree.rename_folder(["v1.2"], ["INBOX", "Receipts"])
    with pytest.raises(FolderNotFound):
        tree.rename_folder(["Nope"], ["Other"])

    with pytest.raises(FolderHasChildren):
        tree.delete_folder(["Job", "Old"])
    with pytest.raises(FolderNotEmpty):
        tree.delete_folder(["Job", "Old", "Projects"])
    assert tree.read(moved) == MESSAGE  # the refused delete left everything in place
    tree.remove(moved)
    tree.delete_folder(["Job", "Old", "Projects"])
    tree.delete_folder(["v1.2"])
    assert set(tree.folders()) == {(), ("Job", "Old"), ("INBOX", "Receipts")}
    with pytest.raises(InvalidName):
        tree.delete_folder(())


def test_a_half_made_folder_is_completed(tree: MaildirTree) -> None:
    """A crash inside create_folder leaves a directory without cur/: not a
    folder yet, and creating it again finishes the job."""
    half = tree.root / folder_dirname(["Half"], tree.layout)
    (half / "tmp").mkdir(parents=True)
    assert ("Half",) not in tree.folders()
    tree.create_folder(["Half"])
    assert ("Half",) in tree.folders() and (half / "new").is_dir()


def test_layout_on_disk(tmp_path: Path) -> None:
    plus = MaildirTree(tmp_path / "plus", "maildir++")
    fs = MaildirTree(tmp_path / "fs", "fs")
    for tree in (plus, fs):
        tree.create_folder(["Work", "Réunions"])
    assert (tmp_path / "plus/.Work.R&AOk-unions/cur").is_dir()
    assert (tmp_path / "plus/.Work.R&AOk-unions/maildirfolder").is_file()
    assert (tmp_path / "fs/Work/R&AOk-unions/cur").is_dir()
    assert not (tmp_path / "fs/Work/cur").exists()  # a plain parent, not a folder
    assert set(fs.folders()) == {(), ("Work", "Réunions")}


def test_delete_refuses_a_folder_that_got_mail_meanwhile(
    tree: MaildirTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree.create_folder(["Box"])
    real_rmdir = os.rmdir

    def deliver_first(path: os.PathLike[str] | str, *args: object, **kwargs: object) -> None:
        if str(path).endswith("cur"):  # another program delivers between the two rmdirs
            drop(tree, ("Box",), "cur", "9.M1P1Q1.other:2,")
        real_rmdir(path)

    monkeypatch.setattr(os, "rmdir", deliver_first)
    with pytest.raises(FolderNotEmpty):
        tree.delete_folder(["Box"])
    monkeypatch.undo()
    assert ("Box",) in tree.folders()
    assert len(tree.scan(["Box"]).entries) == 1


def test_deliver_read_flags_remove(tree: MaildirTree) -> None:
    received = 1_700_000_000.25
    message = tree.deliver((), MESSAGE, "S", ["$flagged", "Work"], received=received)
    assert message.subdir == "cur"
    assert message.name.endswith(":2,FSa") and f",S={len(MESSAGE)}" in message.base
    assert tree.read(message) == MESSAGE
    path = tree.folder_dir(()) / "cur" / message.name
    assert path.stat().st_mtime_ns == 1_700_000_000_250_000_000
    assert os.listdir(tree.folder_dir(()) / "tmp") == []

    other = tree.deliver((), MESSAGE)
    assert other.base != message.base and other.name.endswith(":2,")

    again = tree.set_flags(message, "T", ["work"])
    assert again.base == message.base and again.name.endswith(":2,Ta")
    [entry] = [e for e in tree.scan(()).entries.values() if e.base == message.base]
    assert entry.deleted and entry.keywords == {"work"}
    assert tree.read(message) == MESSAGE  # found again by its base name
    assert tree.remove(message) is True
    assert tree.remove(message) is False
    with pytest.raises(MessageGone):
        tree.read(message)
    with pytest.raises(ValueError):
        tree.deliver((), MESSAGE, "X")
    with pytest.raises(FolderNotFound):
        tree.deliver(["Missing"], MESSAGE)


def test_set_flags_moves_from_new_to_cur(tree: MaildirTree) -> None:
    drop(tree, (), "new", "5.M1P1Q1.mda")
    [entry] = tree.scan(()).entries.values()
    assert entry.subdir == "new" and entry.keywords == frozenset()
    moved = tree.set_flags(entry.file, "S")
    assert (moved.subdir, moved.name) == ("cur", "5.M1P1Q1.mda:2,S")
    assert not (tree.folder_dir(()) / "new" / "5.M1P1Q1.mda").exists()


def test_set_flags_after_another_program_renamed_the_file(tree: MaildirTree) -> None:
    message = tree.deliver((), MESSAGE, "S")
    cur = tree.folder_dir(()) / "cur"
    os.rename(cur / message.name, cur / f"{message.base}:2,RS")
    moved = tree.set_flags(message, "F")
    assert os.listdir(cur) == [f"{message.base}:2,F"] and moved.name == f"{message.base}:2,F"


def test_subscriptions_v1_and_v2(tree: MaildirTree) -> None:
    tree.create_folder(["Work", "Sub"])
    tree.subscribe(["Work", "Sub"])
    tree.subscribe(())
    assert tree.subscriptions() == {(), ("Work", "Sub")}
    sep = "." if tree.layout == "maildir++" else "/"
    assert (tree.root / "subscriptions").read_text() == f"Work{sep}Sub\nINBOX\n"
    tree.subscribe(["Work", "Sub"], False)
    assert tree.subscriptions() == {()}

    (tree.root / "subscriptions").write_text("V\t2\n\nINBOX\nWork\tSub\nodd\x01tname\n")
    assert tree.subscriptions() == {(), ("Work", "Sub")}
    tree.set_subscriptions([("Work", "Sub"), ("Other",)])
    assert (tree.root / "subscriptions").read_text() == "V\t2\n\nWork\tSub\nodd\x01tname\nOther\n"


@settings(max_examples=25, deadline=None)
@given(st.lists(segments, min_size=1, max_size=3))
def test_created_folders_are_listed_under_their_name(
    tmp_path_factory: pytest.TempPathFactory, path: list[str]
) -> None:
    if path[0].casefold() == "inbox":
        return
    tree = MaildirTree(tmp_path_factory.mktemp("names") / "acct")
    try:
        tree.create_folder(path)
    except InvalidName:
        return
    assert tuple(path) in tree.folders()


# -- hard links --------------------------------------------------------------------


def test_link_is_the_same_inode_in_two_folders(tree: MaildirTree) -> None:
    tree.create_folder(["Archive"])
    message = tree.deliver((), MESSAGE, "S", ["Work"])
    linked = tree.link(message, ["Archive"])
    assert linked.folder == ("Archive",) and linked.base != message.base
    assert tree.read(linked) == MESSAGE
    [a] = tree.scan(()).entries.values()
    [b] = tree.scan(["Archive"]).entries.values()
    assert a.link_id == b.link_id
    assert b.keywords == {"$seen", "work"}  # letters translated to Archive's own table
    assert os.stat(tree.folder_dir(()) / "cur" / message.name).st_nlink == 2
    tree.remove(message)
    assert tree.read(linked) == MESSAGE


def test_link_falls_back_to_a_copy(tree: MaildirTree, monkeypatch: pytest.MonkeyPatch) -> None:
    tree.create_folder(["Other"])
    message = tree.deliver((), MESSAGE, "F", received=1_600_000_000)

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    copied = tree.link(message, ["Other"])
    monkeypatch.undo()
    [a] = tree.scan(()).entries.values()
    [b] = tree.scan(["Other"]).entries.values()
    assert a.link_id != b.link_id
    assert tree.read(copied) == MESSAGE and b.keywords == {"$flagged"}
    assert b.mtime_ns == a.mtime_ns  # the received date travels with the copy
    assert os.listdir(tree.folder_dir(["Other"]) / "tmp") == []


# -- external changes ---------------------------------------------------------------


def test_external_changes_are_reported_exactly(tree: MaildirTree) -> None:
    keep = tree.deliver((), MESSAGE, "S")
    doomed = tree.deliver((), MESSAGE)
    flagged = tree.deliver((), MESSAGE)
    drop(tree, (), "new", "7.M1P1Q1.mda")
    settle(tree.root)
    before = tree.scan(())
    assert len(before.entries) == 4

    inbox = tree.folder_dir(())
    drop(tree, (), "new", "8.M1P1Q1.mda")  # a delivery agent
    os.rename(
        inbox / "new" / "7.M1P1Q1.mda", inbox / "cur" / "7.M1P1Q1.mda:2,RS"
    )  # IMAP server reads it
    os.rename(inbox / "cur" / flagged.name, inbox / "cur" / f"{flagged.base}:2,F")  # flags changed
    os.unlink(inbox / "cur" / doomed.name)  # deleted by a user

    changes = tree.changes_since((), before)
    assert [e.base for e in changes.added] == ["8.M1P1Q1.mda"]
    assert [e.base for e in changes.removed] == [doomed.base]
    assert {c.new.base for c in changes.changed} == {"7.M1P1Q1.mda", flagged.base}
    [moved] = changes.moved_to_cur
    assert moved.new.base == "7.M1P1Q1.mda" and moved.new.keywords == {"$answered", "$seen"}
    assert {c.new.base: c.new.keywords for c in changes.flags_changed} == {
        "7.M1P1Q1.mda": {"$answered", "$seen"},
        flagged.base: {"$flagged"},
    }
    assert keep.base in changes.scan.entries and set(changes.listed) == {"new", "cur"}


def test_nothing_changed_costs_no_listing(
    tree: MaildirTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree.create_folder(["Work"])
    for _ in range(3):
        tree.deliver(["Work"], MESSAGE, "S", ["k"])
    settle(tree.root)
    scan = tree.scan(["Work"])
    listing = tree.list_folders()
    calls: list[object] = []
    real_scandir = os.scandir

    def counting(path: object = ".") -> object:
        calls.append(path)
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", counting)
    changes = tree.changes_since(["Work"], scan)
    assert not changes and changes.listed == () and changes.scan is scan
    assert not tree.folder_changes_since(listing)
    assert tree.is_unchanged(["Work"], scan.stamp.token())
    assert calls == []

    tree.deliver(["Work"], MESSAGE)
    changes = tree.changes_since(["Work"], scan)
    assert len(changes.added) == 1 and changes.listed == ("cur",)  # new/ was not listed
    assert len(calls) == 1


def test_a_listing_taken_in_the_same_second_is_not_trusted(tree: MaildirTree) -> None:
    """mtime granularity: a change in the same tick as the listed mtime
    leaves it unchanged, so a fresh directory is listed again."""
    drop(tree, (), "new", "1.M1P1Q1.mda")
    new_dir = tree.folder_dir(()) / "new"
    scan = tree.scan(())
    assert scan.stamp.new is not None and not scan.stamp.new.settled
    recorded = new_dir.stat().st_mtime_ns
    drop(tree, (), "new", "2.M1P1Q1.mda")
    os.utime(new_dir, ns=(recorded, recorded))  # as if both landed in one tick
    changes = tree.changes_since((), scan)
    assert [e.base for e in changes.added] == ["2.M1P1Q1.mda"]


def _summary(changes: FolderChanges) -> tuple[object, ...]:
    names = lambda entries: sorted((e.subdir, e.name, e.ino) for e in entries)  # noqa: E731
    return (
        names(changes.added),
        names(changes.removed),
        sorted((c.old.name, c.new.subdir, c.new.name) for c in changes.changed),
        {b: (e.subdir, e.name, e.keywords, e.ino, e.size) for b, e in changes.scan.entries.items()},
        changes.scan.duplicates,
    )


def test_a_second_listing_reads_only_what_came_or_went(
    tree: MaildirTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 4 (cheap incremental scans): listing a changed folder again
    parses and stats only the names that are new, and reports exactly what
    a full listing of the same directory reports."""
    kept = [tree.deliver((), MESSAGE, "S") for _ in range(30)]
    renamed, doomed, replaced = kept[0], kept[1], kept[2]
    drop(tree, (), "new", "7.M1P1Q1.mda")
    settle(tree.root)
    before = tree.scan(())
    assert set(before.files) == {"new", "cur"} and len(before.files["cur"]) == 30
    inbox = tree.folder_dir(())
    drop(tree, (), "new", "8.M1P1Q1.mda")  # a delivery agent
    os.rename(inbox / "new" / "7.M1P1Q1.mda", inbox / "cur" / "7.M1P1Q1.mda:2,RS")  # IMAP server
    os.rename(inbox / "cur" / renamed.name, inbox / "cur" / f"{renamed.base}:2,F")  # flag change
    os.unlink(inbox / "cur" / doomed.name)
    old_inode = (inbox / "cur" / replaced.name).stat().st_ino
    other = drop(tree, (), "tmp", "other", b"Subject: other\r\n\r\nnew\r\n")
    os.rename(other, inbox / "cur" / replaced.name)  # the same name, another file
    assert (inbox / "cur" / replaced.name).stat().st_ino != old_inode
    drop(tree, (), "cur", ".hidden")
    os.mkdir(inbox / "cur" / "a-directory")

    from jmap_maildir import scan as scan_module

    parsed: list[str] = []
    real_parse = scan_module.parse_info

    def counting(info: str) -> object:
        parsed.append(info)
        return real_parse(info)

    monkeypatch.setattr(scan_module, "parse_info", counting)
    delta = tree.changes_since((), before)
    assert len(parsed) == 4  # the four new message names, not the 26 kept files
    parsed.clear()
    full = tree.changes_since((), replace(before, files={}))  # the full pass
    assert len(parsed) == 31  # every message file
    monkeypatch.undo()
    assert _summary(delta) == _summary(full)
    assert sorted(e.base for e in delta.added) == sorted([replaced.base, "8.M1P1Q1.mda"])
    assert {e.base for e in delta.removed} == {doomed.base, replaced.base}
    assert {c.new.base for c in delta.changed} == {"7.M1P1Q1.mda", renamed.base}

    # Two files of one base (cur/ wins): the full pass decides, the same way.
    drop(tree, (), "new", f"{kept[4].base}")
    again = tree.changes_since((), delta.scan)
    assert _summary(again) == _summary(tree.changes_since((), replace(delta.scan, files={})))
    assert again.scan.duplicates == (kept[4].base,) and not again


def test_keywords_file_change_is_noticed(tree: MaildirTree) -> None:
    drop(tree, (), "cur", "1.M1P1Q1.other:2,a")
    settle(tree.root)
    scan = tree.scan(())
    (tree.folder_dir(()) / "dovecot-keywords").write_text("0 $Label2\n")
    changes = tree.changes_since((), scan)
    [change] = changes.flags_changed
    assert change.new.keywords == {"$label2"} and changes.listed == ()


def test_folder_renamed_by_hand(tree: MaildirTree) -> None:
    tree.create_folder(["Work"])
    tree.create_folder(["Keep"])
    settle(tree.root)
    listing = tree.list_folders()
    work = tree.scan(["Work"])
    old = tree.folder_dir(["Work"])
    os.rename(old, old.with_name(folder_dirname(["Job"], tree.layout)))
    changes = tree.folder_changes_since(listing)
    [(before, after)] = changes.renamed
    assert (before.path, after.path) == (("Work",), ("Job",))
    assert not changes.added and not changes.removed
    with pytest.raises(FolderNotFound):
        tree.changes_since(["Work"], work)

    tree.create_folder(["Fresh"])
    tree.delete_folder(["Keep"])
    changes = tree.folder_changes_since(changes.listing)
    assert [f.path for f in changes.added] == [("Fresh",)]
    assert [f.path for f in changes.removed] == [("Keep",)]


def test_stamp_token_round_trip(tree: MaildirTree) -> None:
    stamp = tree.stamp(())
    assert FolderStamp.from_token(stamp.token()) == stamp


# -- symlinks and accounts --------------------------------------------------------


def test_symlinks_never_lead_out_of_the_tree(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "cur").mkdir(parents=True)
    (outside / "new").mkdir()
    (outside / "secret").write_text("other account")
    tree = MaildirTree(tmp_path / "acct")
    os.symlink(outside, tree.root / ".Evil")
    assert ("Evil",) not in tree.folders()
    with pytest.raises(UnsafePath):
        tree.scan(["Evil"])
    with pytest.raises(UnsafePath):
        tree.deliver(["Evil"], MESSAGE)
    with pytest.raises(UnsafePath):
        tree.folder_dir(["Evil"])
    fs_tree = MaildirTree(tmp_path / "fs-acct", "fs")
    os.symlink(outside, fs_tree.root / "Evil")
    with pytest.raises(UnsafePath):
        fs_tree.create_folder(["Evil", "Sub"])
    assert not (outside / "Sub").exists()

    tree.create_folder(["Box"])
    box = tree.folder_dir(["Box"])
    os.rmdir(box / "new")
    os.symlink(outside / "new", box / "new")
    (outside / "new" / "1.M1P1Q1.bait").write_text("not yours")
    with pytest.raises(UnsafePath):
        tree.scan(["Box"])  # a symlinked new/ is refused, never listed
    with pytest.raises(UnsafePath):
        tree.read(MessageFile(("Box",), "new", "1.M1P1Q1.bait"))

    os.symlink(outside / "secret", tree.root / "cur" / "1.M1P1Q1.x:2,S")
    assert tree.scan(()).entries == {}
    with pytest.raises(UnsafePath):
        tree.read(MessageFile((), "cur", "1.M1P1Q1.x:2,S"))
    os.symlink(outside / "secret", tree.root / "dovecot-keywords")
    assert tree.keyword_table(()).names == {}
    for bad in ["../secret", "../../outside/secret", "a/b"]:
        with pytest.raises(InvalidName):
            tree.read(MessageFile((), "cur", bad))
    with pytest.raises(InvalidName):
        tree.read(MessageFile(("..", "outside"), "cur", "x"))
    assert (outside / "secret").read_text() == "other account"


def test_one_account_cannot_reach_another(tmp_path: Path) -> None:
    alice = MaildirTree(tmp_path / "alice")
    bob = MaildirTree(tmp_path / "bob")
    message = alice.deliver((), MESSAGE)
    with pytest.raises(MessageGone):
        bob.read(message)  # resolved inside bob's root, where it is not
    assert bob.remove(message) is False
    assert alice.read(message) == MESSAGE


# -- recovery and crash safety -------------------------------------------------------


def test_recover_cleans_tmp_and_locks(tmp_path: Path) -> None:
    tree = MaildirTree(tmp_path / "acct", host="testhost")
    tmp = tree.root / "tmp"
    dead_pid = _dead_pid()
    (tmp / f"1.M1P{dead_pid}Q1.testhost,S=3").write_bytes(b"abc")  # ours, writer gone
    (tmp / f"1.M1P{os.getpid()}Q9.testhost,S=3").write_bytes(b"abc")  # ours, in flight
    (tmp / "1.M1P1Q1.elsewhere").write_bytes(b"abc")  # another writer's, fresh
    old = tmp / "2.M1P1Q1.elsewhere"
    old.write_bytes(b"abc")
    ancient = time.time() - 37 * 3600
    os.utime(old, (ancient, ancient))
    lock = tree.root / "dovecot-keywords.lock"
    lock.write_text("")
    os.utime(lock, (ancient, ancient))
    os.rmdir(tree.root / "new")

    report = tree.recover()
    assert sorted(report.removed_tmp) == sorted(
        [f"tmp/1.M1P{dead_pid}Q1.testhost,S=3", "tmp/2.M1P1Q1.elsewhere"]
    )
    assert report.removed_locks == ("dovecot-keywords.lock",)
    assert report.repaired == ((),)
    assert sorted(os.listdir(tmp)) == sorted(
        [f"1.M1P{os.getpid()}Q9.testhost,S=3", "1.M1P1Q1.elsewhere"]
    )
    assert tree.recover(max_age=0).removed_tmp and os.listdir(tmp) == []


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


KEYWORD_POOL = [f"kw{i}" for i in range(32)] + ["$seen", "$flagged", "$answered"]
CHECK = b"\r\nX-Check: "


def checked_message(rng: random.Random, n: int) -> bytes:
    """A message whose last line carries its own length and hash."""
    lines = [f"line {i} {rng.getrandbits(64):x}".encode() for i in range(rng.randrange(1, 400))]
    head = f"Subject: crash test {n}\r\n\r\n".encode() + b"\r\n".join(lines)
    return head + CHECK + f"{len(head)} {hashlib.sha256(head).hexdigest()}\r\n".encode()


def is_whole(data: bytes) -> bool:
    head, sep, tail = data.rpartition(CHECK)
    if not sep or not tail.endswith(b"\r\n"):
        return False
    length, digest = tail[:-2].decode().split(" ")
    return int(length) == len(head) and hashlib.sha256(head).hexdigest() == digest


def crash_worker(root: Path, layout: Layout, seed: int) -> None:
    """Runs in a forked child until it is killed."""
    rng = random.Random(seed)
    tree = MaildirTree(root, layout, create=False, host="crashhost", lock_timeout=5)
    folders = [(), ("A",), ("B",)]
    known = [e.file for f in folders for e in tree.scan(f).entries.values()]
    n = 0
    while True:
        n += 1
        roll = rng.random()
        try:
            if roll < 0.4 and len(known) < 120 or not known:
                keywords = rng.sample(KEYWORD_POOL, rng.randrange(4))
                known.append(
                    tree.deliver(
                        rng.choice(folders),
                        checked_message(rng, n),
                        rng.choice(["", "S", "FR"]),
                        keywords,
                    )
                )
            elif roll < 0.65:
                i = rng.randrange(len(known))
                known[i] = tree.set_flags(
                    known[i], rng.choice(["", "S", "T"]), rng.sample(KEYWORD_POOL, rng.randrange(4))
                )
            elif roll < 0.85:
                known.append(tree.link(rng.choice(known), rng.choice(folders)))
            else:
                tree.remove(known.pop(rng.randrange(len(known))))
        except MessageGone:
            continue


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


def check_tree(tree: MaildirTree) -> int:
    """No message file is partial; every dovecot-keywords file is whole."""
    count = 0
    for folder in tree.folders().values():
        directory = tree.root / folder.relpath
        for subdir in ("new", "cur"):
            for name in os.listdir(directory / subdir):
                assert is_whole((directory / subdir / name).read_bytes()), (
                    f"partial {subdir}/{name}"
                )
                count += 1
        keywords = directory / "dovecot-keywords"
        if keywords.exists():
            lines = keywords.read_text().splitlines()
            assert len(keywords_file.parse(keywords.read_bytes())) == len(lines)
    return count


@pytest.mark.parametrize("layout", LAYOUTS)
def test_killed_writer_never_leaves_half_a_message(tmp_path: Path, layout: Layout) -> None:
    """30 children doing deliver/set_flags/link/remove, each SIGKILLed after
    a random 0-20 ms; after each kill the tree holds only whole messages,
    and recover() removes every tmp/ leftover and lock."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "untouched.txt").write_text("not part of any tree")
    before_outside = snapshot(outside)
    tree = MaildirTree(tmp_path / "acct", layout, host="crashhost", lock_stale=0)
    tree.create_folder(["A"])
    tree.create_folder(["B"])
    messages = 0
    for round_ in range(30):
        pid = os.fork()
        if pid == 0:
            try:
                crash_worker(tree.root, layout, seed + round_)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0, 0.02))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f"worker failed before the kill (seed {seed})"
        messages = check_tree(tree)
        tree.recover()  # tmp/ files of dead writers go at once, stale locks too
        for folder in tree.folders().values():
            directory = tree.root / folder.relpath
            assert os.listdir(directory / "tmp") == [], f"seed {seed}"
            assert not (directory / "dovecot-keywords.lock").exists()
    assert messages > 0, f"no operation ever completed (seed {seed})"
    assert snapshot(outside) == before_outside
    assert sorted(os.listdir(tmp_path)) == ["acct", "outside"]
    assert all(
        stat.S_ISDIR(os.lstat(tree.root / f.relpath).st_mode) for f in tree.folders().values()
    )
