"""A MongoDB-wire-protocol server for the archive tests (test_archive_mongo.py).

No MongoDB server is in the package registries this machine reaches, so the
tests run the MongoDB sink against Debian's python3-mockupdb (the wire
protocol: handshake, OP_MSG with document sequences, replies) over
python3-mongomock (the query engine: unique _id, indexes, filters, sort).
This file is both the fixture and the server: run as a script, it serves on
a loopback port and takes commands on stdin, so a test can take the server
down and bring it back while its data stays (a database restart, as far as
a client can tell):

    down      close the listening socket and every connection
    up        listen again on the same port
    quit      stop

Only the commands the sink and pymongo send are answered: the handshake,
ping, insert (with ordered: false, a duplicate _id is a write error 11000
and the rest go in), createIndexes, find (one batch), and every other one
with ok: 1. The tests read back through the protocol, with pymongo.
"""

import os
import subprocess
import sys
import time

if __name__ == "__main__":
    import mockupdb
    import mongomock
    from bson import SON

    class Server:
        def __init__(self, port):
            self.port = port
            self.client = mongomock.MongoClient()
            self.mock = None

        def up(self):
            self.mock = mockupdb.MockupDB(port=self.port, auto_ismaster=False)
            self.mock.autoresponds(self.handle)
            self.mock.run()

        def down(self):
            if self.mock:
                self.mock.stop()
                self.mock = None

        def handle(self, r):
            name = r.command_name.lower() if r.command_name else ""
            doc = r.doc
            if name in ("ismaster", "hello"):
                return r.reply({"ismaster": True, "isWritablePrimary": True,
                                "maxWireVersion": 13, "minWireVersion": 0,
                                "maxBsonObjectSize": 16777216,
                                "maxMessageSizeBytes": 48000000,
                                "maxWriteBatchSize": 100000, "ok": 1})
            db = self.client[r.namespace.split(".")[0] if r.namespace else "test"]
            if name == "insert":
                coll = db[doc["insert"]]
                errors, n = [], 0
                for i, d in enumerate(doc.get("documents", [])):
                    try:
                        coll.insert_one(d)
                        n += 1
                    except mongomock.DuplicateKeyError as e:
                        errors.append({"index": i, "code": 11000, "errmsg": str(e)})
                        if doc.get("ordered", True):
                            break
                reply = {"n": n, "ok": 1}
                if errors:
                    reply["writeErrors"] = errors
                return r.reply(reply)
            if name == "createindexes":
                coll = db[doc["createIndexes"]]
                for ix in doc["indexes"]:
                    coll.create_index(list(ix["key"].items()), name=ix.get("name"),
                                      unique=ix.get("unique", False))
                return r.reply({"ok": 1})
            if name == "find":
                coll = db[doc["find"]]
                cur = coll.find(doc.get("filter", {}))
                if doc.get("sort"):
                    cur = cur.sort(list(doc["sort"].items()))
                if doc.get("limit"):
                    cur = cur.limit(abs(int(doc["limit"])))
                batch = list(cur)
                return r.reply({"cursor": {"id": 0, "ns": "%s.%s" % (db.name, doc["find"]),
                                           "firstBatch": batch}, "ok": 1})
            if name == "drop":
                db[doc["drop"]].drop()
            return r.reply({"ok": 1})

    s = Server(int(sys.argv[1]))
    s.up()
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "down":
            s.down()
        elif cmd == "up":
            s.up()
        elif cmd == "quit":
            break
        print("ok", flush=True)
    s.down()
    sys.exit(0)

import pytest  # noqa: E402

from conftest import free_port  # noqa: E402


class MongoMock:
    def __init__(self):
        try:
            import mockupdb  # noqa: F401
            import mongomock  # noqa: F401
            import pymongo  # noqa: F401
        except ImportError:
            pytest.skip("python3-mockupdb / python3-mongomock are not installed "
                        "(scripts/deps.sh test)")
        self.port = free_port()
        self.url = "mongodb://127.0.0.1:%d/iot?appname=ternd" % self.port
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                      str(self.port)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def _cmd(self, c):
        self.proc.stdin.write(c + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def down(self):
        self._cmd("down")

    def up(self):
        self._cmd("up")

    def collection(self, name="history"):
        import pymongo
        c = pymongo.MongoClient("127.0.0.1", self.port, serverSelectionTimeoutMS=5000,
                                connect=True)
        return c, c["iot"][name]

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def mongo():
    mm = MongoMock()
    yield mm
    mm.close()
