"""PushSubscription/get and PushSubscription/set (RFC 8620 §7.2).

Neither takes an ``accountId`` nor has a state [core-7.2.1-get]
[core-7.2.2-set]: a subscription belongs to the principal and the credential
that made it (stored as described in :mod:`.push_store`).  ``url`` and
``keys`` are never returned, and asking for them is ``forbidden``; they and
``deviceClientId`` are immutable.  A create must leave ``verificationCode``
null; the server makes a code, and the delivery job POSTs it in a
PushVerification at once; nothing else is sent until the client sets that
code [core-7.2-verifyFirst].  ``expires`` is clamped to at most
:data:`MAX_LIFETIME` from now (also the default) [core-7.2-expires].
Subscriptions per user are capped and their creation rate-limited
[core-8.6-limits] (``overQuota``, ``rateLimit``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from jmapcore.context import CallContext, new_id
from jmapcore.errors import MethodError, SetError
from jmapcore.push import PushFeed
from jmapcore.standard.args import Args
from jmapcore.storage import Destroy, Put, Record, StateConflict, WriteBatch
from jmapcore.wire import Id, IdOrRef

from . import push_store as store
from .push_policy import PushPolicy, UrlRefused

#: The default and the cap of ``expires``: 7 days (the RFC wants a cap of
#: at least 48 hours, better 7 days, for credentials that do not expire).
MAX_LIFETIME = 7 * 24 * 3600
CREATE_PROPERTIES = frozenset(
    {"deviceClientId", "url", "keys", "verificationCode", "expires", "types"}
)
MUTABLE = frozenset({"verificationCode", "expires", "types"})
IMMUTABLE = frozenset({"id", "deviceClientId", "url", "keys"})


class PushGetArgs(Args, kw_only=True):
    ids: list[IdOrRef] | None = None
    properties: list[str] | None = None


class PushSetArgs(Args, kw_only=True):
    create: dict[Id, dict[str, Any]] | None = None
    update: dict[IdOrRef, dict[str, Any]] | None = None
    destroy: list[IdOrRef] | None = None


def policy_of(ctx_or_core: Any) -> PushPolicy:
    core = getattr(ctx_or_core, "core", ctx_or_core)
    cached = getattr(core, "_push_policy", None)
    if cached is None:
        cached = PushPolicy.from_options(core.options.get("push"))
        core._push_policy = cached
    return cached


def utc_date(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc_date(value: Any) -> float | None:
    """Seconds of a UTCDate ([core-1.4-date]: ends in Z), or None."""
    if not isinstance(value, str) or not value.endswith("Z") or len(value) > 40:
        return None
    try:
        return datetime.fromisoformat(value[:-1] + "+00:00").timestamp()
    except ValueError:
        return None


def _clamp_expires(value: Any, now: float) -> tuple[str | None, SetError | None]:
    """The expiry to store for a requested one [core-7.2-expires]."""
    cap = now + MAX_LIFETIME
    if value is None:
        return utc_date(cap), None
    seconds = parse_utc_date(value)
    if seconds is None:
        return None, SetError.invalid_properties(["expires"], "expires must be a UTCDate or null.")
    if seconds <= now:
        return None, SetError.invalid_properties(["expires"], "expires is in the past.")
    return utc_date(min(seconds, cap)), None


def _b64url(value: Any) -> bytes | None:
    if not isinstance(value, str) or len(value) > 200:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


def _check_keys(keys: Any) -> str | None:
    """Why ``keys`` cannot be used for RFC 8291 encryption, or None."""
    if keys is None:
        return None
    if not isinstance(keys, dict) or set(keys) != {"p256dh", "auth"}:
        return "keys must be null or {p256dh, auth}."
    public = _b64url(keys["p256dh"])
    auth = _b64url(keys["auth"])
    if auth is None or len(auth) != 16:
        return "keys/auth must be 16 octets, base64url-encoded."
    if public is None or len(public) != 65 or public[0] != 4:
        return "keys/p256dh must be an uncompressed P-256 point, base64url-encoded."
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    except ValueError:
        return "keys/p256dh is not a point on P-256."
    return None


def _check_types(ctx: CallContext, types: Any) -> SetError | None:
    """[core-7.2-typesFilter] null, or names of push types this server has."""
    if types is None:
        return None
    known = set(ctx.registry.push_types())
    if not isinstance(types, list) or not all(isinstance(t, str) and t in known for t in types):
        return SetError.invalid_properties(["types"], "types must be null or a list of known type names.")
    return None


def _apply_code(current: Record, new: Record, code: Any) -> SetError | None:
    """[core-7.2-verifyFirst] the client sets the code it was pushed; a
    wrong one is invalidProperties.  The right one verifies the
    subscription and cancels the verification push if still pending."""
    if code is None:
        if current.get("verified"):
            return SetError.invalid_properties(["verificationCode"], "A verified subscription keeps its code.")
        return None
    expected = str(current.get("code", "")).encode("utf-8")
    if not isinstance(code, str) or not hmac.compare_digest(code.encode("utf-8", "surrogatepass"), expected):
        return SetError.invalid_properties(["verificationCode"], "That is not the code that was pushed.")
    new["verificationCode"] = code
    if not current.get("verified"):
        new["verified"] = True
        pending = current.get("pending")
        if pending is not None and pending.get("kind") == "verify":
            new["pending"] = None
    return None


# -- /get ---------------------------------------------------------------------


def push_get(ctx: CallContext, args: PushGetArgs) -> dict[str, Any]:
    """[core-7.2.1-get] no accountId, no state; url and keys are ``forbidden``."""
    if args.properties is None:
        properties = list(store.PUBLIC_PROPERTIES)
    else:
        secret = [p for p in args.properties if p in store.SECRET_PROPERTIES]
        if secret:
            raise MethodError("forbidden", f"{', '.join(secret)} cannot be read back.")
        unknown = [p for p in args.properties if p not in store.PUBLIC_PROPERTIES]
        if unknown:
            raise MethodError.invalid_arguments(f"Unknown properties: {', '.join(unknown)}.")
        properties = ["id", *[p for p in dict.fromkeys(args.properties) if p != "id"]]
    limit = ctx.limits.maxObjectsInGet
    if args.ids is not None and len(args.ids) > limit:
        raise MethodError("requestTooLarge", f"At most {limit} ids in one call.")
    account_id = store.home_account(ctx.principal.name, ctx.principal.account_ids)
    records: dict[str, Record] = {}
    if account_id is not None:
        _, found = store.read_all(ctx.core, account_id)
        records = {r["id"]: r for r in found if store.owned_by(r, ctx.principal)}
    if args.ids is None:
        wanted = list(records)
    else:
        wanted = list(dict.fromkeys(args.ids))
    result: list[dict[str, Any]] = []
    not_found: list[str] = []
    for asked in wanted:
        record_id = ctx.resolve_id(asked)
        record = records.get(record_id) if record_id is not None else None
        if record is None:
            not_found.append(asked)
        else:
            result.append({name: record.get(name) for name in properties})
    return {"list": result, "notFound": not_found}


# -- /set ---------------------------------------------------------------------


class _Plan:
    """One attempt at a /set: the batch to commit and the response."""

    def __init__(self, ctx: CallContext, account_id: str, now: float) -> None:
        self.ctx = ctx
        self.account_id = account_id
        self.now = now
        self.policy = policy_of(ctx)
        with ctx.core.backend.snapshot(account_id) as snap:
            self.modseq = snap.type_modseq(store.TYPE)
            ids = list(snap.ids(store.TYPE))
            everything = [r for r in snap.get_many(store.TYPE, ids) if r is not None]
            quota = snap.get(store.QUOTA_TYPE, store.QUOTA_ID)
        name = ctx.principal.name
        self.user_count = sum(1 for r in everything if r.get("principal") == name)
        self.mine: dict[str, Record] = {r["id"]: r for r in everything if store.owned_by(r, ctx.principal)}
        self.quota_exists = quota is not None
        self.quota: Record = quota or {"id": store.QUOTA_ID, "created": {}}
        window_start = now - self.policy.create_window
        self.recent = [t for t in self.quota.get("created", {}).get(name, []) if t > window_start]
        self.batch = WriteBatch(account_id, expect={store.TYPE: self.modseq})
        self.written: dict[str, Record] = {}
        self.destroyed: set[str] = set()
        self.created: dict[str, dict[str, Any]] = {}
        self.not_created: dict[str, SetError] = {}
        self.updated: dict[str, dict[str, Any] | None] = {}
        self.not_updated: dict[str, SetError] = {}
        self.destroyed_ids: list[str] = []
        self.not_destroyed: dict[str, SetError] = {}
        self.creation_ids: dict[str, str] = {}
        self._position: str | None = None

    def position(self) -> str:
        """Where a new subscription's pushes start: now."""
        if self._position is None:
            self._position = PushFeed(self.ctx.core, self.ctx.principal).push_state()
        return self._position

    # -- create ----------------------------------------------------------

    def create(self, creation_id: str, props: dict[str, Any]) -> None:
        error = self._create(creation_id, props)
        if error is not None:
            self.not_created[creation_id] = error

    def _create(self, creation_id: str, props: dict[str, Any]) -> SetError | None:
        unknown = [name for name in props if name not in CREATE_PROPERTIES]
        if unknown:
            return SetError.invalid_properties(unknown, "Unknown or server-set properties.")
        device = props.get("deviceClientId")
        if not isinstance(device, str) or not device or len(device) > 255:
            return SetError.invalid_properties(["deviceClientId"], "deviceClientId is required (a string).")
        url = props.get("url")
        if not isinstance(url, str):
            return SetError.invalid_properties(["url"], "url is required (a string).")
        try:
            self.policy.check_url(url)  # [core-8.6-ssrf]
        except UrlRefused as ex:
            return SetError.invalid_properties(["url"], f"Refused: {ex}.")
        keys = props.get("keys")
        why = _check_keys(keys)
        if why is not None:
            return SetError.invalid_properties(["keys"], why)
        if props.get("verificationCode") is not None:
            return SetError.invalid_properties(
                ["verificationCode"], "verificationCode must be null when creating."
            )
        expires, error = _clamp_expires(props.get("expires"), self.now)
        if error is not None:
            return error
        types = props.get("types")
        error = _check_types(self.ctx, types)
        if error is not None:
            return error
        if self.user_count >= self.policy.max_subscriptions:  # [core-8.6-limits]
            return SetError("overQuota", f"At most {self.policy.max_subscriptions} push subscriptions per user.")
        if len(self.recent) >= self.policy.creates_per_window:
            return SetError("rateLimit", "Too many push subscriptions created recently; try again later.")
        record_id = new_id("S")
        code = secrets.token_urlsafe(24)  # 192 bits: not guessable
        record: Record = {
            "id": record_id,
            "principal": self.ctx.principal.name,
            "credential": self.ctx.principal.credential,
            "deviceClientId": device,
            "url": url,
            "keys": dict(keys) if keys is not None else None,
            "verificationCode": None,
            "expires": expires,
            "types": list(types) if types is not None else None,
            "createdAt": self.now,
            "code": code,
            "verified": False,
            "position": self.position(),
            # [core-7.2-verifyFirst] the only push allowed until verified.
            "pending": {
                "kind": "verify",
                "body": {"@type": "PushVerification", "pushSubscriptionId": record_id, "verificationCode": code},
                "attempts": 0,
                "next": 0.0,
                "lease": 0.0,
                "owner": "",
            },
            "slow": 0.0,
            "lastAt": None,
            "lastResult": None,
            "failures": 0,
            "sent": 0,
        }
        self.user_count += 1
        self.recent.append(self.now)
        self.mine[record_id] = record
        self.written[record_id] = record
        self.creation_ids[creation_id] = record_id
        self.created[creation_id] = {"id": record_id, "expires": expires}
        return None

    # -- update ----------------------------------------------------------

    def update(self, asked: str, patch: dict[str, Any]) -> None:
        record_id = self.ctx.resolve_id(asked)
        if record_id is None and asked.startswith("#"):
            record_id = self.creation_ids.get(asked[1:])
        current = self.mine.get(record_id) if record_id else None
        if current is None or record_id in self.destroyed:
            self.not_updated[asked] = SetError.not_found()
            return
        new = dict(current)
        answer: dict[str, Any] = {}
        bad = [name for name in patch if name not in MUTABLE | IMMUTABLE]
        if bad:
            self.not_updated[asked] = SetError.invalid_properties(bad, "Unknown properties.")
            return
        changed = [name for name in patch if name in IMMUTABLE and patch[name] != current.get(name)]
        if changed:
            # [core-7.2.2-set] to change url or keys, destroy and create.
            self.not_updated[asked] = SetError.invalid_properties(changed, "These properties are immutable.")
            return
        if "verificationCode" in patch:
            error = _apply_code(current, new, patch["verificationCode"])
            if error is not None:
                self.not_updated[asked] = error
                return
        if "expires" in patch:
            expires, error = _clamp_expires(patch["expires"], self.now)
            if error is not None:
                self.not_updated[asked] = error
                return
            new["expires"] = expires
            if expires != patch["expires"]:
                answer["expires"] = expires
        if "types" in patch:
            error = _check_types(self.ctx, patch["types"])
            if error is not None:
                self.not_updated[asked] = error
                return
            new["types"] = list(patch["types"]) if patch["types"] is not None else None
        self.mine[record_id] = new
        self.written[record_id] = new
        self.updated[record_id] = answer or None

    # -- destroy ---------------------------------------------------------

    def destroy(self, asked: str) -> None:
        record_id = self.ctx.resolve_id(asked)
        if record_id is None and asked.startswith("#"):
            record_id = self.creation_ids.get(asked[1:])
        if record_id is None or record_id not in self.mine or record_id in self.destroyed:
            self.not_destroyed[asked] = SetError.not_found()
            return
        self.destroyed.add(record_id)
        self.written.pop(record_id, None)
        self.destroyed_ids.append(asked)

    # -- commit ----------------------------------------------------------

    def finish(self) -> dict[str, Any]:
        created_ids = set(self.creation_ids.values())
        for record_id, record in self.written.items():
            self.batch.puts.append(Put(store.TYPE, record, created=record_id in created_ids))
        for record_id in self.destroyed:
            if record_id in created_ids:
                continue  # created and destroyed in one call: never written
            self.batch.destroys.append(Destroy(store.TYPE, record_id))
        if self.creation_ids:
            quota = dict(self.quota)
            counts = dict(quota.get("created", {}))
            counts[self.ctx.principal.name] = self.recent
            quota["created"] = counts
            self.batch.puts.append(Put(store.QUOTA_TYPE, quota, created=not self.quota_exists))
        if not self.batch.is_empty():
            self.ctx.core.backend.commit(self.batch)
        return {
            "created": self.created or None,
            "updated": self.updated or None,
            "destroyed": self.destroyed_ids or None,
            "notCreated": self.not_created or None,
            "notUpdated": self.not_updated or None,
            "notDestroyed": self.not_destroyed or None,
        }


def push_set(ctx: CallContext, args: PushSetArgs) -> dict[str, Any]:
    """[core-7.2.2-set] create, update (verificationCode, expires, types),
    destroy; no accountId, no ifInState, no states."""
    create = args.create or {}
    update = args.update or {}
    destroy = args.destroy or []
    limit = ctx.limits.maxObjectsInSet
    if len(create) + len(update) + len(destroy) > limit:
        raise MethodError("requestTooLarge", f"At most {limit} objects in one call.")
    account_id = store.home_account(ctx.principal.name, ctx.principal.account_ids)
    if account_id is None:
        raise MethodError("forbidden", "This user has no account to keep push subscriptions in.")
    for _ in range(store.WRITE_ATTEMPTS):
        plan = _Plan(ctx, account_id, time.time())
        for creation_id, props in create.items():
            plan.create(creation_id, props)
        for record_id, patch in update.items():
            plan.update(record_id, patch)
        for record_id in destroy:
            plan.destroy(record_id)
        try:
            response = plan.finish()
        except StateConflict:  # a delivery wrote meanwhile: read again
            continue
        for creation_id, record_id in plan.creation_ids.items():
            ctx.remember_created(creation_id, record_id)
        for record_id in plan.destroyed:
            store.log.info("push subscription %s destroyed by %s", record_id, ctx.principal.name)
        return response
    raise MethodError("serverFail", "Push subscriptions were changing too fast; try again.")
