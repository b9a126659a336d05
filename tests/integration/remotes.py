"""Real git servers on 127.0.0.1 for the sharing tests.

Served by path, file://, git daemon, sshd and smart HTTP.
"""

from __future__ import annotations

import base64
import getpass
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

KINDS = ("path", "file", "git", "ssh", "scp", "http")
SSHD = "/usr/sbin/sshd"
HTTP_USER, HTTP_PASSWORD = "teammate", "s3cret"
_INSTALL_HINT = "run .ci/install-system-deps.sh (as root) first"


def git(cwd: Path | str, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def make_bare(path: Path) -> Path:
    """An empty bare repository that accepts pushes over every protocol."""
    git(path.parent, "init", "-q", "--bare", "--initial-branch=main", path.name)
    # http-backend refuses receive-pack to anonymous users unless told otherwise.
    git(path, "config", "http.receivepack", "true")
    return path


@dataclass
class RemoteServer:
    """Bare repositories under `base`, reachable through one protocol as `url(name)`."""

    kind: str
    base: Path
    url_prefix: str
    env: dict[str, str] = field(default_factory=dict)  # client side: e.g. GIT_SSH_COMMAND

    def new_repository(self, name: str) -> tuple[Path, str]:
        """A new empty bare repository: its path on disk and the URL to give to git."""
        return make_bare(self.base / f"{name}.git"), self.url(f"{name}.git")

    def url(self, relative: str) -> str:
        return f"{self.url_prefix}{relative}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    """Wait until ``process`` listens on ``port``; fail if it exits first."""
    # Here, not at the top: this file also runs as a script (the http server), where
    # the tests package is not importable.
    from tests.conftest import wait_while_running

    wait_while_running(lambda: listening(port), process, f"{what} never listened on {port}")


def start_on_free_port(
    start: Callable[[int], subprocess.Popen[bytes]], what: str
) -> tuple[subprocess.Popen[bytes], int]:
    """``start(port)`` on a free port, once it listens; the process and its port.

    Another process may take the port between our finding it free and the
    server binding it, so up to three ports are tried.
    """
    for attempt in range(3):
        port = free_port()
        process = start(port)
        try:
            wait_for_port(port, process, what)
            return process, port
        except RuntimeError:
            stop(process)
            if attempt == 2:
                raise
    raise AssertionError("not reached")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_env(home: Path) -> dict[str, str]:
    """A clean environment for server processes: no developer git config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
    return env


def _git_exec_path() -> Path:
    return Path(
        subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout.strip()
    )


@pytest.fixture(scope="session")
def git_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    """`git daemon` with receive-pack enabled: git:// URLs."""
    if shutil.which("git") is None or not (_git_exec_path() / "git-daemon").exists():
        pytest.skip(f"git daemon not installed; {_INSTALL_HINT}")
    base = tmp_path_factory.mktemp("git-daemon")
    process, port = start_on_free_port(
        lambda port: subprocess.Popen(
            ["git", "daemon", "--reuseaddr", f"--base-path={base}", "--export-all",
             "--enable=receive-pack", "--listen=127.0.0.1", f"--port={port}", str(base)],
            env=server_env(base), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
        "git daemon",
    )  # fmt: skip
    yield RemoteServer("git", base, f"git://127.0.0.1:{port}/")
    stop(process)


@dataclass
class SshServer:
    server: RemoteServer
    key_dir: Path
    port: int

    def ssh_command(self, key: Path | None = None) -> str:
        identity = key or self.key_dir / "id_ed25519"
        return (
            f"ssh -F /dev/null -i {identity} -o IdentitiesOnly=yes -o BatchMode=yes "
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
            f"-p {self.port}"
        )

    def stranger_key(self) -> Path:
        """A key pair the server does not know: authentication must fail."""
        key = self.key_dir / "stranger_ed25519"
        if not key.exists():
            _keygen(key)
        return key


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """`sshd` on a free port with a generated host key and user key: ssh:// and scp-like URLs."""
    if (
        not os.path.exists(SSHD)
        or shutil.which("ssh") is None
        or shutil.which("ssh-keygen") is None
    ):
        pytest.skip(f"{SSHD} or ssh/ssh-keygen not installed; {_INSTALL_HINT}")
    base = tmp_path_factory.mktemp("sshd-repos")
    keys = tmp_path_factory.mktemp("sshd-keys")
    _keygen(keys / "host_ed25519")
    _keygen(keys / "id_ed25519")
    shutil.copy(keys / "id_ed25519.pub", keys / "authorized_keys")
    if os.geteuid() == 0:
        # Debian's init script makes this; a container that never started sshd lacks it.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    user = getpass.getuser()
    config = keys / "sshd_config"

    def start(port: int) -> subprocess.Popen[bytes]:
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host_ed25519'}\n"
            f"PidFile {keys / 'sshd.pid'}\nAuthorizedKeysFile {keys / 'authorized_keys'}\n"
            "StrictModes no\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\n"
            f"AllowUsers {user}\nAcceptEnv GIT_PROTOCOL\nPrintMotd no\nLogLevel ERROR\n"
            # sftp:// artifact stores (tests/integration/test_artifact_store.py).
            "Subsystem sftp internal-sftp\n"
        )
        return subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            env=server_env(keys), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    process, port = start_on_free_port(start, "sshd")
    server = RemoteServer("ssh", base, f"ssh://{user}@127.0.0.1:{port}{base}/")
    yield SshServer(server, keys, port)
    stop(process)


@dataclass
class HttpServer:
    server: RemoteServer
    port: int
    auth: bool

    def url_with_credentials(self, relative: str, password: str = HTTP_PASSWORD) -> str:
        return f"http://{HTTP_USER}:{password}@127.0.0.1:{self.port}/{relative}"


def _start_http(base: Path, auth: bool) -> tuple[subprocess.Popen[bytes], int]:
    backend = _git_exec_path() / "git-http-backend"
    if not backend.exists():
        pytest.skip(f"git-http-backend not installed; {_INSTALL_HINT}")
    command = [sys.executable, __file__, "serve-http", str(base), str(backend)]
    if auth:
        command.append(f"{HTTP_USER}:{HTTP_PASSWORD}")
    process = subprocess.Popen(command, env=server_env(base), stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline().decode()  # the server prints its port once bound
    if not line.strip().isdigit():
        stop(process)
        raise RuntimeError(f"http server did not start: {line!r}")
    return process, int(line)


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """Smart HTTP: `git http-backend` as CGI behind a threaded Python web server."""
    base = tmp_path_factory.mktemp("http-repos")
    process, port = _start_http(base, auth=False)
    yield HttpServer(RemoteServer("http", base, f"http://127.0.0.1:{port}/"), port, auth=False)
    stop(process)


@pytest.fixture(scope="session")
def http_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """The same, behind HTTP basic auth (401 without the right credentials)."""
    base = tmp_path_factory.mktemp("http-auth-repos")
    process, port = _start_http(base, auth=True)
    yield HttpServer(RemoteServer("http", base, f"http://127.0.0.1:{port}/"), port, auth=True)
    stop(process)


@pytest.fixture
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer config, identity or GIT_* variable may reach the git under test."""
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test User")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
    # Servers are on 127.0.0.1: a proxy from the environment must not intercept them.
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def local_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-repos")


@pytest.fixture(params=KINDS)
def remote_server(request: pytest.FixtureRequest, local_base: Path) -> RemoteServer:
    """Each protocol in turn; the client environment (e.g. GIT_SSH_COMMAND) is set up too."""
    kind: str = request.param
    if kind == "path":
        return RemoteServer("path", local_base, f"{local_base}/")
    if kind == "file":
        return RemoteServer("file", local_base, f"file://{local_base}/")
    if kind == "git":
        daemon: RemoteServer = request.getfixturevalue("git_daemon")
        return daemon
    if kind in ("ssh", "scp"):
        ssh: SshServer = request.getfixturevalue("sshd")
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setenv("GIT_SSH_COMMAND", ssh.ssh_command())
        if kind == "ssh":
            return ssh.server
        # scp-like syntax cannot carry a port; ssh takes it from GIT_SSH_COMMAND's -p.
        return RemoteServer(
            "scp", ssh.server.base, f"{getpass.getuser()}@127.0.0.1:{ssh.server.base}/"
        )
    http: HttpServer = request.getfixturevalue("http_server")
    return http.server


# --- the smart HTTP server, run as `python remotes.py serve-http BASE BACKEND [USER:PASS]` ----


def _serve_http(base: str, backend: str, credentials: str | None) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    expected = "Basic " + base64.b64encode(credentials.encode()).decode() if credentials else None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._cgi()

        def do_POST(self) -> None:
            self._cgi()

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                # git streams large pushes chunked; CGI wants the plain body.
                parts: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _cgi(self) -> None:
            body = self._body()
            if expected is not None and self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            env = dict(os.environ)
            env.update(
                GIT_PROJECT_ROOT=base, GIT_HTTP_EXPORT_ALL="1", REQUEST_METHOD=self.command,
                PATH_INFO=path, QUERY_STRING=query, CONTENT_LENGTH=str(len(body)),
                CONTENT_TYPE=self.headers.get("Content-Type", ""), REMOTE_ADDR="127.0.0.1",
                GATEWAY_INTERFACE="CGI/1.1", SERVER_PROTOCOL="HTTP/1.1",
            )  # fmt: skip
            if credentials:
                env["REMOTE_USER"] = credentials.split(":", 1)[0]
            for header in ("Content-Encoding", "Git-Protocol"):
                if header in self.headers:
                    env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
            output = subprocess.run([backend], input=body, env=env, capture_output=True).stdout
            head, _, payload = output.partition(b"\r\n\r\n")
            status, headers = 200, []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__" and sys.argv[1:2] == ["serve-http"]:
    _serve_http(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
