"""TLS towards clients passes a modern checklist by default: TLS 1.2 or
newer, forward secrecy and AEAD only, no compression; a cipher list that
names nothing usable stops loftd with a message (loft.conf(5) TLS)."""
import socket
import ssl
import subprocess
import warnings

import pytest

from conftest import LOFT_IP
from imaputil import IMAPS


def handshake(port, ca, configure):
    """Returns the negotiated (version, cipher) or raises ssl.SSLError."""
    ctx = ssl.create_default_context(cafile=ca)
    configure(ctx)
    with socket.create_connection((LOFT_IP, port), 10) as raw:
        with ctx.wrap_socket(raw, server_hostname=LOFT_IP) as s:
            assert s.compression() is None
            return s.version(), s.cipher()[0]


def only(version, ciphers=None):
    def configure(ctx):
        ctx.minimum_version = ctx.maximum_version = version
        if ciphers is not None:
            ctx.set_ciphers(ciphers)
    return configure


def test_tls13_and_strong_tls12_are_accepted(loft, cluster):
    ca = cluster.certs["ca"]
    assert handshake(loft.tls_port, ca, only(ssl.TLSVersion.TLSv1_3))[0] == "TLSv1.3"
    version, cipher = handshake(loft.tls_port, ca, only(ssl.TLSVersion.TLSv1_2))
    assert version == "TLSv1.2"
    assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher)
    s = IMAPS(LOFT_IP, loft.tls_port, ssl_context=ssl.create_default_context(cafile=ca),
              timeout=10)
    assert s.login("user37", "pass")[0] == "OK"
    s.logout()


@pytest.mark.parametrize("ciphers", [
    "AES128-SHA:AES256-GCM-SHA384",          # RSA key exchange: no forward secrecy
    "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384",  # CBC
    "DHE-RSA-AES128-GCM-SHA256",             # finite-field DHE
])
def test_weak_tls12_ciphers_are_refused(loft, cluster, ciphers):
    with pytest.raises(ssl.SSLError):
        handshake(loft.tls_port, cluster.certs["ca"],
                  only(ssl.TLSVersion.TLSv1_2, ciphers + ":@SECLEVEL=0"))


def test_tls11_is_refused(loft, cluster):
    def tls11(ctx):
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # that is the point
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        handshake(loft.tls_port, cluster.certs["ca"], tls11)


@pytest.mark.parametrize("key", ["tls.ciphers", "backend.ssl_ciphers"])
def test_unusable_cipher_list_stops_loftd(loft_factory, key):
    loft = loft_factory(start=False)
    extra = ["-o", "backend.ssl=starttls"] if key.startswith("backend") else []
    r = subprocess.run([loft.binary(), "-c", loft.conf, "-o", key + "=NO-SUCH-CIPHER"] + extra,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert '%s "NO-SUCH-CIPHER": no usable cipher' % key in r.stdout + r.stderr
