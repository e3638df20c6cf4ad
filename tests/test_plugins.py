"""The plugin API: a third-party plugin is found through the same entry-point
group as the built-in ones and gets the six standard methods from its type."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jmapcore import Core
from jmapcore.accounts import add_account, principal_for
from jmapcore.registry import Method, Plugin, Registry
from jmapcore.testing.client import Client
from jmapcore.testing.memory import MemoryBackend

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def installed_notes_plugin(tmp_path, monkeypatch):
    """Install examples/notes_plugin.py as a distribution with an entry point."""
    dist = tmp_path / "notes_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: notes-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text('[jmapcore.plugins]\nnotes = notes_plugin:plugin\n')
    (tmp_path / "notes_plugin.py").write_text((EXAMPLES / "notes_plugin.py").read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "notes_plugin", raising=False)
    return "https://example.com/jmap/notes"


def test_entry_point_discovery_and_standard_methods(installed_notes_plugin):
    registry = Registry.from_entry_points()
    assert installed_notes_plugin in registry.plugins
    assert {"Core/echo", "Blob/copy"} <= set(registry.methods), "built-ins come through the same group"
    expected = {f"Note/{verb}" for verb in ("get", "changes", "set", "copy", "query", "queryChanges")}
    assert expected <= set(registry.methods)
    core = Core(MemoryBackend(), registry)
    add_account(core, "carol", "pw")
    client = Client(core, principal_for(core, "carol"), using=[installed_notes_plugin])
    created = client.call("Note/set", {"accountId": client.account_id, "create": {"n": {"title": "from a plugin"}}})
    note_id = created["created"]["n"]["id"]
    query = client.call("Note/query", {"accountId": client.account_id, "filter": {"text": "plugin"}})
    assert query["ids"] == [note_id]
    session = core.session(client.principal, "http://localhost")
    assert session["capabilities"][installed_notes_plugin] == {"maxNoteLength": 100_000}


def test_plugin_with_custom_method_and_account_hook():
    """A plugin can add its own methods and set up new accounts."""
    seen = []

    def hello(ctx, args):
        ctx.account(args["accountId"], "urn:x:hello")
        return {"greeting": f"hello {ctx.principal.name}"}

    plugin = Plugin(
        capability="urn:x:hello",
        methods=[Method("Hello/say", hello, capability="urn:x:hello")],
        on_account_created=lambda core, account: seen.append(account.name),
    )
    core = Core(MemoryBackend(), Registry.from_entry_points([plugin]))
    add_account(core, "dave", "pw")
    assert seen == ["dave"]
    client = Client(core, principal_for(core, "dave"), using=["urn:x:hello"])
    assert client.call("Hello/say", {"accountId": client.account_id}) == {"greeting": "hello dave"}


def test_duplicate_registration_is_refused():
    registry = Registry()
    registry.add(Plugin(capability="urn:x:a"))
    with pytest.raises(ValueError):
        registry.add(Plugin(capability="urn:x:a"))
