"""``jmapcore``: serve, try a demo, administer accounts and tokens.

Every wrong use ends with one sentence on stderr and a non-zero status,
never a traceback: 2 for usage and configuration errors (argparse's own
convention), 1 when a well-formed command cannot be carried out.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import ConfigError, Settings, load_settings

log = logging.getLogger("jmapserver")

EXIT_FAILED = 1
EXIT_USAGE = 2

DEMO_DATA = "./jmapcore-demo-data"
DEMO_LISTEN = "127.0.0.1:8080"


class CommandError(Exception):
    """A well-formed command that cannot be carried out (exit 1)."""


# -- parsing ----------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, data_default: str | None = None) -> None:
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML config file (flags override it)"
    )
    parser.add_argument("--data", metavar="DIR", default=data_default, help="data directory")
    parser.add_argument("--backend", metavar="NAME", help="storage backend (default: lmdb)")
    parser.add_argument(
        "--log-level", dest="log_level", metavar="LEVEL", help="debug, info, warning, error"
    )
    parser.add_argument(
        "--plugin",
        dest="plugins",
        action="append",
        metavar="MODULE:ATTR",
        help="load a plugin not installed as an entry point (repeatable)",
    )


def _serving(parser: argparse.ArgumentParser, *, listen_default: str | None = None) -> None:
    parser.add_argument(
        "--listen", metavar="HOST:PORT", default=listen_default, help="address to listen on"
    )
    _maildir_root(parser)
    parser.add_argument(
        "--smtp-relay",
        dest="smtp_relay",
        metavar="HOST:PORT",
        help="where submitted mail is relayed",
    )
    parser.add_argument(
        "--base-url", dest="base_url", metavar="URL", help="public URL (default: from each request)"
    )
    parser.add_argument(
        "--trust-forwarded",
        dest="trust_forwarded",
        action="store_const",
        const=True,
        help="honour X-Forwarded-Proto/Host (only behind a proxy that sets them)",
    )
    parser.add_argument(
        "--push-allow-private",
        dest="push_allow_private",
        action="store_const",
        const=True,
        help="let push subscription URLs reach internal addresses (loopback, private, link-local)",
    )
    parser.add_argument(
        "--push-allow",
        dest="push_allow",
        action="append",
        metavar="HOST_OR_NET",
        help="an internal host, address or network push URLs may reach (repeatable)",
    )
    parser.add_argument(
        "--push-allow-http",
        dest="push_allow_http",
        action="store_const",
        const=True,
        help="accept http:// push subscription URLs (tests, a trusted LAN)",
    )


def _maildir_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--maildir-root",
        dest="maildir_root",
        metavar="PATH",
        help="Maildir++ tree, %%u: the account name (maildir backend)",
    )


def _password(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password", metavar="PW", help="the password (default: prompt, or one line from stdin)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jmapcore", description="A JMAP (RFC 8620) server.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server")
    _common(serve)
    _serving(serve)
    serve.add_argument("--workers", type=int, metavar="N", help="worker processes (default: 2)")
    serve.add_argument(
        "--tls-cert",
        dest="tls_cert",
        metavar="FILE",
        help="PEM certificate chain: serve HTTPS (TLS 1.2+); needs --tls-key",
    )
    serve.add_argument(
        "--tls-key", dest="tls_key", metavar="FILE", help="PEM private key of --tls-cert"
    )
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="run a server with a demo account (demo/demo)")
    _common(demo, data_default=DEMO_DATA)
    _serving(demo, listen_default=DEMO_LISTEN)
    demo.set_defaults(handler=cmd_demo)

    account = commands.add_parser("account", help="manage accounts")
    account_commands = account.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = account_commands.add_parser("add", help="create an account")
    add.add_argument("name")
    _password(add)
    add.add_argument(
        "--address", action="append", default=[], metavar="ADDR",
        help="an email address of the account (mail to it is delivered here; repeatable)",
    )
    _common(add)
    _maildir_root(add)
    add.set_defaults(handler=cmd_account_add)
    addresses = account_commands.add_parser(
        "addresses", help="show or change an account's email addresses"
    )
    addresses.add_argument("name")
    addresses.add_argument("--add", action="append", default=[], metavar="ADDR")
    addresses.add_argument("--remove", action="append", default=[], metavar="ADDR")
    _common(addresses)
    _maildir_root(addresses)
    addresses.set_defaults(handler=cmd_account_addresses)
    listing = account_commands.add_parser("list", help="list accounts")
    _common(listing)
    _maildir_root(listing)
    listing.set_defaults(handler=cmd_account_list)
    delete = account_commands.add_parser("delete", help="delete an account and its data")
    delete.add_argument("name")
    _common(delete)
    _maildir_root(delete)
    delete.set_defaults(handler=cmd_account_delete)
    passwd = account_commands.add_parser("passwd", help="change an account's password")
    passwd.add_argument("name")
    _password(passwd)
    _common(passwd)
    _maildir_root(passwd)
    passwd.set_defaults(handler=cmd_account_passwd)
    quota = account_commands.add_parser(
        "quota", help="show or set an account's storage quota (RFC 9425)"
    )
    quota.add_argument("name")
    limit = quota.add_mutually_exclusive_group()
    limit.add_argument("--octets", type=int, metavar="N", help="the hard limit on stored mail, in octets")
    limit.add_argument("--none", action="store_true", help="no quota")
    _common(quota)
    _maildir_root(quota)
    quota.set_defaults(handler=cmd_account_quota)
    rebuild = account_commands.add_parser(
        "rebuild", help="rebuild an account's mail from its files (maildir backend), under a new epoch"
    )
    rebuild.add_argument("name")
    _common(rebuild)
    _maildir_root(rebuild)
    rebuild.set_defaults(handler=cmd_account_rebuild)

    _import_parser(commands)

    export = commands.add_parser(
        "export",
        help="export an account's contacts as a vCard 4.0 file, or its calendar events as iCalendar",
        description="Write NAME's ContactCards as vCard 4.0 (RFC 9555 mapping), or its "
        "CalendarEvents as one iCalendar file (the JSCalendar/iCalendar mapping).",
    )
    export.add_argument("name", metavar="NAME", help="the account")
    export.add_argument(
        "--contacts", type=Path, metavar="FILE", help="the .vcf file to write (- for stdout)"
    )
    export.add_argument(
        "--address-book", dest="address_book", metavar="NAME", help="only this address book (default: all)"
    )
    export.add_argument(
        "--calendar-events", dest="calendar_events", type=Path, metavar="FILE",
        help="the .ics file to write (- for stdout)",
    )
    export.add_argument(
        "--calendar", metavar="NAME", help="only this calendar's events (default: all)"
    )
    _common(export)
    _maildir_root(export)
    export.set_defaults(handler=cmd_export)

    push = commands.add_parser("push", help="inspect push subscriptions")
    push_commands = push.add_subparsers(dest="action", required=True, metavar="ACTION")
    push_list = push_commands.add_parser(
        "list", help="each push subscription and how its deliveries went"
    )
    _common(push_list)
    push_list.set_defaults(handler=cmd_push_list)
    outbound = commands.add_parser("queue", help="inspect the outbound mail queue")
    outbound_commands = outbound.add_subparsers(dest="action", required=True, metavar="ACTION")
    queue_list = outbound_commands.add_parser(
        "list", help="each message waiting for the SMTP relay, its tries and last failure"
    )
    _common(queue_list)
    queue_list.set_defaults(handler=cmd_queue_list)

    reindex = commands.add_parser(
        "reindex", help="rebuild the full-text search index of one account (NAME) or of all"
    )
    reindex.add_argument("name", nargs="?", metavar="NAME")
    _common(reindex)
    reindex.set_defaults(handler=cmd_reindex)

    _lmtp_parser(commands)

    token = commands.add_parser("token", help="manage bearer tokens")
    token_commands = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = token_commands.add_parser("create", help="create a bearer token (shown once)")
    create.add_argument("name")
    _common(create)
    create.set_defaults(handler=cmd_token_create)
    return parser


_IMPORT_EPILOG = """\
PATH is an mbox file (it starts with a "From " line), a Maildir (a folder with
cur/ and new/; Maildir++ .Sub.Folder folders become mailboxes Sub/Folder), a
.eml file, or a folder searched recursively for *.eml files.  Maildir flags
S F R D P become $seen $flagged $answered $draft $forwarded; messages marked
deleted (Maildir T, mbox X-Status D) go to Trash.  receivedAt is the mbox
From_ line's date or the Maildir file's mtime.  Malformed messages (no From,
Date or Message-ID, an unparseable Date, MIME defects) are imported unchanged
and counted.  Exit status 0 when every message was imported, 1 otherwise.

A .vcf file (vCard 4.0, 3.0 or 2.1) becomes ContactCards (RFC 9555 mapping) in
the default address book; a damaged file is read best effort (lines not UTF-8,
broken folding, a missing END:VCARD, text between cards) and counted.  A card
whose uid is already in the account is skipped, never replaced.  Exit status 0
when every card was imported, 1 otherwise.

A .ics file becomes CalendarEvents (the JSCalendar/iCalendar mapping) in the
default calendar: each VEVENT series is one event, its RECURRENCE-ID instances
recurrence overrides, EXDATE excluded instances.  A damaged file is read best
effort (broken folding, lines not UTF-8, an unknown time zone, an end before
the start) and counted; a VEVENT with an invalid RRULE or no DTSTART is
skipped with its reason.  An event whose uid is already in the account is
skipped, never replaced.  Exit status 0 when every event was imported, 1
otherwise.
"""


def _lmtp_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "lmtp",
        help="accept mail from an MTA over LMTP into the accounts' Inboxes",
        description="Deliver mail received over LMTP (RFC 2033) into the accounts whose "
        "addresses it is for (Postfix: mailbox_transport = lmtp:inet:127.0.0.1:2424).",
    )
    _common(parser)
    _maildir_root(parser)
    parser.add_argument(
        "--listen", dest="lmtp_listen", metavar="HOST:PORT",
        help="address to listen on (default: 127.0.0.1:2424; config: lmtp_listen)",
    )
    parser.add_argument(
        "--max-size", dest="lmtp_max_size", type=int, metavar="OCTETS",
        help="largest message accepted (default: 50000000; config: lmtp_max_size)",
    )
    parser.add_argument(
        "--hostname", dest="lmtp_hostname", metavar="NAME",
        help="this host's name in greetings and Received headers (config: lmtp_hostname)",
    )
    parser.add_argument(
        "--no-name-match", dest="lmtp_name_match", action="store_const", const=False,
        help="only the accounts' addresses, not NAME@any-domain for account NAME "
        "(config: lmtp_name_match = false)",
    )
    parser.set_defaults(handler=cmd_lmtp)


def _import_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "import",
        help="import an mbox, a Maildir or .eml files (or a .vcf of contacts) into an account",
        description="Import mail into NAME's account, with a progress bar and a summary.",
        epilog=_IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", metavar="NAME", help="the account")
    parser.add_argument(
        "path", metavar="PATH", type=Path,
        help="mbox file, Maildir, .eml file or folder, .vcf file or .ics file",
    )
    parser.add_argument(
        "--format",
        choices=("mail", "vcard", "ical"),
        help="what PATH holds (default: vcard for a .vcf file or one starting with BEGIN:VCARD, "
        "ical for a .ics file or one starting with BEGIN:VCALENDAR, else mail)",
    )
    parser.add_argument(
        "--calendar",
        metavar="NAME",
        help="iCalendar: the calendar events go into (default: the account's default one)",
    )
    parser.add_argument(
        "--address-book",
        dest="address_book",
        metavar="NAME",
        help="vCard: the address book cards go into (default: the account's default one)",
    )
    parser.add_argument(
        "--mailbox",
        default="inbox",
        metavar="ROLE_OR_NAME",
        help="where messages go: a role (inbox, archive, ...) or a name path A/B, "
        "created if missing (default: inbox)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar (the summary stays)")
    _common(parser)
    _maildir_root(parser)
    parser.set_defaults(handler=cmd_import)


def settings_from(args: argparse.Namespace) -> Settings:
    """The file named by ``--config`` (if any), overridden by the flags given."""
    flags = {
        key: getattr(args, key, None)
        for key in (
            "data",
            "listen",
            "workers",
            "backend",
            "maildir_root",
            "smtp_relay",
            "log_level",
            "base_url",
            "trust_forwarded",
            "plugins",
            "tls_cert",
            "tls_key",
            "push_allow_private",
            "push_allow",
            "push_allow_http",
            "lmtp_listen",
            "lmtp_max_size",
            "lmtp_hostname",
            "lmtp_name_match",
        )
    }
    return load_settings(args.config, flags)


def _read_password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return args.password
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise CommandError("the passwords do not match")
        return first
    return sys.stdin.readline().rstrip("\r\n")


@contextmanager
def _core(settings: Settings, *, create: bool = False) -> Iterator[Any]:
    from .wiring import build_core, check_data_dir, find_backend

    find_backend(settings.backend)  # an unknown name is reported before anything is created
    check_data_dir(settings, create=create)
    core = build_core(settings)
    try:
        yield core
    finally:
        core.close()


# -- commands ---------------------------------------------------------------


def cmd_account_add(args: argparse.Namespace) -> int:
    from jmapcore.accounts import add_account

    password = _read_password(args)
    with _core(settings_from(args), create=True) as core:
        account = add_account(core, args.name, password, args.address)
    print(account.account_id)
    return 0


def cmd_account_addresses(args: argparse.Namespace) -> int:
    """Print the account's addresses, after adding and removing any given."""
    from jmapcore.accounts import normalize_address, set_addresses

    with _core(settings_from(args)) as core:
        (account, *_) = _accounts_of(core, args.name)
        current = list(account.addresses)
        if args.add or args.remove:
            removed = {normalize_address(a) for a in args.remove}
            current = [a for a in current if a not in removed] + args.add
            account = set_addresses(core, args.name, current)
    for address in account.addresses:
        print(address)
    return 0


def cmd_account_list(args: argparse.Namespace) -> int:
    from jmapcore.accounts import list_accounts

    with _core(settings_from(args)) as core:
        rows = list_accounts(core)
    for principal, accounts in rows:
        ids = ",".join(a.account_id for a in accounts) or "-"
        addresses = ",".join(a for account in accounts[:1] for a in account.addresses) or "-"
        print(f"{principal.name}\t{ids}\t{addresses}")
    return 0


def cmd_account_delete(args: argparse.Namespace) -> int:
    from jmapcore.accounts import delete_account

    with _core(settings_from(args)) as core:
        delete_account(core, args.name)
    print(f"deleted {args.name}")
    return 0


def cmd_account_passwd(args: argparse.Namespace) -> int:
    from jmapcore.accounts import set_password

    password = _read_password(args)
    with _core(settings_from(args)) as core:
        set_password(core, args.name, password)
    print(f"password changed for {args.name}")
    return 0


def cmd_account_rebuild(args: argparse.Namespace) -> int:
    """The files are the truth: drop the account's mail records and adopt
    its tree again (clients then resynchronise: old states are refused)."""
    with _core(settings_from(args)) as core:
        rebuild = getattr(core.backend, "rebuild_account", None)
        if rebuild is None:
            raise CommandError("this backend keeps no files to rebuild from (use --backend maildir)")
        for account in _accounts_of(core, args.name):
            epoch = rebuild(account.account_id)
            print(f"{account.name} ({account.account_id}): rebuilt, epoch {epoch}")
    return 0


def _accounts_of(core: Any, name: str) -> list[Any]:
    """The accounts of the principal called ``name``."""
    directory = core.backend.directory
    principal = directory.get_principal(name)
    if principal is None:
        raise CommandError(f"no account named {name!r}")
    return [a for a in map(directory.get_account, principal.account_ids) if a is not None]


def cmd_token_create(args: argparse.Namespace) -> int:
    from jmapcore.accounts import create_token

    with _core(settings_from(args)) as core:
        token = create_token(core, args.name)
    print(token)
    return 0


def cmd_push_list(args: argparse.Namespace) -> int:
    """One line per push subscription: who, which device, where, whether
    verified, until when, and its last delivery (read-only)."""
    from jmap_basics.push_store import describe_all

    with _core(settings_from(args)) as core:
        rows = describe_all(core)
    columns = ("principal", "id", "device", "host", "verified", "expires", "last", "lastAt", "failures", "sent")
    print("\t".join(columns))
    for row in rows:
        print("\t".join(str(row[name]) for name in columns))
    if not rows:
        print("(no push subscriptions)", file=sys.stderr)
    return 0


def cmd_queue_list(args: argparse.Namespace) -> int:
    """One line per message in the outbound queue (read-only)."""
    from jmap_submission.outbound import describe_queue

    with _core(settings_from(args)) as core:
        rows = describe_queue(core)
    columns = ("account", "id", "from", "waiting", "attempts", "next", "sending", "lastError")
    print("\t".join(columns))
    for row in rows:
        print("\t".join(str(row[name]) for name in columns))
    if not rows:
        print("(the outbound queue is empty)", file=sys.stderr)
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    """Re-index from the stored messages (after a crash, an upgrade or a
    tokenizer change); clients then resynchronise their text queries."""
    with _core(settings_from(args)) as core:
        directory = core.backend.directory
        if args.name is None:
            accounts = directory.list_accounts()
        else:
            accounts = _accounts_of(core, args.name)
        for account in accounts:
            counts = core.rebuild_search(account.account_id)
            summary = ", ".join(f"{count} {type_name}" for type_name, count in counts.items()) or "nothing to index"
            print(f"{account.name} ({account.account_id}): {summary}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .icalio import is_ical_file
    from .importer import ImportFailed, find_account, import_items
    from .mailsources import SourceError, detect
    from .progress import Progress
    from .vcardio import is_vcard_file

    settings = settings_from(args)
    if args.format == "vcard" or (args.format is None and is_vcard_file(args.path)):
        return _import_vcard(args, settings)
    if args.format == "ical" or (args.format is None and is_ical_file(args.path)):
        return _import_ical(args, settings)
    with _core(settings) as core:
        try:
            find_account(core, args.name)  # a wrong name first, before reading PATH
            source = detect(args.path)
            summary = import_items(
                core,
                args.name,
                source.read(),
                source=source.describe(),
                mailbox=args.mailbox,
                progress=Progress(source.total, sys.stderr, enabled=not args.quiet),
            )
        except (SourceError, ImportFailed) as ex:
            raise CommandError(str(ex)) from None
    print("\n".join(summary.lines()))
    return EXIT_FAILED if summary.failed else 0


def _import_vcard(args: argparse.Namespace, settings: Settings) -> int:
    from .importer import ImportFailed, find_account
    from .vcardio import import_vcards

    with _core(settings) as core:
        try:
            find_account(core, args.name)
            summary = import_vcards(core, args.name, args.path, book=args.address_book, quiet=args.quiet)
        except ImportFailed as ex:
            raise CommandError(str(ex)) from None
    print("\n".join(summary.lines()))
    return EXIT_FAILED if summary.skipped or not summary.read else 0


def _import_ical(args: argparse.Namespace, settings: Settings) -> int:
    from .icalio import import_icalendar
    from .importer import ImportFailed, find_account

    with _core(settings) as core:
        try:
            find_account(core, args.name)
            summary = import_icalendar(core, args.name, args.path, calendar=args.calendar, quiet=args.quiet)
        except ImportFailed as ex:
            raise CommandError(str(ex)) from None
    print("\n".join(summary.lines()))
    return EXIT_FAILED if summary.skipped or not summary.read else 0


def _export_ical(args: argparse.Namespace, settings: Settings) -> int:
    from .icalio import export_icalendar
    from .importer import ImportFailed, find_account

    target = str(args.calendar_events)
    with _core(settings) as core:
        try:
            find_account(core, args.name)
            if target == "-":
                count = export_icalendar(core, args.name, sys.stdout, calendar=args.calendar)
            else:
                with args.calendar_events.open("w", encoding="utf-8", newline="") as out:
                    count = export_icalendar(core, args.name, out, calendar=args.calendar)
        except (ImportFailed, OSError) as ex:
            raise CommandError(str(ex)) from None
    if target != "-":
        print(f"exported {count:,} events of {args.name} to {target}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .importer import ImportFailed, find_account
    from .vcardio import export_vcards

    settings = settings_from(args)
    if (args.contacts is None) == (args.calendar_events is None):
        raise CommandError("give one of --contacts FILE or --calendar-events FILE")
    if args.calendar_events is not None:
        return _export_ical(args, settings)
    with _core(settings) as core:
        try:
            find_account(core, args.name)
            if str(args.contacts) == "-":
                count = export_vcards(core, args.name, sys.stdout, book=args.address_book)
            else:
                with args.contacts.open("w", encoding="utf-8", newline="") as out:
                    count = export_vcards(core, args.name, out, book=args.address_book)
        except (ImportFailed, OSError) as ex:
            raise CommandError(str(ex)) from None
    if str(args.contacts) != "-":
        print(f"exported {count:,} cards of {args.name} to {args.contacts}")
    return 0


def cmd_account_quota(args: argparse.Namespace) -> int:
    """Print the account's quota (used and limit), after setting it if asked."""
    from jmap_quota.admin import quota_line, set_quota

    with _core(settings_from(args)) as core:
        (account, *_) = _accounts_of(core, args.name)
        if args.octets is not None or args.none:
            if args.octets is not None and args.octets < 0:
                raise CommandError("--octets must be 0 or more")
            set_quota(core, account.account_id, None if args.none else args.octets)
        print(quota_line(core, account.account_id))
    return 0


def cmd_lmtp(args: argparse.Namespace) -> int:
    import asyncio

    from .lmtp import serve_lmtp
    from .wiring import check_data_dir, find_backend

    settings = settings_from(args)
    _setup_logging(settings.log_level)
    host, port = settings.lmtp_listen
    find_backend(settings.backend)
    check_data_dir(settings, create=False)
    with _core(settings) as core:

        def ready() -> None:
            print(f"jmapcore lmtp: listening on {host}:{port} (data: {settings.data})", flush=True)

        asyncio.run(
            serve_lmtp(core, host, port, max_size=settings.lmtp_max_size, hostname=settings.lmtp_hostname,
                       by_name=settings.lmtp_name_match, ready=ready)
        )
    return 0


def _prepare_serving(settings: Settings) -> None:
    """Checks in the master that would otherwise fail in every worker, then close."""
    from .wiring import build_core

    core = build_core(settings)
    try:
        if not core.backend.directory.list_principals():
            log.warning(
                "no accounts yet: add one with 'jmapcore account add NAME --data %s'", settings.data
            )
    finally:
        core.close()  # before the fork: workers open their own


def cmd_serve(args: argparse.Namespace) -> int:
    from .serving import check_port, serve
    from .tls import check_tls
    from .wiring import check_data_dir, find_backend

    settings = settings_from(args)
    _setup_logging(settings.log_level)
    find_backend(settings.backend)
    check_data_dir(settings, create=False)
    check_port(settings.host, settings.port)
    check_tls(settings)
    _prepare_serving(settings)
    return serve(settings)


def cmd_demo(args: argparse.Namespace) -> int:
    from jmapcore.accounts import add_account

    from .demo import DEMO_ADDRESS, DEMO_PASSWORD, DEMO_USER, seed_demo
    from .serving import check_port, serve

    settings = settings_from(args)
    if settings.tls:
        raise ConfigError("the demo serves plain HTTP on localhost; use 'jmapcore serve' for TLS")
    _setup_logging(settings.log_level)
    check_port(settings.host, settings.port)
    with _core(settings, create=True) as core:
        principal = core.backend.directory.get_principal(DEMO_USER)
        if principal is None:
            account = add_account(core, DEMO_USER, DEMO_PASSWORD, [DEMO_ADDRESS])
        else:
            account = core.backend.directory.get_account(principal.account_ids[0])
        seeded = seed_demo(core, account) if account is not None else 0
    url = settings.url()
    print(f"jmapcore demo: {url}/.well-known/jmap")
    print(f"  username: {DEMO_USER}  password: {DEMO_PASSWORD}  data: {settings.data}")
    if seeded:
        print(f"  imported {seeded} sample messages into the demo Inbox, Sent and Archive")
    sys.stdout.flush()
    return serve(settings)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s",
    )


# -- entry point ------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """The ``jmapcore`` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as ex:  # argparse has printed the usage and the reason
        return ex.code if isinstance(ex.code, int) else EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as ex:
        return _fail(str(ex), EXIT_USAGE)
    except KeyboardInterrupt:
        return 130
    except Exception as ex:  # noqa: BLE001 - the operator gets one sentence, not a traceback
        return _fail(_describe(ex), EXIT_FAILED)


def _describe(ex: Exception) -> str:
    from jmapcore.accounts import AdminError

    if isinstance(ex, AdminError | CommandError):
        return str(ex)
    log.debug("command failed", exc_info=ex)
    detail = str(ex) or type(ex).__name__
    return f"{detail} ({type(ex).__name__})"


def _fail(message: str, code: int) -> int:
    print(f"jmapcore: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
