"""The local setup behind scripts/demo: three Dovecot backends and loftd,
in a directory of their own (LOFT_DEMO_DIR, default /tmp/loft-demo)."""
import os
import shutil
import signal
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import loftlib  # noqa: E402

BASE = os.environ.get("LOFT_DEMO_DIR", "/tmp/loft-demo")
BACKENDS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
BACKEND_PORT = 1143
LOFT_IP, LOFT_PORT, LOFT_TLS_PORT = "127.0.0.1", 10143, 10993
LOFT_POP3_PORT, LOFT_POP3S_PORT = 10110, 10995
LOFT_SIEVE_PORT = 14190
LOFT_SUBMISSION_PORT = 10587
LOFT_LMTP_PORT = 10024
SINK_PIDFILE = os.path.join(BASE, "smtpsink.pid")
PIDFILE = os.path.join(BASE, "loftd.pid")

CONF = """\
# loft demo: loftd in front of three Dovecot backends (scripts/demo)
base_dir = "{base}/run";
state_dir = "{base}/state";
user = "nobody";                 # after start-up loftd runs as nobody
listeners = (
  {{ protocol = "imap"; address = "{ip}"; port = {port}; }},
  {{ protocol = "imap"; address = "{ip}"; port = {tls_port}; tls = true; }},
  {{ protocol = "pop3"; address = "{ip}"; port = {pop3_port}; }},
  {{ protocol = "pop3"; address = "{ip}"; port = {pop3s_port}; tls = true; }},
  {{ protocol = "managesieve"; address = "{ip}"; port = {sieve_port}; }},
  {{ protocol = "submission"; address = "{ip}"; port = {submission_port}; }},
  {{ protocol = "lmtp"; address = "{ip}"; port = {lmtp_port}; }}
);
tls = {{ cert = "{cert}"; key = "{key}"; }};
# "user5@loft.test" is user5, for LMTP recipients as for logins
auth = {{ username_format = "%Ln"; }};
login = {{ trusted_networks = [ "127.0.0.0/8" ]; disable_plaintext_auth = false; timeout = "60s"; }};
passdb = ( {{ driver = "backend"; }} );   # the backends check the passwords
director = {{ mail_servers = [ {servers} ]; user_expire = "15m"; username_hash = "%Lu";
             health = {{ interval = "5s"; timeout = "3s"; }}; }};
backend = {{ imap_port = {bport}; pop3_port = {bpop3}; managesieve_port = {bsieve};
            submission_port = {bsubmission}; lmtp_port = {blmtp}; ssl = "no"; }};
"""


def stop_pid(pidfile, what):
    try:
        pid = int(open(pidfile).read())
        os.kill(pid, signal.SIGTERM)
        loftlib.wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10, what + " to stop")
        print("stopped %s (pid %d)" % (what, pid))
    except (OSError, ValueError):
        pass


def stop():
    stop_pid(PIDFILE, "loftd")
    stop_pid(SINK_PIDFILE, "the SMTP sink")
    if os.path.isdir(BASE):
        cluster = loftlib.Cluster.__new__(loftlib.Cluster)
        cluster.backends = [loftlib.Backend(BASE, "be%d" % (i + 1), ip, BACKEND_PORT, None)
                            for i, ip in enumerate(BACKENDS)]
        cluster.stop()
        print("stopped the Dovecot backends")


def start():
    stop()
    shutil.rmtree(BASE, ignore_errors=True)
    users = {"user%d" % i: "pass" for i in range(1, 21)}
    cluster = loftlib.Cluster(BASE, BACKENDS, BACKEND_PORT, users, ssl="no",
                              cert_ips=[LOFT_IP])
    # the backends' submission relays to a sink that keeps every message
    relay_host, relay_port = cluster.relay_ip, cluster.backends[0].relay_port
    sink = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "integration",
                                                          "smtpsink.py"),
                             relay_host, str(relay_port), os.path.join(BASE, "relayed")],
                            stdin=subprocess.DEVNULL,
                            stdout=open(os.path.join(BASE, "smtpsink.log"), "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    with open(SINK_PIDFILE, "w") as f:
        f.write("%d\n" % sink.pid)
    loftlib.wait_for(lambda: loftlib.port_open(relay_host, relay_port), 10, "the SMTP sink")
    cluster.start(sink=False)
    conf = os.path.join(BASE, "loft.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(base=BASE, ip=LOFT_IP, port=LOFT_PORT, tls_port=LOFT_TLS_PORT,
                            cert=cluster.certs["cert"], key=cluster.certs["key"],
                            servers=", ".join('"%s"' % ip for ip in BACKENDS),
                            bport=BACKEND_PORT, bpop3=BACKEND_PORT + loftlib.POP3_OFFSET,
                            pop3_port=LOFT_POP3_PORT, pop3s_port=LOFT_POP3S_PORT,
                            sieve_port=LOFT_SIEVE_PORT,
                            bsieve=BACKEND_PORT + loftlib.SIEVE_OFFSET,
                            submission_port=LOFT_SUBMISSION_PORT,
                            bsubmission=BACKEND_PORT + loftlib.SUBMISSION_OFFSET,
                            lmtp_port=LOFT_LMTP_PORT,
                            blmtp=BACKEND_PORT + loftlib.LMTP_OFFSET))
    log = open(os.path.join(BASE, "loftd.log"), "ab")
    proc = subprocess.Popen([os.path.join(REPO, "build", "loftd"), "-c", conf],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    with open(PIDFILE, "w") as f:
        f.write("%d\n" % proc.pid)
    loftlib.wait_for(lambda: proc.poll() is not None or loftlib.port_open(LOFT_IP, LOFT_PORT),
                     10, "loftd to listen")
    if proc.poll() is not None:
        sys.exit("loftd failed to start; see %s/loftd.log" % BASE)
    admin = os.path.join(BASE, "run", "admin")
    print("""
loft is running: loftd (pid {pid}) in front of Dovecot backends be1..be3 on
{backends} (IMAP port {bport}); users user1..user20, password "pass".

  IMAP:        {ip}:{port} (STARTTLS), {ip}:{tls_port} (implicit TLS)
  POP3:        {ip}:{pop3_port} (STLS), {ip}:{pop3s_port} (implicit TLS)
  ManageSieve: {ip}:{sieve_port} (STARTTLS)
  Submission:  {ip}:{submission_port} (STARTTLS); the backends relay to a sink
               that stores each message in {base}/relayed
  LMTP:        {ip}:{lmtp_port}, delivering to each recipient's backend
  Try:         curl -s imap://{ip}:{port}/ --user user1:pass -X 'ID NIL'
               (the reply names the backend: "x-backend" "be1")
               curl -s --cacert {ca} imaps://{ip}:{tls_port}/INBOX --user user2:pass -X 'EXAMINE INBOX'
               curl -s pop3://{ip}:{pop3_port}/ --user user3:pass     (lists the messages)
               curl -s smtp://{ip}:{submission_port} --user user4:pass --mail-from user4@loft.test \\
                    --mail-rcpt you@example.net -T /etc/hostname
               python3 -c 'import smtplib; smtplib.LMTP("{ip}", {lmtp_port}).sendmail("", ["user5@loft.test"], "Subject: hi\\r\\n\\r\\nhello\\r\\n")'
               curl -s imap://{ip}:{port}/INBOX --user user5:pass -X 'SEARCH ALL'
  Sessions:    {repo}/build/loftadm -a {admin} who
  Backends:    {repo}/build/loftadm -a {admin} director status
               (or Dovecot's own: doveadm director status -a {admin})
  Logs:        {base}/loftd.log, {base}/be*/dovecot.log
  Stop:        ./scripts/demo stop
""".format(pid=proc.pid, backends=", ".join(BACKENDS), bport=BACKEND_PORT, ip=LOFT_IP,
           port=LOFT_PORT, tls_port=LOFT_TLS_PORT, pop3_port=LOFT_POP3_PORT,
           pop3s_port=LOFT_POP3S_PORT, sieve_port=LOFT_SIEVE_PORT,
           submission_port=LOFT_SUBMISSION_PORT, lmtp_port=LOFT_LMTP_PORT,
           ca=cluster.certs["ca"], admin=admin,
           repo=REPO, base=BASE))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "stop":
        stop()
    else:
        start()
