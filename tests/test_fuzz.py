"""Property-based tests: no input makes the core raise, answer 5xx, or fail a method
with serverFail ([core-8.4-jsonParsing], [core-3.6.2-shape])."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jmapcore import Core
from jmapcore.accounts import add_account, principal_for
from jmapcore.registry import Registry
from jmapcore.testing.memory import MemoryBackend
from jmapcore.wire import CORE
from tests.conftest import NOTES, notes_plugin


@pytest.fixture(scope="module")
def fuzz_core():
    core = Core(MemoryBackend(), Registry.from_entry_points([notes_plugin.plugin]))
    add_account(core, "fuzz", "pw")
    return core, principal_for(core, "fuzz")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)
ARG_NAMES = ["accountId", "ids", "properties", "sinceState", "maxChanges", "create", "update", "destroy",
             "ifInState", "filter", "sort", "position", "anchor", "anchorOffset", "limit", "calculateTotal",
             "sinceQueryState", "upToId", "fromAccountId", "blobIds", "onSuccessDestroyOriginal", "#ids"]
METHODS = ["Core/echo", "Blob/copy", "Note/get", "Note/changes", "Note/set", "Note/copy", "Note/query",
           "Note/queryChanges", "Nope/get"]


def _arguments(account_id: str):
    value = json_values | st.just(account_id) | st.just({"resultOf": "c0", "name": "Note/query", "path": "/ids"})
    return st.dictionaries(st.sampled_from(ARG_NAMES), value, max_size=6).map(
        lambda args: {"accountId": account_id, **args} if "accountId" not in args else args
    )


def _check(core, principal, body: bytes) -> None:
    result = core.api(principal, body, "application/json")
    assert result.status in (200, 400), result
    decoded = msgspec.json.decode(result.body)
    if result.status == 200:
        for name, args, _ in decoded["methodResponses"]:
            assert not (name == "error" and args["type"] == "serverFail"), (body, args)
    else:
        assert decoded["type"].startswith("urn:ietf:params:jmap:error:")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes(fuzz_core, body):
    core, principal = fuzz_core
    _check(core, principal, body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=json_values)
def test_arbitrary_json(fuzz_core, document):
    core, principal = fuzz_core
    _check(core, principal, msgspec.json.encode(document))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_arbitrary_method_calls(fuzz_core, data):
    core, principal = fuzz_core
    account_id = principal.account_ids[0]
    calls = data.draw(
        st.lists(
            st.tuples(st.sampled_from(METHODS), _arguments(account_id), st.sampled_from(["c0", "c1", "c2"])).map(list),
            max_size=4,
        )
    )
    using = data.draw(st.sampled_from([[CORE], [CORE, NOTES]]))
    _check(core, principal, msgspec.json.encode({"using": using, "methodCalls": calls}))


def test_undecodable_text_in_a_response_becomes_a_replacement_character():
    """A string holding a lone surrogate (octets of a message that did not
    decode) must not fail the whole response: it becomes U+FFFD."""
    from jmapcore.registry import Method, Plugin

    uri = "urn:example:surrogate"
    plugin = Plugin(
        capability=uri,
        methods=[Method("Odd/get", lambda ctx, args: {"subject": "caf\udce9"}, capability=uri)],
    )
    core = Core(MemoryBackend(), Registry.from_entry_points([plugin]))
    add_account(core, "eve", "pw")
    result = core.api(principal_for(core, "eve"), msgspec.json.encode(
        {"using": [CORE, uri], "methodCalls": [["Odd/get", {}, "0"]]}
    ))
    assert result.status == 200
    [[name, arguments, _]] = msgspec.json.decode(result.body)["methodResponses"]
    assert (name, arguments) == ("Odd/get", {"subject": "caf\ufffd"})
