"""ClickHouse server from Debian's package, with its own config and data in the state folder."""

from __future__ import annotations

import dataclasses
import secrets

from clickhouse_driver import Client

from deploy.local.certificates import (
    Certificates,
    clickhouse_tls_config,
    make_private_folder,
    write_private,
)
from deploy.local.process import ManagedProcess, port_in_use, require_free_port, wait_until
from deploy.local.tools import ensure_debian_package, render, say
from streams.kernel.settings import Secret, Settings
from streams.warehouse.clickhouse import tls_options


class ClickHouse:
    name = "clickhouse"

    def __init__(self, settings: Settings, *, secure: bool = False) -> None:
        # secure: TLS on both ports and a password (the given one, or one made at stack up)
        self.secure = secure
        self.certificates = Certificates(settings.state_dir / "secure")
        self.settings = settings
        self.home = settings.state_dir / "clickhouse"
        self.process = ManagedProcess("clickhouse", settings.state_dir)

    def where(self) -> str:
        s = self.settings
        tls = "s" if self.secure else ""
        native = "native over TLS" if self.secure else "native"
        return (
            f"127.0.0.1:{s.clickhouse_port} {native}, 127.0.0.1:{s.clickhouse_http_port} http{tls}"
        )

    def install(self) -> str:
        return ensure_debian_package("clickhouse-server", "clickhouse-server")

    def client_settings(self) -> Settings:
        """The settings a client of this server uses (secure: TLS, the stack's password)."""
        s = self.settings
        if not self.secure:
            return s
        return dataclasses.replace(
            s,
            clickhouse_secure=True,
            clickhouse_ca_file=str(self.certificates.ca_file),
            clickhouse_password=(
                s.clickhouse_password if s.clickhouse_password.reveal() else self._stack_password()
            ),
        )

    def client(self) -> Client:
        s = self.client_settings()
        return Client(
            host="127.0.0.1",
            port=s.clickhouse_port,
            user=s.clickhouse_user,
            password=s.clickhouse_password.reveal(),
            connect_timeout=2,
            send_receive_timeout=30,
            **tls_options(s),
        )

    def is_ready(self) -> bool:
        if not port_in_use(self.settings.clickhouse_port):
            return False
        client = self.client()
        try:
            return bool(client.execute("SELECT 1") == [(1,)])
        finally:
            client.disconnect()

    def start(self) -> None:
        if self.process.pid() is not None:
            return
        s = self.settings
        if self.secure:
            self.certificates.ensure()
        require_free_port(s.clickhouse_port, "ClickHouse", "STOCKFLOW_CLICKHOUSE_PORT")
        require_free_port(
            s.clickhouse_http_port, "ClickHouse HTTP", "STOCKFLOW_CLICKHOUSE_HTTP_PORT"
        )
        server = self.install()
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        (s.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        config = self.home / "config.xml"
        text = render(
            "clickhouse-config.xml",
            state=s.state_dir,
            http_port=s.clickhouse_http_port,
            tcp_port=s.clickhouse_port,
            interserver_port=s.clickhouse_port + 9,
        )
        if self.secure:
            text = clickhouse_tls_config(text, self.certificates)
        config.write_text(text)
        write_private(  # holds the password
            self.home / "users.xml",
            render(
                "clickhouse-users.xml",
                password=self.client_settings().clickhouse_password.reveal(),
            ),
        )
        say(f"starting ClickHouse on {self.where()}")
        self.process.start([server, f"--config-file={config}"], marker=str(config))
        wait_until(self.is_ready, what="ClickHouse", timeout=60, process=self.process)

    def _stack_password(self) -> Secret:
        """The secure stack's ClickHouse password, made once (clients read the same file)."""
        path = self.certificates.folder / "clickhouse.password"
        if not path.exists():
            make_private_folder(path.parent)
            write_private(path, secrets.token_urlsafe(24) + "\n")
        return Secret(path.read_text().strip())

    def stop(self) -> bool:
        return self.process.stop(timeout=30)
