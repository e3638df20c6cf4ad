"""The Maildir file layer (issue 4): folder names in modified UTF-7
(RFC 3501 §5.1.3) for Maildir++ and LAYOUT=fs, and flags <-> keywords."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

try:
    import jmap_maildir  # noqa: F401
except ImportError:  # an editable install made before the package existed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "backends"))

from jmap_maildir import (
    InvalidName,
    Layout,
    folder_dirname,
    folder_path,
    keywords_file,
    mutf7_decode,
    mutf7_encode,
    names,
)
from jmap_maildir import flags as mflags

LAYOUTS = ["maildir++", "fs"]


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
