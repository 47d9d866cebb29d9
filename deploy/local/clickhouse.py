"""ClickHouse server from Debian's package, with its own config and data in the state folder."""

from __future__ import annotations

from clickhouse_driver import Client

from deploy.local.process import ManagedProcess, port_in_use, require_free_port, wait_until
from deploy.local.tools import ensure_debian_package, render, say
from streams.kernel.settings import Settings


class ClickHouse:
    name = "clickhouse"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "clickhouse"
        self.process = ManagedProcess("clickhouse", settings.state_dir)

    def where(self) -> str:
        s = self.settings
        return f"127.0.0.1:{s.clickhouse_port} native, 127.0.0.1:{s.clickhouse_http_port} http"

    def install(self) -> str:
        return ensure_debian_package("clickhouse-server", "clickhouse-server")

    def client(self) -> Client:
        s = self.settings
        return Client(
            host="127.0.0.1",
            port=s.clickhouse_port,
            user=s.clickhouse_user,
            password=s.clickhouse_password.reveal(),
            connect_timeout=2,
            send_receive_timeout=30,
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
        require_free_port(s.clickhouse_port, "ClickHouse", "STOCKFLOW_CLICKHOUSE_PORT")
        require_free_port(
            s.clickhouse_http_port, "ClickHouse HTTP", "STOCKFLOW_CLICKHOUSE_HTTP_PORT"
        )
        server = self.install()
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        (s.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        config = self.home / "config.xml"
        config.write_text(
            render(
                "clickhouse-config.xml",
                state=s.state_dir,
                http_port=s.clickhouse_http_port,
                tcp_port=s.clickhouse_port,
                interserver_port=s.clickhouse_port + 9,
            )
        )
        (self.home / "users.xml").write_text(
            render("clickhouse-users.xml", password=s.clickhouse_password.reveal())
        )
        say(f"starting ClickHouse on {self.where()}")
        self.process.start([server, f"--config-file={config}"], marker=str(config))
        wait_until(self.is_ready, what="ClickHouse", timeout=60, process=self.process)

    def stop(self) -> bool:
        return self.process.stop(timeout=30)
