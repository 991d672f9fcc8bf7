"""The local setups behind scripts/demo, in a directory of their own
(LOFT_DEMO_DIR, default /tmp/loft-demo) on the loopback addresses of one
/24 (LOFT_DEMO_NET, default 127.0.0):

  demo.py         three Dovecot backends on .11-13 and loftd on .1
  demo.py ring    the same backends, a private 3-member etcd on .51-53 and
                  three loftd nodes on .1-.3 forming one director ring,
                  all under LOFT_DEMO_DIR/ring
  demo.py stop    stops whichever of them runs

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
import etcdlib  # noqa: E402
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

# the ring: its nodes listen as the single loftd does, each on its own address
RING_BASE = os.path.join(BASE, "ring")
RING_IPS = ["%s.%d" % (NET, i) for i in (1, 2, 3)]
RING_PORT = 9090                # only named in `director ring status`
ETCD_FIRST = 51                 # etcd members on .51-53, ports 2379 and 2380
STOP_TIMEOUT = 15

CONF = """\
# loft demo: {title}
base_dir = "{base}/run";
{state_dir}
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
{ring}"""

HEALTH = """
             health = { interval = "5s"; timeout = "3s"; };"""

# health checks are not ring-wide yet (doc/ring.md §7): a ring's nodes
# run without them
RING = """\
# the director ring: the nodes share the host list, pins and host changes in
# etcd, answer each other's who/kick over links that prove the secret, and
# serve on while the whole of etcd is down (failsafe, doc/ring.md §13)
ring = {{ etcd = [ {endpoints} ]; port = {ring_port}; secret = "{secret}";
         partition = "failsafe"; }};
"""


def loft_conf(title, base, ip, cluster, health="", ring=""):
    # a ring's host list lives in etcd: its nodes keep nothing in a state_dir
    state_dir = ('state_dir = "";                  # the host list lives in etcd' if ring
                 else 'state_dir = "%s/state";' % base)
    return CONF.format(title=title, base=base, ip=ip, port=LOFT_PORT, state_dir=state_dir,
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
                       health=health, ring=ring)


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


def ring_nodes():
    return [os.path.join(RING_BASE, "node%d" % (i + 1)) for i in range(len(RING_IPS))]


def etcd_members():
    return etcdlib.EtcdCluster(os.path.join(RING_BASE, "etcd"), NET, first=ETCD_FIRST,
                               name="demo").members


def stop():
    """Stops whatever runs: the ring (its nodes first, so they leave the
    ring while etcd still answers, then etcd) and the single loftd."""
    if os.path.isdir(RING_BASE):
        stop_pids([(os.path.join(d, "loftd.pid"), "loftd " + os.path.basename(d))
                   for d in ring_nodes()])
        # one at a time: members stopped at once keep the leader trying
        # for seconds to hand its leadership to a member that is leaving
        for m in etcd_members():
            stop_pids([(m.data_dir + ".pid", "etcd " + m.name)])
        stop_pids([(os.path.join(RING_BASE, "smtpsink.pid"), "the SMTP sink")])
        stop_backends(RING_BASE)
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


def ring_status(admin):
    """`director ring status` rows on one node: [ip, port, type, last
    failed, status, ...]."""
    r = loftlib.loftadm("-a", admin, "-f", "tab", "director", "ring", "status")
    if r.returncode != 0:
        return []
    return [line.split("\t") for line in r.stdout.splitlines()[1:] if line]


def ring_synced(admin):
    """Every node listed, this one "ring synced", the others "synced"."""
    rows = ring_status(admin)
    want = sorted("%s:%d" % (ip, RING_PORT) for ip in RING_IPS)
    return (sorted("%s:%s" % (r[0], r[1]) for r in rows) == want and
            all(r[4] == ("ring synced" if r[2] == "self" else "synced") for r in rows))


def start_ring_etcd():
    """Three etcd members started as doc/ring.md §9 runs them (the flags
    the tests use, etcdlib), each with its data directory and log in
    RING_BASE/etcd; waits until every member answers a linearizable read."""
    members = etcd_members()
    procs = []
    for m in members:
        os.makedirs(os.path.dirname(m.data_dir), exist_ok=True)
        procs.append(spawn(m.args(), m.log, m.data_dir + ".pid"))
    loftlib.wait_for(lambda: any(p.poll() is not None for p in procs) or
                     all(m.is_ready() for m in members), 30, "etcd to answer")
    for m, p in zip(members, procs):
        if p.poll() is not None:
            raise RuntimeError("etcd %s exited %d; see %s" % (m.name, p.returncode, m.log))
    return members


def start_ring():
    stop()
    shutil.rmtree(BASE, ignore_errors=True)
    os.makedirs(RING_BASE)
    os.chmod(BASE, 0o755)   # the backends' login processes run as dovenull
    try:
        cluster = start_backends(RING_BASE, RING_IPS)
        members = start_ring_etcd()
        endpoints = ", ".join('"%s"' % m.client_url for m in members)
        secret = os.urandom(24).hex()   # the same for the three nodes
        nodes = []
        for i, (ip, d) in enumerate(zip(RING_IPS, ring_nodes())):
            os.makedirs(d)
            conf = os.path.join(d, "loft.conf")
            with open(conf, "w") as f:
                f.write(loft_conf("node %d of a director ring of three (scripts/demo ring)"
                                  % (i + 1), d, ip, cluster,
                                  ring=RING.format(endpoints=endpoints,
                                                   ring_port=RING_PORT,
                                                   secret=secret)))
            proc = spawn([os.path.join(BUILD, "loftd"), "-c", conf],
                         os.path.join(d, "loftd.log"), os.path.join(d, "loftd.pid"))
            nodes.append((ip, d, proc, os.path.join(d, "run", "admin")))
        # a node listens at once but serves only once it has joined and
        # read the ring's state: wait until each lists all three, synced
        for ip, d, proc, admin in nodes:
            loftlib.wait_for(lambda: proc.poll() is not None or
                             (os.path.exists(admin) and ring_synced(admin)),
                             30, "loftd on %s to join the ring" % ip)
            if proc.poll() is not None:
                raise RuntimeError("loftd on %s exited %d; see %s/loftd.log"
                                   % (ip, proc.returncode, d))
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as e:
        sys.stdout.flush()
        print("the ring did not start: %s; stopping what did" % e, file=sys.stderr)
        stop()
        sys.exit(1)
    n1, n2, n3 = (n[3] for n in nodes)
    print("""
loft is running as a director ring: three loftd nodes in front of Dovecot
backends be1..be3 on {backends} (IMAP port {bport}),
sharing their state in a private 3-member etcd. Users user1..user20,
password "pass".

  etcd:  {etcd}
""".format(backends=", ".join(BACKENDS), bport=BACKEND_PORT,
           etcd=", ".join(m.client_url for m in members)))
    for i, (ip, d, proc, admin) in enumerate(nodes):
        print("  node{n}: loftd (pid {pid}) on {ip}, admin socket {admin}".format(
            n=i + 1, pid=proc.pid, ip=ip, admin=admin))
    print("""
  Each node has the single demo's listeners on its own address: IMAP
  {port} (STARTTLS) and {tls_port} (TLS), POP3 {pop3_port} (STLS) and {pop3s_port} (TLS),
  ManageSieve {sieve_port}, Submission {submission_port}, LMTP {lmtp_port}.

  Every node sends a user to the same backend (three times "x-backend" "be1"):
      for ip in {ips}; do curl -s imap://$ip:{port}/ --user user1:pass -X 'ID NIL'; done
  Any node lists (and kicks) the sessions of all three, naming the node:
      {build}/loftadm -a {n2} who -1
  Every node lists the three members of the ring, synced:
      doveadm director ring status -a {n1}
      {build}/loftadm -a {n2} director ring status
  A host change made on one node is answered once every node has applied it
  ({new} has no Dovecot: with 0 vhosts nobody is sent there; `director
  update`, `up` and `down` travel the same way):
      {build}/loftadm -a {n1} director add {new} 0
      {build}/loftadm -a {n2} director status
      doveadm director status -a {n3}
      {build}/loftadm -a {n3} director remove {new}
  Logs:   {rb}/node*/loftd.log, {rb}/etcd/m*.log, {rb}/be*/dovecot.log
  Stop:   ./scripts/demo stop
""".format(port=LOFT_PORT, tls_port=LOFT_TLS_PORT, pop3_port=LOFT_POP3_PORT,
           pop3s_port=LOFT_POP3S_PORT, sieve_port=LOFT_SIEVE_PORT,
           submission_port=LOFT_SUBMISSION_PORT, lmtp_port=LOFT_LMTP_PORT,
           ips=" ".join(RING_IPS), n1=n1, n2=n2, n3=n3, build=BUILD,
           new=NET + ".14", rb=RING_BASE))


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "single"
    if what == "stop":
        stop()
    elif what == "ring":
        start_ring()
    elif what == "single" and len(sys.argv) == 1:
        start()
    else:
        sys.exit("usage: scripts/demo [ring|stop]")
