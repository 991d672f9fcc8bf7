"""A small SMTP server that accepts every message: what the Dovecot
backends' submission service relays to, in the tests and the demo.

    python3 smtpsink.py <address> <port> <directory>   (one file per message)
"""
import os
import socketserver
import sys
import threading
import time


class _Handler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        sink = self.server.sink
        mail_from, rcpts = None, []
        self.reply("220 sink ESMTP")
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "LHLO"):
                self.reply("250-sink\r\n250-8BITMIME\r\n250 PIPELINING")
            elif verb == "HELO":
                self.reply("250 sink")
            elif verb == "MAIL":
                mail_from, rcpts = line[10:].strip(), []
                self.reply("250 2.1.0 OK")
            elif verb == "RCPT":
                rcpts.append(line[8:].strip())
                self.reply("250 2.1.5 OK")
            elif verb == "DATA":
                self.reply("354 go ahead")
                data = b""
                while not data.endswith(b"\r\n.\r\n") and data != b".\r\n":
                    chunk = self.rfile.readline(65536)
                    if not chunk:
                        return
                    data += chunk
                sink.store(mail_from, rcpts, data[:-3])
                self.reply("250 2.0.0 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 2.0.0 OK")
            elif verb == "QUIT":
                self.reply("221 2.0.0 bye")
                return
            else:
                self.reply("502 5.5.2 not here")


class SmtpSink:
    """Runs in a thread; messages are (from, [rcpt], bytes)."""

    def __init__(self, address, port, directory=None):
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer((address, port), _Handler)
        self.server.daemon_threads = True
        self.server.sink = self
        self.directory = directory
        self.messages = []
        self.lock = threading.Lock()

    def store(self, mail_from, rcpts, data):
        with self.lock:
            self.messages.append((mail_from, rcpts, data))
            if self.directory is not None:
                name = os.path.join(self.directory, "%d-%d.eml" % (time.time(), len(self.messages)))
                with open(name, "wb") as f:
                    f.write(data)

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    os.makedirs(sys.argv[3], exist_ok=True)
    SmtpSink(sys.argv[1], int(sys.argv[2]), sys.argv[3]).server.serve_forever()
