"""The serial protocol on the board's side, on CPython and on MicroPython (docs/protocol.md).

The vectors below are the ones in docs/protocol.md (tests/test_protocol.py checks that both copies
agree). MicroPython's unittest subset only; every test is a method of a TestCase here.
"""
import struct
import unittest
from binascii import hexlify, unhexlify

from fw import auth, journal
from fw import kernel as k
from fw import protocol as P
from fw import main, pump, simboard
from fw import simboard as SIM

CRC_CHECK = ("123456789", 0xCBF43926)

# name, TYPE, SEQ, CMD, arguments, frame (hex)
FRAME_VECTORS = [
    ("hello-request", 1, 1, 32, [2], "7e020101002001020000009b486bac7e"),
    ("hello-reply", 2, 1, 32, [0, 2, 300, 1, 10080, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
     "7e02020100201500000000020000002c0100000100000060270000000000000000000000000000000000000000000000"
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000007129fc957e"
     ""),
    ("status-request", 1, 2, 33, [], "7e02010200210070f4fce77e"),
    ("setup-request", 1, 5, 1, [4242, 2, 70000, 0, 0], "7e0201050001059210000002000000701101000000000000000000e30fee1c7e"),
    ("bag-request", 1, 6, 2, [4242, 1, 220500, 113400, 600, 168, 1, 0, 0],
     "7e0201060002099210000001000000545d7d2300f8ba010058020000a8000000010000000000000000000000975fc773"
     "7e"),
    ("start-request-stuffed", 1, 894, 3, [], "7e02017d5e7d237d23002d13e1637e"),
    ("start-reply-stuffed", 2, 894, 3, [0], "7e02027d5e7d237d230100000000ec524ffa7e"),
    ("flush-reply-refused", 2, 9, 11, [19], "7e020209000b0113000000e4aacdc37e"),
    ("events-request", 1, 10, 34, [0], "7e02010a002201000000004d3dc0167e"),
    ("stop-reply-arity", 2, 11, 4, [103], "7e02020b000401670000008728e3947e"),
    ("nak-bad-crc", 4, 0, 0, [101], "7e02040000000165000000c6c70b8b7e"),
    ("event-bag-end", 3, 7, 5, [7, 10080, 0, 0], "7e027d2307000504070000006027000000000000000000001114ddf17e"),
    ("advance-request", 1, 12, 48, [1440], "7e02010c003001a0050000b44c11d57e"),
    ("fault-request-power-cut", 1, 13, 49, [5, -1], "7e02010d00310205000000ffffffff068a704c7e"),
]

# name, frame (hex), status of the NAK
REJECT_VECTORS = [
    ("bad-crc", "7e020101002001020000009b486bad7e", 101),
    ("too-short", "7e0201007e", 100),
    ("escape-then-flag", "7e02017d7e", 100),
]

# name, request (hex), complete answer of a freshly booted simulated board (hex)
EXCHANGE_VECTORS = [
    ("start-before-hello", "7e020114007d230013ba3c357e", "7e020214007d230168000000ee2b1e747e"),
    ("unknown-command", "7e020115006300d1b67d5de87e", "7e0202150063016600000019539f507e"),
    ("stop-wrong-arity", "7e0201160004005fe474d07e", "7e020216000401670000007d5d0c5d737e"),
    ("length-mismatch", "7e0201170004020100000029e297df7e", "7e020217000401640000000da342ad7e"),
    ("reply-type-from-host", "7e0202180021005b39f89f7e", "7e0202180021016400000024257d23237e"),
    ("version-3", "7e7d2301190021004bf7b8ab7e", "7e0202190021026b0000000200000042ebd9687e"),
    ("bad-crc", "7e020101002001020000009b486bad7e", "7e02040000000165000000c6c70b8b7e"),
    ("too-short", "7e0201007e", "7e02040000000164000000a3a0b7337e"),
    ("escape-then-flag", "7e02017d7e", "7e02040000000164000000a3a0b7337e"),
]

PID = 4242


def frame(ftype, seq, cmd, ints):
    return bytes(P.encode(bytearray(), ftype, seq, cmd, ints))


SIGNER = auth.Auth(simboard.sim_keys())     # the board's own HMAC, with the simulation keys
TRAILER = 2 + P.MAC_INTS                    # role, counter, MAC


def decode_all(data):
    """Every frame in data: (type, seq, cmd, ints) for good ones, ("bad", error) for others. A
    signed reply or event (TYPE 6, 7) must carry a MAC that holds under its role's simulation
    key: its ints are given without the trailer, and its role and counter are in `signed`."""
    dec = P.Decoder()
    out = []
    for b in data:
        r = dec.push(b)
        if r == P.FRAME:
            ver, ftype, seq, cmd, n = dec.header()
            ints = dec.ints(n) if n >= 0 else None
            if ftype == P.T_AUTH_REPLY or ftype == P.T_AUTH_EVENT:
                head = P.HEADER_BYTES + 4 * (n - TRAILER)
                mac = SIGNER.mac(ints[n - TRAILER], bytes(dec.buf[:head + 8]))
                assert bytes(dec.buf[head + 8:head + 8 + 32]) == mac, "signed frame with a bad MAC"
                signed.append((ints[n - TRAILER], ints[n - TRAILER + 1]))
                ints = ints[:n - TRAILER]
            out.append((ftype, seq, cmd, ints))
        elif r == P.BAD:
            out.append(("bad", dec.error))
    return out


signed = []         # (role, counter) of every signed frame decode_all checked


def role_for(cmd):
    """The role allowed to send cmd (docs/security.md); 0: HELLO needs none."""
    if cmd == P.CMD_HELLO:
        return 0
    if cmd == pump.CMD_BAG:
        return auth.ROLE_PHARMACY
    if cmd in pump.COMMANDS or cmd == P.CMD_MAINTENANCE:
        return auth.ROLE_CLINICIAN
    return auth.ROLE_BENCH


def signed_frame(seq, cmd, args, role, counter, key_role=0):
    """An authenticated request (TYPE 5): args, role, counter, HMAC over VER..counter
    (with the key of key_role if given, to forge frames)."""
    args = list(args) + [role, counter]
    body = bytearray(P.HEADER_BYTES + 4 * len(args))
    struct.pack_into("<BBHBB", body, 0, P.VERSION, P.T_AUTH, seq & 0xFFFF, cmd, len(args) + 8)
    for i in range(len(args)):
        struct.pack_into("<i", body, P.HEADER_BYTES + 4 * i, args[i])
    mac = SIGNER.mac(key_role or role, body)
    for i in range(8):
        args.append(struct.unpack_from("<i", mac, 4 * i)[0])
    return frame(P.T_AUTH, seq, cmd, args)


class Host:
    """A minimal host over Board.feed: one request, its reply frames and events."""

    def __init__(self, hello=True):
        self.sim = simboard.make_board()
        self.board = self.sim.board
        self.seq = 100
        self.counter = 0
        self.events = []
        self.boot_banner = decode_all(self.board._take())
        if hello:
            self.call(P.CMD_HELLO, [P.VERSION])

    def send(self, data):
        replies = []
        for f in decode_all(self.board.feed(data)):
            if f[0] == P.T_EVENT or f[0] == P.T_AUTH_EVENT:
                self.events.append(f)
            else:
                replies.append(f)
        return replies

    def request(self, seq, cmd, args=(), role=-1):
        """The frame a host with every simulation key sends (plain for HELLO or role 0)."""
        role = role_for(cmd) if role < 0 else role
        if role == 0:
            return frame(P.T_REQUEST, seq, cmd, list(args))
        self.counter += 1
        return signed_frame(seq, cmd, args, role, self.counter)

    def call(self, cmd, args=(), seq=None, role=-1):
        if seq is None:
            self.seq += 1
            seq = self.seq
        replies = self.send(self.request(seq, cmd, args, role))
        assert len(replies) == 1, replies
        assert replies[0][1] == seq
        return replies[0][3]

    def running_patient(self):
        assert self.call(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0])[0] == k.OK
        assert self.call(pump.CMD_BAG, [PID, 1, 56000, 240000, 5000, 48, 0, 0, 0])[0] == k.OK
        self.call(pump.CMD_ACK, [k.ACK_PREMED])
        self.call(pump.CMD_ACK, [k.ACK_SUPERVISION])
        assert self.call(pump.CMD_START)[0] == k.OK

    def status(self):
        ints = self.call(P.CMD_STATUS)
        d = {}
        for i in range(len(P.STATUS_FIELDS)):
            d[P.STATUS_FIELDS[i]] = ints[1 + i]
        return d

    def commands_logged(self, cid):
        n = 0
        for ev in self.board.controller.journal.events(0):
            if ev[2] == journal.EV_COMMAND and ev[3] == cid:
                n += 1
        return n


class Unplugged(Exception):
    pass


class ScriptedTransport(main.Transport):
    """The board loop's transport: gives these chunks, then fails (as a UART driver error would)."""

    def __init__(self, chunks):
        main.Transport.__init__(self)
        self.chunks = list(chunks)
        self.written = b""

    def read(self):
        if not self.chunks:
            raise Unplugged()
        return self.chunks.pop(0)

    def write(self, data):
        self.written += data

    def idle(self):
        pass


class TestVectors(unittest.TestCase):
    def test_crc_check_value(self):
        self.assertEqual(P.crc(CRC_CHECK[0].encode()), CRC_CHECK[1])

    def test_encoder_gives_the_vector_bytes(self):
        for name, ftype, seq, cmd, ints, hexframe in FRAME_VECTORS:
            self.assertEqual(hexlify(frame(ftype, seq, cmd, ints)).decode(), hexframe, name)

    def test_decoder_gives_the_vector_fields(self):
        for name, ftype, seq, cmd, ints, hexframe in FRAME_VECTORS:
            self.assertEqual(decode_all(unhexlify(hexframe)), [(ftype, seq, cmd, ints)], name)

    def test_decoder_rejects_bad_frames(self):
        for name, hexframe, error in REJECT_VECTORS:
            self.assertEqual(decode_all(unhexlify(hexframe)), [("bad", error)], name)

    def test_exchanges_with_a_fresh_board(self):
        for name, request, answer in EXCHANGE_VECTORS:
            host = Host(hello=False)
            before = host.status()
            self.assertEqual(hexlify(host.board.feed(unhexlify(request))).decode(), answer, name)
            self.assertEqual(host.status(), before, name)


class TestFraming(unittest.TestCase):
    def test_frames_arrive_byte_by_byte_or_glued_with_garbage(self):
        a = unhexlify(FRAME_VECTORS[0][5])
        b = unhexlify(FRAME_VECTORS[3][5])
        stream = b"\x00\x13" + a + b"\x7e\x7e" + b + a
        got = []
        dec = P.Decoder()
        for x in stream:                # one byte at a time, as a UART delivers them
            if dec.push(x) == P.FRAME:
                got.append(dec.header()[2])
        self.assertEqual(got, [1, 5, 1])
        self.assertEqual(dec.bad, 1)    # the two garbage bytes: one bad frame, then resync

    def test_overlong_frame_is_dropped_and_the_next_one_decoded(self):
        junk = b"\x7e" + b"\x55" * (P.MAX_BODY_BYTES + 10)
        out = decode_all(junk + unhexlify(FRAME_VECTORS[2][5]))
        self.assertEqual(out, [("bad", P.E_MALFORMED), (1, 2, 33, [])])

    def test_no_frame_contains_ctrl_c_or_a_flag_inside(self):
        data = frame(P.T_REQUEST, 0x0303, 3, [0x037E7D03, -1, 3])
        self.assertEqual(data[0], P.FLAG)
        self.assertEqual(data[-1], P.FLAG)
        inner = data[1:-1]
        self.assertTrue(P.FLAG not in inner and P.CTRL_C not in inner)
        self.assertEqual(decode_all(data), [(1, 0x0303, 3, [0x037E7D03, -1, 3])])


class TestBoard(unittest.TestCase):
    def test_hello_reports_version_build_and_kernel_hash(self):
        host = Host(hello=False)
        ints = host.call(P.CMD_HELLO, [P.VERSION])
        self.assertEqual(ints[:5], [k.OK, P.VERSION, main.FIRMWARE_VERSION, P.BUILD_SIM, simboard.MAX_ADVANCE_MIN])
        self.assertTrue(ints[5] in (P.HASH_SOURCE, P.HASH_EMBEDDED))
        self.assertEqual(len(ints), 14 + len(P.HELLO_AUTH_FIELDS) + len(P.HELLO_STATE_FIELDS))
        self.assertTrue(ints[6:14] != [0] * 8)
        self.assertEqual(ints[14], 7)               # pharmacy, clinician and bench keys

    def test_therapy_commands_need_a_session(self):
        host = Host(hello=False)
        self.assertEqual(host.call(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]), [P.E_OUT_OF_STATE])
        self.assertEqual(host.call(SIM.CMD_ADVANCE, [10]), [P.E_OUT_OF_STATE])
        self.assertEqual(host.status()["mode"], k.MODE_NO_PATIENT)
        self.assertEqual(host.call(P.CMD_HELLO, [P.VERSION + 1])[:2], [P.E_VERSION, P.VERSION])
        self.assertEqual(host.call(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]), [P.E_OUT_OF_STATE])
        host.call(P.CMD_HELLO, [P.VERSION])
        self.assertEqual(host.call(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]), [k.OK])

    def test_a_signed_request_gets_a_reply_signed_for_its_role_and_counter(self):
        """docs/security.md, "Signed replies and events": a reply to a request whose MAC held is
        TYPE 6, signed with that role's key over VER..COUNTER, and carries the request's role and
        counter (decode_all checks the MAC); HELLO and a frame whose MAC fails get plain replies."""
        host = Host()
        hello = host.send(frame(P.T_REQUEST, 7, P.CMD_HELLO, [P.VERSION]))
        self.assertEqual(hello[0][0], P.T_REPLY)
        host.running_patient()
        del signed[:]
        replies = host.send(host.request(600, P.CMD_STATUS))
        self.assertEqual((replies[0][0], replies[0][3][0], len(replies[0][3])),
                         (P.T_AUTH_REPLY, k.OK, 1 + len(P.STATUS_FIELDS)))
        self.assertEqual(signed, [(auth.ROLE_BENCH, host.counter)])
        forged = signed_frame(601, pump.CMD_STOP, [k.STOP_CLINICIAN], auth.ROLE_CLINICIAN, host.counter + 1,
                              key_role=auth.ROLE_BENCH)
        self.assertEqual(host.send(forged), [(P.T_REPLY, 601, pump.CMD_STOP, [P.E_UNAUTHORISED, auth.R_BAD_MAC])])
        # a replayed frame's MAC holds: its refusal is signed, for the old counter
        del signed[:]
        replayed = signed_frame(602, pump.CMD_STOP, [k.STOP_CLINICIAN], auth.ROLE_CLINICIAN, 1)
        self.assertEqual(host.send(replayed), [(P.T_AUTH_REPLY, 602, pump.CMD_STOP, [P.E_UNAUTHORISED, auth.R_REPLAY])])
        self.assertEqual(signed[-1], (auth.ROLE_CLINICIAN, 1))    # after its EV_AUTH event

    def test_events_are_signed_with_the_last_accepted_role_and_their_journal_seq(self):
        """Before any command is accepted since boot, events are plain (TYPE 3); after one, they
        are TYPE 7, signed with that command's role, the journal seq as their counter."""
        host = Host()
        self.assertEqual(set(f[0] for f in host.boot_banner), set([P.T_EVENT]))
        host.running_patient()
        host.events = []
        del signed[:]
        host.call(pump.CMD_STOP, [k.STOP_CLINICIAN])
        self.assertTrue(host.events)
        for f in host.events:
            self.assertEqual(f[0], P.T_AUTH_EVENT)
        self.assertEqual(signed[:-1], [(auth.ROLE_CLINICIAN, f[3][0]) for f in host.events])   # then the reply

    def test_EXT_pump_START_is_refused_while_a_line_condition_lasts_and_ack_does_not_clear_it(self):
        """IEC 60601-2-24 (docs/protocol.md, status 28): an occlusion that is still there blocks
        START and keeps its alarm bit through ACK_ALARM; once cleared, START restarts the pump."""
        host = Host()
        host.running_patient()
        self.assertEqual(host.call(SIM.CMD_FAULT, [SIM.FAULT_OCCLUSION, 1]), [k.OK])
        self.assertEqual(host.status()["mode"], k.MODE_STOPPED)
        self.assertEqual(host.call(pump.CMD_START), [pump.E_LINE_ALARM])
        self.assertEqual(host.status()["start_status"], pump.E_LINE_ALARM)
        self.assertEqual(host.call(pump.CMD_ACK_ALARM, [255]), [k.OK])
        self.assertEqual(host.status()["alarm"] & k.AL_LINE, k.AL_LINE)
        self.assertEqual(host.sim.motor.ul_per_h, 0)
        before = host.status()
        self.assertEqual(host.call(pump.CMD_ACK_ALARM, [-1]), [k.E_ARG])    # refused: nothing changes
        self.assertEqual(host.status()["alarm"], before["alarm"])
        self.assertEqual(host.call(pump.CMD_REMOVE_BAG), [k.OK])          # the kernel's refusal first
        self.assertEqual(host.call(pump.CMD_START), [k.E_NO_BAG])
        self.assertEqual(host.call(pump.CMD_BAG, [PID, 2, 56000, 240000, 5000, 48, 0, 0, 0]), [k.OK])
        self.assertEqual(host.call(pump.CMD_START), [pump.E_LINE_ALARM])
        self.assertEqual(host.call(SIM.CMD_FAULT, [SIM.FAULT_OCCLUSION, 2]), [k.OK])    # cleared
        self.assertEqual(host.status()["start_status"], k.OK)
        self.assertEqual(host.call(pump.CMD_START), [k.OK])
        self.assertEqual(host.call(pump.CMD_ACK_ALARM, [255]), [k.OK])
        self.assertEqual(host.status()["alarm"] & k.AL_LINE, 0)
        # a condition gone at once (value 0) stops the pump but does not block the restart
        self.assertEqual(host.call(SIM.CMD_FAULT, [SIM.FAULT_DOOR, 0]), [k.OK])
        self.assertEqual(host.call(pump.CMD_START), [k.OK])
        self.assertEqual(host.call(SIM.CMD_FAULT, [SIM.FAULT_AIR, 3]), [k.E_ARG])

    def test_EXT_pump_CLEAR_FAULT_is_refused_while_the_motor_does_not_answer(self):
        host = Host()
        host.running_patient()
        self.assertEqual(host.call(SIM.CMD_FAULT, [SIM.FAULT_MOTOR, 1]), [k.OK])
        host.call(SIM.CMD_ADVANCE, [1])                 # the motor does not take the minute's rate
        self.assertEqual(host.status()["fault"], 1)
        # the fault's stop is logged as every stop is: STOP (reason FAULT), ALARM, REINIT (its
        # length is unknown), then FAULT (3: the motor)
        codes = [(ev[2], ev[3]) for ev in host.board.controller.journal.events(0)][-4:]
        self.assertEqual(codes[0], (journal.EV_STOP, k.STOP_FAULT))
        self.assertEqual([c for c, _ in codes[1:3]], [journal.EV_ALARM, journal.EV_REINIT])
        self.assertEqual(codes[3], (journal.EV_FAULT, pump.FAULT_MOTOR))
        self.assertEqual(host.call(pump.CMD_CLEAR_FAULT), [k.E_FAULT])
        self.assertEqual(host.status()["fault"], 1)
        self.assertEqual(host.call(SIM.CMD_FAULT, [SIM.FAULT_MOTOR, 0]), [k.OK])
        self.assertEqual(host.call(pump.CMD_CLEAR_FAULT), [k.OK])
        self.assertEqual(host.status()["fault"], 0)

    def test_L2_6_every_bag_taken_off_is_an_event_whatever_the_alarm_bits_say(self):
        """Two bags discarded by clock faults (their room time unknown), the first one's alarm
        never acknowledged: each is a BAG_EXPIRED event (the bit was already set the second time)."""
        host = Host()
        host.running_patient()
        c = host.board.controller
        for bag_id in (1, 2):
            if bag_id == 2:
                self.assertEqual(host.call(pump.CMD_CLEAR_FAULT), [k.OK])
                self.assertEqual(host.call(pump.CMD_BAG, [PID, 2, 56000, 240000, 5000, 48, 0, 0, 0]), [k.OK])
                self.assertEqual(c.s.alarm & k.AL_BAG_EXPIRED, k.AL_BAG_EXPIRED)     # not acknowledged
            c.clock_fault(0)
            self.assertEqual(c.s.bag_loaded, 0)
        expired = [ev for ev in c.journal.events(0) if ev[2] == journal.EV_BAG_EXPIRED]
        self.assertEqual(len(expired), 2)

    def test_a_retried_request_is_answered_from_the_cache_not_applied_again(self):
        host = Host()
        host.running_patient()
        host.call(pump.CMD_STOP, [k.STOP_CLINICIAN], seq=500)
        self.assertEqual(host.commands_logged(pump.CMD_STOP), 1)
        start = host.request(501, pump.CMD_START)
        first = host.send(start)
        host.events = []
        again = host.send(start)
        self.assertEqual(again, first)
        self.assertEqual(first, [(P.T_AUTH_REPLY, 501, pump.CMD_START, [k.OK])])
        self.assertEqual(host.events, [])                           # no second RESUME
        self.assertEqual(host.commands_logged(pump.CMD_START), 2)   # running_patient's, and seq 501's once
        # the same SEQ with a different request is a new request
        self.assertEqual(host.call(pump.CMD_STOP, [k.STOP_CLINICIAN], seq=501), [k.OK])

    def test_every_single_bit_error_in_a_start_frame_changes_nothing(self):
        host = Host()
        host.running_patient()
        host.call(pump.CMD_STOP, [k.STOP_CLINICIAN])
        good = host.request(700, pump.CMD_START)
        before = host.status()
        for i in range(1, len(good) - 1):
            for bit in range(8):
                bad = bytearray(good)
                bad[i] ^= 1 << bit
                host.board.feed(bytes(bad))
        self.assertEqual(host.status(), before)
        self.assertEqual(host.call(pump.CMD_START, seq=701), [k.OK])

    def test_a_cut_frame_then_a_whole_one(self):
        host = Host()
        host.running_patient()
        cut = host.request(800, pump.CMD_STOP, [k.STOP_CLINICIAN])[:9]
        replies = host.send(cut + host.request(801, P.CMD_STATUS))
        self.assertEqual(replies[0][0], P.T_NAK)
        self.assertEqual(replies[1][1], 801)
        self.assertEqual(host.status()["mode"], k.MODE_RUNNING)

    def test_events_are_sent_unsolicited(self):
        host = Host()
        host.running_patient()
        host.events = []
        self.assertEqual(host.call(SIM.CMD_ADVANCE, [2880]), [k.OK, 2880, 2880])
        codes = [e[2] for e in host.events]
        self.assertTrue(journal.EV_STOP in codes and journal.EV_BAG_END in codes, codes)
        self.assertTrue(journal.EV_COMMAND not in codes)
        seqs = [e[3][0] for e in host.events]
        logged = [ev[0] for ev in host.board.controller.journal.events(seqs[0])
                  if ev[2] != journal.EV_COMMAND]
        self.assertEqual(seqs, logged)

    def test_events_command_pages_through_the_journal(self):
        host = Host()
        host.running_patient()
        host.call(SIM.CMD_ADVANCE, [2880])
        ints = host.call(P.CMD_EVENTS, [0])
        self.assertEqual(ints[2], P.EVENTS_PER_REPLY)
        self.assertEqual(ints[3], 0)                        # the first record is seq 0
        later = host.call(P.CMD_EVENTS, [ints[3 + 5 * 7] + 1])
        self.assertEqual(later[3], ints[3 + 5 * 7] + 1)
        self.assertEqual(later[1], host.board.controller.journal.event_seq)

    def test_advance_is_bounded(self):
        host = Host()
        self.assertEqual(host.call(SIM.CMD_ADVANCE, [simboard.MAX_ADVANCE_MIN + 1])[0], k.E_ARG)
        self.assertEqual(host.call(SIM.CMD_ADVANCE, [-1])[0], k.E_ARG)

    def test_line_fault_stops_the_motor_and_raises_an_alarm(self):
        host = Host()
        host.running_patient()
        self.assertEqual(host.call(SIM.CMD_FAULT, [SIM.FAULT_OCCLUSION, 0]), [k.OK])
        s = host.status()
        self.assertEqual((s["mode"], s["motor_ul_per_h"], s["int_reason"]), (k.MODE_STOPPED, 0, k.STOP_ALARM))
        self.assertTrue(s["alarm"] & k.AL_LINE)
        self.assertEqual(host.sim.motor.ul_per_h, 0)

    def test_power_cut_reboots_from_the_record_and_ends_the_session(self):
        host = Host()
        host.running_patient()
        host.call(SIM.CMD_ADVANCE, [600])
        course_ng = host.status()["course_ng"]
        host.events = []
        self.assertEqual(host.call(SIM.CMD_FAULT, [SIM.FAULT_POWER_CUT, 30]), [k.OK])
        self.assertTrue(journal.EV_BOOT in [e[2] for e in host.events])
        self.assertEqual(host.call(pump.CMD_START), [P.E_OUT_OF_STATE])
        host.call(P.CMD_HELLO, [P.VERSION])
        s = host.status()
        self.assertEqual((s["mode"], s["course_ng"], s["now_min"]), (k.MODE_STOPPED, course_ng, 630))
        self.assertTrue(s["alarm"] & k.AL_POWER)

    def test_power_cut_inside_a_write_gives_no_reply_and_loses_nothing(self):
        host = Host()
        host.running_patient()
        host.call(SIM.CMD_ADVANCE, [600])
        course_ng = host.status()["course_ng"]
        host.call(SIM.CMD_FAULT, [SIM.FAULT_POWER_CUT_WRITE, 50])
        host.events = []
        self.assertEqual(host.send(host.request(900, SIM.CMD_ADVANCE, [60])), [])
        codes = [e[2] for e in host.events]
        self.assertTrue(journal.EV_BOOT in codes)
        # the boot comes first, then what the power-up caused (the stop, the power alarm)
        after = codes[codes.index(journal.EV_BOOT):]
        self.assertTrue(journal.EV_STOP in after and journal.EV_ALARM in after, codes)
        host.call(P.CMD_HELLO, [P.VERSION])
        s = host.status()
        self.assertEqual(s["mode"], k.MODE_STOPPED)
        self.assertTrue(s["course_ng"] >= course_ng)

    def test_reset_gives_a_fresh_pump(self):
        host = Host()
        host.running_patient()
        self.assertEqual(host.call(SIM.CMD_RESET), [k.OK])
        host.call(P.CMD_HELLO, [P.VERSION])
        s = host.status()
        self.assertEqual((s["mode"], s["course_ng"], s["now_min"]), (k.MODE_NO_PATIENT, 0, 0))

    def test_board_loop_answers_and_stops_the_motor_on_any_error(self):
        host = Host()
        host.running_patient()
        self.assertTrue(host.sim.motor.ul_per_h > 0)
        status = host.request(990, P.CMD_STATUS)
        t = ScriptedTransport([None, status[:5], status[5:]])
        host.board.transport = t
        self.assertRaises(Unplugged, host.board.run)
        replies = [f for f in decode_all(t.written) if f[0] == P.T_AUTH_REPLY]
        self.assertEqual([(f[1], f[3][0], len(f[3])) for f in replies], [(990, k.OK, 1 + len(P.STATUS_FIELDS))])
        self.assertEqual(host.sim.motor.ul_per_h, 0)        # anything unexpected stops the motor

    def test_status_fields_are_the_controllers(self):
        host = Host()
        d = host.board.controller.status()
        for name in P.STATUS_FIELDS:
            self.assertTrue(name in d, name)
        self.assertEqual(len(P.STATUS_FIELDS), 49)
        self.assertEqual(len(host.call(P.CMD_STATUS)), 50)


if __name__ == "__main__":
    unittest.main()


class BoardSteps:
    """A board's two MAINTENANCE steps, recorded: the flag file (it can fail) and the reset."""

    def __init__(self, board, flag_written=True):
        self.calls = []
        self.flag_written = flag_written
        board.maintenance = self.flag
        board.reset_board = self.reset

    def flag(self):
        self.calls.append("flag")
        return self.flag_written

    def reset(self):
        self.calls.append("reset")
        raise Unplugged()           # a reset never comes back into the loop


class TestMaintenance(unittest.TestCase):
    """MAINTENANCE (docs/protocol.md, docs/security.md "Flashing a board")."""

    def maintenance_events(self, host):
        return [ev for ev in host.board.controller.journal.events(0) if ev[2] == journal.EV_MAINTENANCE]

    def test_a_board_without_the_steps_does_not_know_it(self):
        host = Host()
        self.assertEqual(host.call(P.CMD_MAINTENANCE), [P.E_UNKNOWN_CMD])

    def test_EXT_pump_never_while_the_motor_runs(self):
        host = Host()
        steps = BoardSteps(host.board)
        host.running_patient()
        self.assertEqual(host.call(P.CMD_MAINTENANCE), [k.E_STATE])
        self.assertEqual((steps.calls, host.board.maintenance_pending), ([], False))
        self.assertEqual(host.status()["mode"], k.MODE_RUNNING)
        self.assertEqual(self.maintenance_events(host), [])
        self.assertEqual(host.commands_logged(P.CMD_MAINTENANCE), 1)     # the refusal is logged

    def test_only_the_clinician_on_a_board_with_keys(self):
        host = Host()
        steps = BoardSteps(host.board)
        for role in (0, auth.ROLE_PHARMACY, auth.ROLE_BENCH):
            self.assertEqual(host.call(P.CMD_MAINTENANCE, role=role)[0], P.E_UNAUTHORISED)
        self.assertEqual(steps.calls, [])
        self.assertEqual(host.call(P.CMD_MAINTENANCE), [k.OK])
        self.assertEqual(steps.calls, ["flag"])
        self.assertEqual(self.maintenance_events(host)[0][3], auth.ROLE_CLINICIAN)

    def test_anyone_on_a_board_with_no_keys(self):
        host = Host(hello=False)
        host.board.auth = auth.Auth()           # no keys provisioned
        steps = BoardSteps(host.board)
        host.call(P.CMD_HELLO, [P.VERSION])
        self.assertEqual(host.call(P.CMD_STATUS, role=0)[0], P.E_UNAUTHORISED)     # nothing else
        self.assertEqual(host.call(P.CMD_MAINTENANCE, role=0), [k.OK])
        self.assertEqual(steps.calls, ["flag"])

    def test_the_reply_goes_out_before_the_reset_and_the_motor_is_stopped(self):
        host = Host()
        steps = BoardSteps(host.board)
        request = host.request(777, P.CMD_MAINTENANCE)
        t = ScriptedTransport([request])
        host.board.transport = t
        self.assertRaises(Unplugged, host.board.run)
        self.assertEqual(steps.calls, ["flag", "reset"])
        replies = [f for f in decode_all(t.written) if f[0] == P.T_AUTH_REPLY]
        self.assertEqual([(f[1], f[3]) for f in replies], [(777, [k.OK])])
        self.assertEqual(host.sim.motor.ul_per_h, 0)

    def test_EXT_pump_nothing_runs_after_it_in_the_same_read(self):
        # a START that arrives with the MAINTENANCE frame would run into the reset: refused
        host = Host()
        steps = BoardSteps(host.board)
        self.assertEqual(host.call(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0])[0], k.OK)
        self.assertEqual(host.call(pump.CMD_BAG, [PID, 1, 56000, 240000, 5000, 48, 0, 0, 0])[0], k.OK)
        host.call(pump.CMD_ACK, [k.ACK_PREMED])
        host.call(pump.CMD_ACK, [k.ACK_SUPERVISION])
        both = host.request(801, P.CMD_MAINTENANCE) + host.request(802, pump.CMD_START)
        replies = {f[1]: f[3] for f in host.send(both)}
        self.assertEqual(replies, {801: [k.OK], 802: [k.E_STATE]})
        self.assertEqual((host.board.controller.s.mode, host.sim.motor.ul_per_h), (k.MODE_STOPPED, 0))
        self.assertEqual(steps.calls, ["flag"])

    def test_a_flag_that_cannot_be_written_is_a_fault_and_no_reset(self):
        host = Host()
        steps = BoardSteps(host.board, flag_written=False)
        self.assertEqual(host.call(P.CMD_MAINTENANCE), [k.E_FAULT])
        self.assertEqual((steps.calls, host.board.maintenance_pending), (["flag"], False))
        self.assertEqual(self.maintenance_events(host), [])

    def test_the_steps_outlast_a_reboot_of_the_simulated_board(self):
        host = Host()
        steps = BoardSteps(host.board)
        self.assertEqual(host.call(SIM.CMD_FAULT, [SIM.FAULT_POWER_CUT, 0]), [k.OK])
        host.call(P.CMD_HELLO, [P.VERSION])
        self.assertEqual(host.call(P.CMD_MAINTENANCE), [k.OK])
        self.assertEqual(steps.calls, ["flag"])


class TestAuthorisation(unittest.TestCase):
    """Who may change therapy (docs/security.md): HMAC-SHA256, replay counter, roles."""

    def test_hmac_sha256_rfc4231_case_2(self):
        a = auth.Auth()
        key = b"Jefe" + bytes(28)           # a 4-byte key is zero-padded to the block like any short key
        self.assertTrue(a.add_key(auth.ROLE_BENCH, key))
        mac = a.mac(auth.ROLE_BENCH, b"what do ya want for nothing?")
        self.assertEqual(hexlify(mac), b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")

    def test_plain_therapy_command_is_refused_logged_and_changes_nothing(self):
        host = Host()
        host.running_patient()
        before = host.status()
        for cmd, args in ((pump.CMD_STOP, [k.STOP_CLINICIAN]), (pump.CMD_BAG, [PID, 2, 9000, 240000, 10000, 24, 0, 0, 0]),
                          (P.CMD_STATUS, []), (SIM.CMD_ADVANCE, [60])):
            self.assertEqual(host.call(cmd, args, role=0), [P.E_UNAUTHORISED, auth.R_NOT_AUTHENTICATED])
        after = host.status()
        self.assertEqual(after, before)     # the therapy ring too: refusals have a ring of their own
        refusals = host.board.controller.journal.events(0, security=True)
        self.assertEqual([ev[2] for ev in refusals], [journal.EV_AUTH] * 4)
        reply = host.call(P.CMD_AUTH_EVENTS, [0])
        self.assertEqual(reply[:3], [k.OK, 4, 4])                  # next seq, count: read over the link
        self.assertEqual(reply[3:8], list(refusals[0]))
        self.assertEqual([(ev[3], ev[4]) for ev in refusals],
                         [(auth.R_NOT_AUTHENTICATED, pump.CMD_STOP), (auth.R_NOT_AUTHENTICATED, pump.CMD_BAG),
                          (auth.R_NOT_AUTHENTICATED, P.CMD_STATUS), (auth.R_NOT_AUTHENTICATED, SIM.CMD_ADVANCE)])

    def test_replayed_frame_is_refused(self):
        host = Host()
        host.running_patient()
        stop = host.request(600, pump.CMD_STOP, [k.STOP_CLINICIAN])
        self.assertEqual(host.send(stop)[0][3], [k.OK])
        start = host.request(601, pump.CMD_START)
        self.assertEqual(host.send(start)[0][3], [k.OK])
        # the old STOP again (its SEQ and CRC are no longer the cached ones): its counter is spent
        self.assertEqual(host.send(stop)[0][3], [P.E_UNAUTHORISED, auth.R_REPLAY])
        self.assertEqual(host.status()["mode"], k.MODE_RUNNING)
        # the same counter under a new SEQ is a replay too
        self.assertEqual(host.send(signed_frame(602, pump.CMD_STOP, [k.STOP_CLINICIAN], auth.ROLE_CLINICIAN,
                                                host.counter - 1))[0][3], [P.E_UNAUTHORISED, auth.R_REPLAY])
        self.assertEqual(host.status()["mode"], k.MODE_RUNNING)

    def test_replay_is_refused_after_a_power_cut(self):
        host = Host()
        host.running_patient()
        stop = host.request(610, pump.CMD_STOP, [k.STOP_CLINICIAN])
        self.assertEqual(host.send(stop)[0][3], [k.OK])
        self.assertEqual(host.call(pump.CMD_START), [k.OK])
        self.assertEqual(host.call(SIM.CMD_FAULT, [SIM.FAULT_POWER_CUT, 0]), [k.OK])
        hello = host.call(P.CMD_HELLO, [P.VERSION])
        self.assertEqual(hello[14 + 2], host.counter - 1)    # the clinician counter survived (START's)
        self.assertEqual(host.send(stop)[0][3], [P.E_UNAUTHORISED, auth.R_REPLAY])

    def test_roles_pharmacy_orders_bags_clinician_treats_bench_reads(self):
        host = Host()
        self.assertEqual(host.call(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0], role=auth.ROLE_PHARMACY),
                         [P.E_UNAUTHORISED, auth.R_ROLE])
        self.assertEqual(host.call(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0], role=auth.ROLE_BENCH),
                         [P.E_UNAUTHORISED, auth.R_ROLE])
        self.assertEqual(host.call(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]), [k.OK])
        bag = [PID, 1, 56000, 240000, 5000, 48, 0, 0, 0]
        self.assertEqual(host.call(pump.CMD_BAG, bag, role=auth.ROLE_CLINICIAN), [P.E_UNAUTHORISED, auth.R_ROLE])
        self.assertEqual(host.call(pump.CMD_BAG, bag, role=auth.ROLE_BENCH), [P.E_UNAUTHORISED, auth.R_ROLE])
        self.assertEqual(host.call(pump.CMD_BAG, bag), [k.OK])
        self.assertEqual(host.call(SIM.CMD_ADVANCE, [1], role=auth.ROLE_CLINICIAN), [P.E_UNAUTHORISED, auth.R_ROLE])
        for role in (auth.ROLE_PHARMACY, auth.ROLE_CLINICIAN, auth.ROLE_BENCH):
            self.assertEqual(host.call(P.CMD_STATUS, [], role=role)[0], k.OK)

    def test_wrong_key_or_tampered_frame_is_refused(self):
        host = Host()
        host.call(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0])
        forged = bytearray(unhexlify(hexlify(host.request(620, pump.CMD_STOP, [k.STOP_CLINICIAN]))))
        # change the reason inside the signed part and fix up the CRC: only the MAC can tell
        dec = P.Decoder()
        for b in forged:
            dec.push(b)
        n = dec.length
        body = bytearray(dec.buf[:n])
        struct.pack_into("<i", body, P.HEADER_BYTES, k.STOP_BAG_CHANGE)
        struct.pack_into("<I", body, n - 4, P.crc(memoryview(body)[:n - 4]))
        out = bytearray([P.FLAG])
        for b in body:
            P._put(out, b)
        out.append(P.FLAG)
        self.assertEqual(host.send(bytes(out))[0][3], [P.E_UNAUTHORISED, auth.R_BAD_MAC])
        other = auth.Auth({auth.ROLE_CLINICIAN: bytes(32)})
        args = [k.STOP_CLINICIAN, auth.ROLE_CLINICIAN, 99]
        body = bytearray(P.HEADER_BYTES + 12)
        struct.pack_into("<BBHBBiii", body, 0, P.VERSION, P.T_AUTH, 621, pump.CMD_STOP, 11, *args)
        mac = other.mac(auth.ROLE_CLINICIAN, body)
        for i in range(8):
            args.append(struct.unpack_from("<i", mac, 4 * i)[0])
        self.assertEqual(host.send(frame(P.T_AUTH, 621, pump.CMD_STOP, args))[0][3],
                         [P.E_UNAUTHORISED, auth.R_BAD_MAC])
        unknown_role = signed_frame(622, pump.CMD_STOP, [k.STOP_CLINICIAN], 7, 100, auth.ROLE_CLINICIAN)
        self.assertEqual(host.send(unknown_role)[0][3], [P.E_UNAUTHORISED, auth.R_NO_KEY])

    def test_a_board_without_keys_refuses_everything_but_hello(self):
        host = Host()
        host.board.auth = auth.Auth()
        self.assertEqual(host.call(P.CMD_HELLO, [P.VERSION])[14], 0)
        self.assertEqual(host.call(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]), [P.E_UNAUTHORISED, auth.R_NO_KEY])
        self.assertEqual(host.call(P.CMD_STATUS), [P.E_UNAUTHORISED, auth.R_NO_KEY])

    def test_corrupt_counter_record_refuses_authenticated_commands(self):
        host = Host()
        host.call(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0])
        data = host.sim.counter_storage.data
        for i in range(len(data)):
            data[i] = 0x5A
        host.sim.power_cut(0)
        host.call(P.CMD_HELLO, [P.VERSION])
        self.assertEqual(host.call(pump.CMD_STOP, [k.STOP_CLINICIAN]), [P.E_UNAUTHORISED, auth.R_NO_COUNTERS])
        corrupt = [ev for ev in host.board.controller.journal.events(0) if ev[2] == journal.EV_CORRUPT]
        self.assertEqual(corrupt[-1][3], 2)                 # the counter record, logged at boot

    def test_refusals_flooding_the_line_are_counted_not_all_logged(self):
        host = Host()
        for i in range(3 * 8):
            host.call(pump.CMD_START, role=0)
        hello = host.call(P.CMD_HELLO, [P.VERSION])
        self.assertEqual(hello[18:20], [24, 24 - 8])        # rejected, unlogged beyond 8 a minute
        logged = host.board.controller.journal.events(0, security=True)
        self.assertEqual(len(logged), 8)
        self.assertEqual([ev for ev in host.board.controller.journal.events(0) if ev[2] == journal.EV_AUTH], [])

    def test_a_flood_of_refused_frames_never_evicts_a_therapy_event(self):
        # the lock-out event must outlive any number of frames without a key (journal rings)
        host = Host()
        host.running_patient()
        self.assertEqual(host.call(pump.CMD_REACTION, [k.RX_CRS, 4, 1]), [k.OK])
        locks = [ev for ev in host.board.controller.journal.events(0) if ev[2] == journal.EV_LOCK]
        self.assertEqual(len(locks), 1)
        for minute in range(40):                        # 8 logged refusals a minute: 320 records
            for i in range(9):
                host.call(pump.CMD_START, role=0)
            host.call(SIM.CMD_ADVANCE, [1])
        therapy = host.board.controller.journal.events(0)
        self.assertEqual([ev for ev in therapy if ev[2] == journal.EV_LOCK], locks)
        self.assertEqual(len(host.board.controller.journal.events(0, security=True)), journal.AUTH_SLOTS)

    def test_key_file_round_trip_and_errors(self):
        keys = simboard.sim_keys()
        self.assertEqual(auth.decode_keys(auth.encode_keys(keys)), keys)
        data = bytearray(auth.encode_keys(keys))
        data[10] ^= 1
        self.assertRaises(ValueError, auth.decode_keys, bytes(data))
        self.assertRaises(ValueError, auth.decode_keys, b"BK")
        self.assertRaises(ValueError, auth.encode_keys, {1: b"short"})
