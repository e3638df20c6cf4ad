"""The ``jmapcore`` command line: account administration, tokens, the config
file and the errors an operator sees (one sentence, never a traceback)."""

from __future__ import annotations

import io
import os
import socket
import ssl
import subprocess
import sys
import warnings
from pathlib import Path

import falcon.testing
import pytest

from jmapserver.app import create_app
from jmapserver.cli import main
from jmapserver.config import ConfigError, Settings, load_settings, parse_host_port
from jmapserver.tls import check_tls, context_factory, restrict
from jmapserver.wiring import build_core
from tests.support import make_certificate

REPO = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_account_lifecycle(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    """add → list → passwd → delete, each reflected in the directory."""
    code, out, err = run(
        capsys, "account", "add", "alice", "--password", "first", "--data", str(data)
    )
    assert (code, err) == (0, "")
    account_id = out.strip()
    assert account_id

    code, out, _ = run(capsys, "account", "list", "--data", str(data))
    assert code == 0
    assert out.splitlines() == [f"alice\t{account_id}\t-"]

    assert (
        run(capsys, "account", "passwd", "alice", "--password", "second", "--data", str(data))[0]
        == 0
    )
    core = build_core(Settings(data=data))
    try:
        assert core.authenticator.password("alice", "first") is None
        principal = core.authenticator.password("alice", "second")
        assert principal is not None and principal.account_ids == (account_id,)
    finally:
        core.close()

    code, out, _ = run(capsys, "account", "delete", "alice", "--data", str(data))
    assert code == 0 and "alice" in out
    assert run(capsys, "account", "list", "--data", str(data))[1] == ""
    code, _, err = run(capsys, "account", "delete", "alice", "--data", str(data))
    assert code == 1
    assert err == "jmapcore: error: no account named 'alice'\n"


def test_duplicate_and_invalid_accounts(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    assert run(capsys, "account", "add", "bob", "--password", "pw", "--data", str(data))[0] == 0
    code, out, err = run(capsys, "account", "add", "bob", "--password", "pw", "--data", str(data))
    assert (code, out) == (1, "")
    assert "already exists" in err and "Traceback" not in err
    code, _, err = run(
        capsys, "account", "add", "bad name!", "--password", "pw", "--data", str(data)
    )
    assert code == 1 and "invalid account name" in err
    code, _, err = run(
        capsys, "account", "passwd", "nobody", "--password", "pw", "--data", str(data)
    )
    assert code == 1 and "no account named 'nobody'" in err


def test_password_from_stdin(
    capsys: pytest.CaptureFixture[str], data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --password the password is one line of stdin (kept out of `ps`)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("from-stdin\n"))
    assert run(capsys, "account", "add", "carol", "--data", str(data))[0] == 0
    core = build_core(Settings(data=data))
    try:
        assert core.authenticator.password("carol", "from-stdin") is not None
    finally:
        core.close()


def test_token_create_then_bearer_auth(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    """[core-8.2-authScheme] a token printed once by `token create` authenticates over HTTP."""
    assert run(capsys, "account", "add", "dave", "--password", "pw", "--data", str(data))[0] == 0
    code, out, _ = run(capsys, "token", "create", "dave", "--data", str(data))
    assert code == 0
    token = out.strip()
    assert token.startswith("jmc_")
    core = build_core(Settings(data=data))
    try:
        client = falcon.testing.TestClient(create_app(core))
        result = client.simulate_get(
            "/.well-known/jmap", headers={"Authorization": f"Bearer {token}"}
        )
        assert result.status_code == 200
        assert result.json["username"] == "dave"
        wrong = client.simulate_get(
            "/.well-known/jmap", headers={"Authorization": f"Bearer {token}x"}
        )
        assert wrong.status_code == 401
    finally:
        core.close()
    code, _, err = run(capsys, "token", "create", "nobody", "--data", str(data))
    assert code == 1 and "no account named" in err


def test_bad_data_directories(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Clear sentences for a file, a missing, an empty and an unwritable directory."""
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    code, _, err = run(capsys, "account", "add", "x", "--password", "pw", "--data", str(a_file))
    assert code == 2 and "is not a directory" in err
    code, _, err = run(capsys, "account", "list", "--data", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err and "jmapcore account add" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "serve", "--data", str(empty), "--listen", "127.0.0.1:1")
    assert code == 2 and "not initialised" in err
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            code, _, err = run(
                capsys, "account", "add", "x", "--password", "pw", "--data", str(locked)
            )
            assert code == 2 and "not writable" in err
        finally:
            locked.chmod(0o700)
    code, _, err = run(capsys, "account", "list")
    assert code == 2 and "--data" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    """argparse's convention: usage errors exit 2 with the usage on stderr."""
    for argv in (
        [],
        ["account"],
        ["account", "add"],
        ["serve", "--workers", "many"],
        ["frobnicate"],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2, argv
        assert "usage:" in err
    code, _, err = run(capsys, "serve", "--data", str(data), "--listen", "nowhere")
    assert code == 2 and "HOST:PORT" in err
    code, _, err = run(capsys, "account", "list", "--data", str(data), "--backend", "nosuch")
    assert code == 2 and "unknown backend 'nosuch'" in err
    assert run(capsys, "--help")[0] == 0


def test_serve_refuses_a_busy_port(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    """The port is checked before gunicorn starts: exit 2 and a sentence."""
    assert run(capsys, "account", "add", "erin", "--password", "pw", "--data", str(data))[0] == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(capsys, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}")
    assert code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in err


def test_toml_config_file_is_honoured_and_flags_win(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Everything a flag sets can come from the file; relative paths are the file's."""
    config = tmp_path / "etc" / "jmapcore.toml"
    config.parent.mkdir()
    config.write_text(
        'data = "../from-file"\n'
        'listen = "[::1]:9090"\n'
        "workers = 3\n"
        'backend = "lmdb"\n'
        'smtp_relay = "mail.example"\n'
        'log_level = "WARNING"\n'
        'base_url = "https://jmap.example/"\n'
        "trust_forwarded = true\n"
        "[limits]\n"
        "maxSizeUpload = 12345\n"
    )
    code, out, _ = run(
        capsys, "account", "add", "frank", "--password", "pw", "--config", str(config)
    )
    assert code == 0
    assert (tmp_path / "from-file").is_dir()
    code, out, _ = run(capsys, "account", "list", "--config", str(config))
    assert out.startswith("frank\t")
    # A flag overrides the file.
    other = tmp_path / "from-flag"
    assert (
        run(
            capsys,
            "account",
            "add",
            "gina",
            "--password",
            "pw",
            "--config",
            str(config),
            "--data",
            str(other),
        )[0]
        == 0
    )
    assert run(capsys, "account", "list", "--data", str(other))[1].startswith("gina\t")

    settings = load_settings(config, {"workers": 5, "listen": None})
    assert settings.data == (tmp_path / "from-file").resolve()
    assert (settings.host, settings.port, settings.workers) == ("::1", 9090, 5)
    assert settings.smtp_relay == ("mail.example", 25)
    assert settings.log_level == "warning"
    assert settings.base_url == "https://jmap.example"
    assert settings.trust_forwarded is True
    assert settings.core_limits().maxSizeUpload == 12345
    core = build_core(settings)
    try:
        assert core.limits.maxSizeUpload == 12345
    finally:
        core.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wrokers = 2\n", "unknown setting 'wrokers'"),
        ("workers = 0\n", "at least 1"),
        ("workers = true\n", "must be an integer"),
        ('listen = "x:y"\n', "HOST:PORT"),
        ("[limits]\nmaxSizeUplaod = 1\n", "unknown limit"),
        ('log_level = "loud"\n', "one of"),
        ('base_url = "ftp://x"\n', "http://"),
        ("data = [\n", "not valid TOML"),
    ],
)
def test_bad_config_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    code, _, err = run(capsys, "serve", "--config", str(config), "--data", str(tmp_path))
    assert code == 2
    assert message in err and str(config) in err
    assert run(capsys, "serve", "--config", str(tmp_path / "absent.toml"))[0] == 2


def test_parse_host_port() -> None:
    assert parse_host_port("127.0.0.1:8080", "listen") == ("127.0.0.1", 8080)
    assert parse_host_port("[::1]:80", "listen") == ("::1", 80)
    assert parse_host_port("relay", "smtp", 25) == ("relay", 25)
    for bad in ("8080", ":80", "host:99999", "[::1", "[::1]x"):
        with pytest.raises(ConfigError):
            parse_host_port(bad, "listen")


def test_the_console_script_never_shows_a_traceback(tmp_path: Path) -> None:
    """The real process: a wrong data directory gives one line on stderr."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("", "backends", "plugins")),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jmapserver.cli",
            "account",
            "list",
            "--data",
            str(tmp_path / "nope"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("jmapcore: error: data directory")
    assert "Traceback" not in done.stderr


def test_tls_settings_from_flags_and_file(tmp_path: Path) -> None:
    """[core-1.7-https] tls_cert/tls_key: both or neither, readable files, https URLs."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("certificate")
    key.write_text("key")
    assert Settings().url() == "http://127.0.0.1:8080"
    settings = load_settings(None, {"tls_cert": str(cert), "tls_key": str(key), "listen": "0.0.0.0:8443"})
    assert settings.tls and (settings.tls_cert, settings.tls_key) == (cert, key)
    assert settings.url() == "https://127.0.0.1:8443"
    config = tmp_path / "jmapcore.toml"
    config.write_text('tls_cert = "cert.pem"\ntls_key = "key.pem"\nlisten = "[::1]:8443"\n')
    settings = load_settings(config, {})  # relative to the file
    assert (settings.tls_cert, settings.url()) == (cert, "https://[::1]:8443")

    with pytest.raises(ConfigError, match="tls_cert is set but tls_key is not"):
        load_settings(None, {"tls_cert": str(cert)})
    with pytest.raises(ConfigError, match="tls_key is set but tls_cert is not"):
        load_settings(None, {"tls_key": str(key)})
    with pytest.raises(ConfigError, match="cannot read .*absent.pem: No such file"):
        load_settings(None, {"tls_cert": str(tmp_path / "absent.pem"), "tls_key": str(key)})
    with pytest.raises(ConfigError, match="cannot read .*: Is a directory"):
        load_settings(None, {"tls_cert": str(cert), "tls_key": str(tmp_path)})
    config.write_text("tls_cert = 1\n")
    with pytest.raises(ConfigError, match="tls_cert must be a path string"):
        load_settings(config, {})


def test_tls_errors_on_the_command_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """One sentence and exit 2; the demo stays plain HTTP."""
    cert = tmp_path / "cert.pem"
    cert.write_text("certificate")
    code, _, err = run(capsys, "serve", "--data", str(tmp_path), "--tls-cert", str(cert))
    assert code == 2 and "tls_cert is set but tls_key is not" in err
    code, _, err = run(
        capsys, "serve", "--data", str(tmp_path), "--tls-cert", str(cert), "--tls-key", "nope.pem"
    )
    assert code == 2 and "cannot read" in err and "nope.pem" in err
    config = tmp_path / "demo.toml"
    config.write_text(f'tls_cert = "{cert}"\ntls_key = "{cert}"\n')
    code, _, err = run(capsys, "demo", "--config", str(config), "--data", str(tmp_path / "d"))
    assert code == 2 and "plain HTTP" in err
    code, _, err = run(capsys, "demo", "--tls-cert", str(cert))
    assert code == 2 and "unrecognized arguments" in err


def test_tls_files_are_checked_before_serving(tmp_path: Path) -> None:
    """Not PEM, a key that does not match, an encrypted key: a sentence, not a
    worker that fails to boot (or prompts for a passphrase)."""
    cert, key = make_certificate(tmp_path)
    check_tls(Settings(tls_cert=cert, tls_key=key))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError, match="cannot use the TLS certificate .*garbage.pem.*must be PEM"):
        check_tls(Settings(tls_cert=garbage, tls_key=key))
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = make_certificate(other)
    with pytest.raises(ConfigError, match="the key does not match the certificate"):
        check_tls(Settings(tls_cert=cert, tls_key=other_key))
    encrypted = tmp_path / "encrypted.pem"
    done = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-aes256", "-passout", "pass:secret", "-out", str(encrypted)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with pytest.raises(ConfigError, match="is encrypted"):
        check_tls(Settings(tls_cert=cert, tls_key=encrypted))


def test_worker_tls_context_refuses_below_1_2(tmp_path: Path) -> None:
    """[core-8.1-tls] the uvicorn worker builds its context through our factory."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from jmapserver.worker import JmapWorker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1 itself
        loose = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        loose.minimum_version = ssl.TLSVersion.TLSv1
    assert restrict(loose).minimum_version == ssl.TLSVersion.TLSv1_2
    strict = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    strict.minimum_version = ssl.TLSVersion.TLSv1_3
    assert restrict(strict).minimum_version == ssl.TLSVersion.TLSv1_3

    cert, key = make_certificate(tmp_path)
    cfg = Config()
    cfg.set("certfile", str(cert))
    cfg.set("keyfile", str(key))
    worker = JmapWorker(0, os.getpid(), [], None, 30, cfg, Logger(cfg))
    assert worker.config.ssl_context_factory is context_factory

    async def app(scope: object, receive: object, send: object) -> None:
        """Never called: only the config is loaded."""

    worker.config.app = app
    worker.config.load()
    assert worker.config.ssl is not None
    assert worker.config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2
    assert worker.config.ssl.protocol == ssl.PROTOCOL_TLS_SERVER
    plain = Config()
    assert JmapWorker(0, os.getpid(), [], None, 30, plain, Logger(plain)).config.is_ssl is False


def test_account_addresses(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An account's addresses (where LMTP delivers, what its identities may
    send from): set at creation, added and removed later, never shared."""
    data = tmp_path / "data"
    code, out, err = run(
        capsys, "account", "add", "alice", "--password", "pw", "--data", str(data),
        "--address", "alice@Example.COM", "--address", "a.l@example.com",
    )
    assert (code, err) == (0, "")
    account_id = out.strip()
    listed = run(capsys, "account", "list", "--data", str(data))[1]
    assert listed.splitlines() == [f"alice\t{account_id}\talice@example.com,a.l@example.com"]
    code, out, _ = run(
        capsys, "account", "addresses", "alice", "--data", str(data),
        "--add", "postmaster@example.org", "--remove", "a.l@EXAMPLE.com",
    )
    assert (code, out.split()) == (0, ["alice@example.com", "postmaster@example.org"])
    code, _, err = run(
        capsys, "account", "add", "bob", "--password", "pw", "--data", str(data),
        "--address", "alice@example.com",
    )
    assert code == 1 and "already belongs to account 'alice'" in err
    code, _, err = run(capsys, "account", "addresses", "alice", "--data", str(data), "--add", "not an address")
    assert code == 1 and "is not an email address" in err
    core = build_core(Settings(data=data))
    try:
        from jmapcore.accounts import account_for_address

        assert account_for_address(core, "alice@EXAMPLE.com").account_id == account_id
        assert account_for_address(core, "ALICE@example.com") is None  # local parts are case-sensitive
        assert account_for_address(core, "bob@example.com") is None
    finally:
        core.close()
