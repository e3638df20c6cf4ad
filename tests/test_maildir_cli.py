"""The ``jmapcore account`` commands on the maildir backend: ``--maildir-root``
adopts an existing tree, and ``account rebuild`` re-adopts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from jmapcore.accounts import principal_for
from jmapcore.testing.client import Client
from jmapserver.cli import main
from jmapserver.config import Settings
from jmapserver.wiring import build_core
from tests.mailhelpers import USING, mailboxes, message

jmap_maildir = pytest.importorskip("jmap_maildir")


def _subjects(client: Client) -> dict[str, dict[str, bool]]:
    ids = client.call("Email/query", {"accountId": client.account_id}, using=USING)["ids"]
    got = client.call("Email/get", {"accountId": client.account_id, "ids": ids, "properties": ["subject", "keywords"]}, using=USING)
    return {e["subject"]: e["keywords"] for e in got["list"]}


def test_account_add_adopts_the_maildir_root_and_rebuild(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mail_root = tmp_path / "mail"
    existing = jmap_maildir.MaildirTree(mail_root / "lea")
    existing.create_folder(("Projects",))
    existing.deliver((), message("old inbox mail"), keywords=["$seen"])
    existing.deliver(("Projects",), message("plans"), keywords=["$flagged"])
    data = tmp_path / "data"
    common = ["--data", str(data), "--backend", "maildir", "--maildir-root", str(mail_root / "%u")]

    assert main(["account", "add", "lea", "--password", "pw", *common]) == 0
    account_id = capsys.readouterr().out.strip()
    settings = Settings(data=data, backend="maildir", maildir_root=mail_root / "%u")
    core = build_core(settings)
    try:
        client = Client(core, principal_for(core, "lea"), using=USING)
        assert client.account_id == account_id
        assert _subjects(client) == {"old inbox mail": {"$seen": True}, "plans": {"$flagged": True}}
        assert mailboxes(client)["inbox"]["totalEmails"] == 1
        state = client.call("Email/get", {"accountId": account_id, "ids": []}, using=USING)["state"]
    finally:
        core.close()
    assert not (data / "maildir").exists()  # the tree named by --maildir-root, not the default

    assert main(["account", "rebuild", "lea", *common]) == 0
    assert "lea (" in capsys.readouterr().out
    core = build_core(settings)
    try:
        client = Client(core, principal_for(core, "lea"), using=USING)
        assert _subjects(client) == {"old inbox mail": {"$seen": True}, "plans": {"$flagged": True}}
        error = client.error("Email/changes", {"accountId": account_id, "sinceState": state}, using=USING)
        assert error["type"] == "cannotCalculateChanges"
    finally:
        core.close()

    assert main(["account", "rebuild", "nobody", *common]) == 1
    assert "no account named 'nobody'" in capsys.readouterr().err
    assert main(["account", "add", "lea", "--password", "pw", "--data", str(tmp_path / "lmdb")]) == 0
    assert main(["account", "rebuild", "lea", "--data", str(tmp_path / "lmdb")]) == 1
    assert "maildir" in capsys.readouterr().err
