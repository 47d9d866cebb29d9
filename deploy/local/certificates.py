"""The secure stack's TLS material, made with openssl: a local CA and one server certificate.

Everything lives in ``<state>/secure`` (mode 700); private keys and key stores are mode 600.
The server certificate names ``127.0.0.1`` and ``localhost`` (the stack listens on loopback
only), so clients check both the chain and the host name. Kafka reads the certificate from
a PKCS#12 key store; ClickHouse reads the PEM files.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from deploy.local.process import StackError, run_checked
from deploy.local.tools import say

DAYS = 825  # the longest validity current TLS clients accept for a server certificate


@dataclass(frozen=True)
class Certificates:
    folder: Path

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients trust (public)."""
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    @property
    def dh_params(self) -> Path:
        return self.folder / "dhparam.pem"

    @property
    def keystore(self) -> Path:
        """The server key and certificate chain as PKCS#12, for Kafka."""
        return self.folder / "server.p12"

    @property
    def keystore_password_file(self) -> Path:
        return self.folder / "server.p12.password"

    def keystore_password(self) -> str:
        return self.keystore_password_file.read_text().strip()

    def ensure(self) -> None:
        """Make whatever is missing; existing material is kept (clients keep trusting it)."""
        make_private_folder(self.folder)
        if not self.ca_file.exists():
            say(f"making a local certificate authority in {self.folder}")
            _openssl(
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                "-keyout", self.ca_key, "-out", self.ca_file, "-days", DAYS,
                "-subj", "/CN=stockflow local CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            )  # fmt: skip
            self.server_cert.unlink(missing_ok=True)
        if not self.server_cert.exists():
            csr = self.folder / "server.csr"
            ext = self.folder / "server.ext"
            ext.write_text(
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth,clientAuth\n"
                "basicConstraints=CA:FALSE\n"
            )
            _openssl(
                "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
                "-keyout", self.server_key, "-out", csr, "-subj", "/CN=localhost",
            )  # fmt: skip
            _openssl(
                "x509", "-req", "-in", csr, "-CA", self.ca_file, "-CAkey", self.ca_key,
                "-CAcreateserial", "-out", self.server_cert, "-days", DAYS, "-sha256",
                "-extfile", ext,
            )  # fmt: skip
            csr.unlink()
            ext.unlink()
            self.keystore.unlink(missing_ok=True)
        if not self.keystore.exists():
            write_private(self.keystore_password_file, secrets.token_urlsafe(24) + "\n")
            # the password goes to openssl through a file descriptor, not its command line
            _openssl(
                "pkcs12", "-export", "-in", self.server_cert, "-inkey", self.server_key,
                "-certfile", self.ca_file, "-name", "server", "-out", self.keystore,
                "-passout", f"file:{self.keystore_password_file}",
            )  # fmt: skip
        if not self.dh_params.exists():
            _openssl("dhparam", "-dsaparam", "-out", self.dh_params, "2048")
        for key in (self.ca_key, self.server_key, self.keystore):
            key.chmod(0o600)


def make_private_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created so, never world-readable for a moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def _openssl(*args: object) -> None:
    try:
        run_checked(["openssl", *(str(a) for a in args)], what=f"openssl {args[0]}")
    except StackError as exc:
        raise StackError(f"{exc}\n(the secure stack makes its certificates with openssl)") from None


def clickhouse_tls_config(config: str, certs: Certificates) -> str:
    """ClickHouse's config with its ports switched to TLS: the native port becomes
    ``tcp_port_secure`` and the HTTP port ``https_port`` (the same numbers), served with the
    stack's certificate. Nothing stays on a plaintext port."""
    for plain, secure in (("tcp_port", "tcp_port_secure"), ("http_port", "https_port")):
        if f"<{plain}>" not in config:
            raise StackError(f"the ClickHouse config template has no <{plain}> to secure")
        config = config.replace(f"<{plain}>", f"<{secure}>").replace(f"</{plain}>", f"</{secure}>")
    tls = f"""    <openSSL>
        <server>
            <certificateFile>{certs.server_cert}</certificateFile>
            <privateKeyFile>{certs.server_key}</privateKeyFile>
            <dhParamsFile>{certs.dh_params}</dhParamsFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
"""
    return config.replace("</yandex>", tls + "</yandex>")
