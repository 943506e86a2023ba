"""Authentication (password_file, allow_anonymous) and authorization
(acl_file), in mosquitto's formats and with mosquitto's meanings; SIGHUP
reloads both without dropping connections. Password files are made with
Debian's mosquitto_passwd, so the format is checked against the reference
tool, not against our own writer."""

import os
import signal
import subprocess
import time

import pytest

import mqtt_raw as m

pytestmark = pytest.mark.ternd_only

ACL = """\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic read shared/#
topic write shared/alice
topic deny alice/secret

user bob
topic read shared/#
topic write will/bob

pattern readwrite dev/%c/#
"""


def write_passwd(path, users):
    first = True
    for user, pw in users.items():
        args = ["mosquitto_passwd", "-b"] + (["-c"] if first else []) + [path, user, pw]
        subprocess.run(args, check=True, capture_output=True)
        first = False


@pytest.fixture
def auth_broker(request, tmp_path):
    from conftest import Broker
    pw = str(tmp_path / "passwd")
    write_passwd(pw, {"alice": "wonderland", "bob": "builder"})
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    b = Broker(tmp_path, 2, ["password_file " + pw, "acl_file " + str(acl),
                             "allow_anonymous true", "storage memory"])
    b.pw, b.acl = pw, str(acl)
    b.start()
    yield b
    b.stop()


def login(broker, user, pw, version=m.V311, cid=None, expect=0, **kw):
    c = broker.raw(version)
    kwargs = dict(kw)
    if user is not None:
        kwargs["username"] = user
    if pw is not None:
        kwargs["password"] = pw.encode()
    ack = c.connect(cid or "c-%s-%d" % (user, version), expect_rc=None, **kwargs)
    assert ack.rc == expect, ack
    return c


@pytest.mark.parametrize("version,bad,anon", [(m.V311, 0x04, 0x05), (m.V5, 0x86, 0x87)])
def test_password_file_and_allow_anonymous(tmp_path, version, bad, anon):
    """Right password: in. Wrong password or unknown user: CONNACK 0x86 (v5)
    / 0x04 (3.1.1). No username with allow_anonymous false: 0x87 / 0x05."""
    from conftest import Broker
    pw = str(tmp_path / "passwd")
    write_passwd(pw, {"alice": "wonderland"})
    b = Broker(tmp_path, 1, ["password_file " + pw, "allow_anonymous false", "storage memory"])
    b.start()
    try:
        login(b, "alice", "wonderland", version).disconnect()
        login(b, "alice", "wrong", version, expect=bad)
        login(b, "mallory", "wonderland", version, expect=bad)
        login(b, "alice", None, version, expect=bad)
        login(b, None, None, version, expect=anon)
    finally:
        b.stop()


def test_acl_publish_denied_v5_gets_0x87_and_is_not_delivered(auth_broker):
    """A PUBLISH the ACL denies is dropped; v5 says so with PUBACK 0x87,
    3.1.1 gets a plain PUBACK (it cannot say more), as in mosquitto."""
    reader = login(auth_broker, "alice", "wonderland", cid="reader")
    assert reader.subscribe([("shared/#", 1)]).codes == [1]
    v5 = login(auth_broker, "bob", "builder", m.V5, cid="bob5")
    assert v5.publish("shared/x", b"no", qos=1).rc == 0x87
    v3 = login(auth_broker, "bob", "builder", m.V311, cid="bob3")
    assert v3.publish("shared/y", b"no", qos=1).rc == 0
    ok = login(auth_broker, "alice", "wonderland", m.V5, cid="alice5")
    assert ok.publish("shared/alice", b"yes", qos=1, pid=3).rc == 0
    got = [p.payload for p in reader.recv_all(0.8) if p.type == m.PUBLISH]
    assert got == [b"yes"]
    for c in (reader, v5, v3, ok):
        c.disconnect()


@pytest.mark.parametrize("version,code", [(m.V311, 0x80), (m.V5, 0x87)])
def test_acl_subscribe_denied(auth_broker, version, code):
    """A SUBSCRIBE whose filter matches no topic the ACL lets the client read
    gets 0x87 (v5) / 0x80 (3.1.1); the other filters in the same packet are
    granted, "#" too, since bob may read shared/# (what "#" then delivers
    is checked message by message, test_acl.py)."""
    c = login(auth_broker, "bob", "builder", version)
    assert c.subscribe([("shared/#", 1), ("alice/#", 1), ("#", 0)]).codes == [1, code, 0]
    c.disconnect()


def test_acl_checks_every_delivery_including_retained(auth_broker):
    """Read access is checked for each message delivered, retained ones too:
    alice may read alice/# except alice/secret (deny)."""
    w = login(auth_broker, "alice", "wonderland", cid="alice-w")
    w.publish("alice/open", b"o", qos=1, retain=True)
    w.publish("alice/secret", b"s", qos=1, retain=True)
    r = login(auth_broker, "alice", "wonderland", cid="alice-r")
    r.subscribe([("alice/open", 1), ("alice/secret", 1)])
    got = [p.payload for p in r.early + r.recv_all(0.8) if p.type == m.PUBLISH]
    assert got == [b"o"]
    w.disconnect()
    r.disconnect()


def test_acl_anonymous_rules_and_patterns(auth_broker):
    """Rules before any `user` line are for anonymous clients; `pattern`
    rules apply to everyone with %c replaced by the client id."""
    anon = login(auth_broker, None, None, cid="anon1")
    assert anon.subscribe([("public/#", 0), ("shared/#", 0)]).codes == [0, 0x80]
    assert anon.subscribe([("dev/anon1/#", 1)], pid=2).codes == [1]
    assert anon.subscribe([("dev/other/#", 1)], pid=3).codes == [0x80]
    anon.disconnect()


def test_will_topic_checked_at_connect(auth_broker):
    """A will on a topic the client may not write is refused at CONNECT."""
    login(auth_broker, "bob", "builder", m.V5, cid="will-bad",
          will={"topic": "alice/x", "payload": b"w"}, expect=0x87)
    login(auth_broker, "bob", "builder", m.V5, cid="will-ok",
          will={"topic": "will/bob", "payload": b"w"}).disconnect()


def test_sighup_reloads_without_dropping_connections(auth_broker):
    """SIGHUP reloads password and ACL files; connected clients stay
    connected; a bad file on reload keeps the old one and the log says
    why."""
    keep = login(auth_broker, "alice", "wonderland", cid="keeper")
    write_passwd(auth_broker.pw, {"alice": "newpass", "bob": "builder"})
    os.kill(auth_broker.proc.pid, signal.SIGHUP)
    time.sleep(0.5)
    login(auth_broker, "alice", "wonderland", expect=0x04, cid="old-pw")
    login(auth_broker, "alice", "newpass", cid="new-pw").disconnect()
    keep.send(m.pingreq())
    assert keep.recv_type(m.PINGRESP)
    # A broken ACL file: the reload is refused, the old rules stay.
    with open(auth_broker.acl, "w") as f:
        f.write("topic sideways a/b\nuser\n")
    os.kill(auth_broker.proc.pid, signal.SIGHUP)
    time.sleep(0.5)
    c = login(auth_broker, "bob", "builder", cid="bob-after")
    assert c.subscribe([("shared/#", 1)]).codes == [1]
    c.disconnect()
    with open(auth_broker.log) as f:
        assert "previous password and ACL files stay in force" in f.read()
    keep.disconnect()
