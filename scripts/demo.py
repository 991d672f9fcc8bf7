"""The local setup behind scripts/demo: three Dovecot backends on .11-13
and loftd on .1, in a directory of their own (LOFT_DEMO_DIR, default
/tmp/loft-demo) on the loopback addresses of one /24 (LOFT_DEMO_NET,
default 127.0.0); `demo.py stop` stops it.

Every process is started in a session of its own and named by a pid file;
stop signals a pid only while its command line still names the demo's
directory. Waits poll with a deadline, never a fixed sleep."""
import os
import shutil
import signal
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import loftlib  # noqa: E402

BASE = os.environ.get("LOFT_DEMO_DIR", "/tmp/loft-demo")
NET = os.environ.get("LOFT_DEMO_NET", "127.0.0")
BUILD = loftlib.build_dir()
BACKENDS = ["%s.%d" % (NET, i) for i in (11, 12, 13)]
BACKEND_PORT = 1143
LOFT_IP, LOFT_PORT, LOFT_TLS_PORT = NET + ".1", 10143, 10993
LOFT_POP3_PORT, LOFT_POP3S_PORT = 10110, 10995
LOFT_SIEVE_PORT = 14190
LOFT_SUBMISSION_PORT = 10587
LOFT_LMTP_PORT = 10024
SINK_PIDFILE = os.path.join(BASE, "smtpsink.pid")
PIDFILE = os.path.join(BASE, "loftd.pid")

STOP_TIMEOUT = 15

CONF = """\
# loft demo: {title}
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
director = {{ mail_servers = [ {servers} ]; user_expire = "15m"; username_hash = "%Lu";{health} }};
backend = {{ imap_port = {bport}; pop3_port = {bpop3}; managesieve_port = {bsieve};
            submission_port = {bsubmission}; lmtp_port = {blmtp}; ssl = "no"; }};
"""

HEALTH = """
             health = { interval = "5s"; timeout = "3s"; };"""

def loft_conf(title, base, ip, cluster, health=""):
    return CONF.format(title=title, base=base, ip=ip, port=LOFT_PORT,
                       tls_port=LOFT_TLS_PORT,
                       cert=cluster.certs["cert"], key=cluster.certs["key"],
                       servers=", ".join('"%s"' % b for b in BACKENDS),
                       bport=BACKEND_PORT, bpop3=BACKEND_PORT + loftlib.POP3_OFFSET,
                       pop3_port=LOFT_POP3_PORT, pop3s_port=LOFT_POP3S_PORT,
                       sieve_port=LOFT_SIEVE_PORT,
                       bsieve=BACKEND_PORT + loftlib.SIEVE_OFFSET,
                       submission_port=LOFT_SUBMISSION_PORT,
                       bsubmission=BACKEND_PORT + loftlib.SUBMISSION_OFFSET,
                       lmtp_port=LOFT_LMTP_PORT,
                       blmtp=BACKEND_PORT + loftlib.LMTP_OFFSET,
                       health=health)


# -- processes named by pid files --

def is_ours(pid):
    """pid is alive and its command line names the demo's directory: a
    stale pid file never makes us signal someone else's process (a
    zombie's command line is empty: it counts as gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return (BASE.rstrip("/") + "/").encode() in f.read()
    except OSError:
        return False


def spawn(args, log, pidfile):
    """Starts args in a session of its own (it outlives this script and a
    ^C in the terminal), output appended to log; its pid in pidfile."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    with open(pidfile, "w") as f:
        f.write("%d\n" % proc.pid)
    return proc


def stop_pids(named):
    """named: [(pidfile, what)]. SIGTERM to all of them at once, then waits
    for each; one still there after STOP_TIMEOUT gets SIGKILL."""
    pids = []
    for pidfile, what in named:
        try:
            pid = int(open(pidfile).read())
        except (OSError, ValueError):
            continue
        if is_ours(pid):
            try:
                os.kill(pid, signal.SIGTERM)
                pids.append((pid, what))
            except ProcessLookupError:
                pass
    for pid, what in pids:
        try:
            loftlib.wait_for(lambda: not is_ours(pid), STOP_TIMEOUT, what + " to stop",
                             interval=0.05)
            print("stopped %s (pid %d)" % (what, pid))
        except TimeoutError:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            loftlib.wait_for(lambda: not is_ours(pid), 5, what + " to die", interval=0.05)
            print("killed %s (pid %d): no exit %d s after SIGTERM" % (what, pid,
                                                                       STOP_TIMEOUT))


def stop_backends(base):
    backends = [loftlib.Backend(base, "be%d" % (i + 1), ip, BACKEND_PORT, None)
                for i, ip in enumerate(BACKENDS)]
    # all masters shut down at once: each takes seconds on its own
    pids = [(b, b.signal_stop()) for b in backends]
    for b, pid in pids:
        if pid is not None:
            loftlib.Backend.wait_gone(pid, "dovecot %s to stop" % b.name)
    if any(pid is not None for _, pid in pids):
        print("stopped the Dovecot backends")


def stop():
    stop_pids([(PIDFILE, "loftd"), (SINK_PIDFILE, "the SMTP sink")])
    if os.path.isdir(BASE):
        stop_backends(BASE)


def start_backends(base, cert_ips):
    """The Dovecot backends in base and the SMTP sink their submission
    service relays to (on NET.1)."""
    users = {"user%d" % i: "pass" for i in range(1, 21)}
    cluster = loftlib.Cluster(base, BACKENDS, BACKEND_PORT, users, ssl="no",
                              cert_ips=cert_ips, relay_ip=LOFT_IP)
    relay_host, relay_port = cluster.relay_ip, cluster.backends[0].relay_port
    spawn([sys.executable, os.path.join(REPO, "tests", "integration", "smtpsink.py"),
           relay_host, str(relay_port), os.path.join(base, "relayed")],
          os.path.join(base, "smtpsink.log"), os.path.join(base, "smtpsink.pid"))
    loftlib.wait_for(lambda: loftlib.port_open(relay_host, relay_port), 10, "the SMTP sink")
    cluster.start(sink=False)
    return cluster


def start():
    stop()
    shutil.rmtree(BASE, ignore_errors=True)
    cluster = start_backends(BASE, [LOFT_IP])
    conf = os.path.join(BASE, "loft.conf")
    with open(conf, "w") as f:
        f.write(loft_conf("loftd in front of three Dovecot backends (scripts/demo)",
                          BASE, LOFT_IP, cluster, health=HEALTH))
    proc = spawn([os.path.join(BUILD, "loftd"), "-c", conf],
                 os.path.join(BASE, "loftd.log"), PIDFILE)
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
  Sessions:    {build}/loftadm -a {admin} who
  Backends:    {build}/loftadm -a {admin} director status
               (or Dovecot's own: doveadm director status -a {admin})
  Logs:        {base}/loftd.log, {base}/be*/dovecot.log
  Stop:        ./scripts/demo stop
""".format(pid=proc.pid, backends=", ".join(BACKENDS), bport=BACKEND_PORT, ip=LOFT_IP,
           port=LOFT_PORT, tls_port=LOFT_TLS_PORT, pop3_port=LOFT_POP3_PORT,
           pop3s_port=LOFT_POP3S_PORT, sieve_port=LOFT_SIEVE_PORT,
           submission_port=LOFT_SUBMISSION_PORT, lmtp_port=LOFT_LMTP_PORT,
           ca=cluster.certs["ca"], admin=admin, build=BUILD, base=BASE))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "stop":
        stop()
    else:
        start()
