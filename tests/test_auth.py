"""Who may change therapy (docs/security.md), host side and over the link: HMAC-SHA256 on both
sides, key files, roles, replay counters across host and board restarts, provisioning."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import shlex
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypo import examples

from blinpump.firmware import auth as fw_auth
from blinpump.firmware import journal
from blinpump.firmware import kernel as k
from blinpump.firmware import protocol as P
from blinpump.hil import auth as host_auth
from blinpump.hil import cli
from blinpump.hil.client import LinkError, Pump, PumpError
from blinpump.hil.sim import BoardLink

from pumps import PID, running_patient

# RFC 4231 test cases 1 and 2 (HMAC-SHA256); keys shorter than the block are zero-padded
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
]


@pytest.mark.parametrize("key,message,mac_hex", RFC4231)
def test_board_hmac_matches_rfc4231(key: bytes, message: bytes, mac_hex: str) -> None:
    a = fw_auth.Auth()
    assert a.add_key(fw_auth.ROLE_BENCH, key + bytes(32 - len(key)))
    assert a.mac(fw_auth.ROLE_BENCH, message).hex() == mac_hex


@settings(max_examples=examples(200))
@given(key=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_board_and_host_hmac_agree(key: bytes, message: bytes) -> None:
    a = fw_auth.Auth({fw_auth.ROLE_CLINICIAN: key})
    assert a.mac(fw_auth.ROLE_CLINICIAN, message) == hmac.new(key, message, hashlib.sha256).digest()


def test_key_file_round_trip_is_private(tmp_path: Path) -> None:
    keys = host_auth.new_keys()
    path = tmp_path / "pump.keys.json"
    host_auth.save_keys(path, keys)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert host_auth.load_keys(path) == keys
    board = tmp_path / "keys.bin"
    board.write_bytes(host_auth.board_file(keys))
    assert host_auth.load_keys(board) == keys == fw_auth.decode_keys(board.read_bytes())


@pytest.mark.parametrize("content,message", [
    ('{"nurse": "00"}', "unknown role 'nurse'"),
    ('{"pharmacy": "zz"}', "pharmacy: key is not hex"),
    ('{"clinician": "0011"}', "clinician: key is 2 bytes, need 32"),
    ("[1, 2]", "expected an object"),
    ("not json", "neither a JSON key file nor keys.bin"),
])
def test_bad_key_files_name_the_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(host_auth.KeyFileError, match=message):
        host_auth.load_keys(path)


@pytest.fixture
def link() -> BoardLink:
    return BoardLink()


_patient = running_patient


def test_client_signs_every_command_with_the_role_allowed_to_send_it(link: BoardLink) -> None:
    with Pump(link) as p:
        assert p.info["auth_roles"] == 7
        _patient(p)
        assert p.status()["mode"] == k.MODE_RUNNING
        assert p.counters[fw_auth.ROLE_PHARMACY] == 1           # the one bag order
    events = [e for e in link.sim.board.controller.journal.events(0) if e[2] == journal.EV_AUTH]
    assert events == []


def test_no_keys_means_only_hello(link: BoardLink) -> None:
    with Pump(link, keys=None) as p:
        with pytest.raises(PumpError, match="not authorised: not authenticated") as exc:
            p.status()
        assert exc.value.code == P.E_UNAUTHORISED and exc.value.reason == fw_auth.R_NOT_AUTHENTICATED


def test_wrong_keys_are_refused_and_change_nothing(link: BoardLink) -> None:
    with Pump(link) as good:
        _patient(good)
        before = link.sim.board.controller.status()
    with Pump(link, keys=host_auth.new_keys()) as bad:
        for action in (bad.stop, bad.start, bad.status, lambda: bad.reaction(k.RX_CRS, 4)):
            # the board's plain refusal is never taken for the answer to a signed request
            # (docs/security.md): a LinkError that names it; its re-sends came from the cache
            with pytest.raises(LinkError, match="unsigned .E_UNAUTHORISED MAC does not match"):
                action()
    after = link.sim.board.controller.status()
    assert after == before              # nothing changed, the therapy ring included
    with Pump(link) as good:            # the four refusals are in the security ring, with their reason
        refused = good.events(security=True)
    assert [(e["code"], e["a"]) for e in refused] == [(journal.EV_AUTH, fw_auth.R_BAD_MAC)] * 4


def test_pharmacy_key_orders_bags_but_cannot_start(link: BoardLink) -> None:
    with Pump(link) as clinic:
        assert clinic.setup(PID, k.IND_MRD, 70000, 0) == k.OK
    sim_keys = host_auth.sim_keys()
    with Pump(link, keys={fw_auth.ROLE_PHARMACY: sim_keys[fw_auth.ROLE_PHARMACY]}) as pharmacy:
        assert pharmacy.bag(PID, 1, 56000, 240000, 5000, 48, 0) == k.OK
        with pytest.raises(PumpError, match="not authenticated"):
            pharmacy.start()                            # no clinician key: sent plain, refused
        assert pharmacy.status()["bag_loaded"] == 1     # any role reads
    with Pump(link, keys={fw_auth.ROLE_BENCH: sim_keys[fw_auth.ROLE_BENCH]}) as bench:
        with pytest.raises(PumpError, match="not authenticated"):
            bench.stop()
        assert bench.status()["mode"] == k.MODE_STOPPED


def test_a_restarted_host_continues_above_the_boards_counters(link: BoardLink) -> None:
    with Pump(link) as first:
        _patient(first)
        used = first.counters[fw_auth.ROLE_CLINICIAN]
    with Pump(link) as second:                          # a new process: its own counters start at 0
        assert second.info["counter_clinician"] == used
        assert second.stop() == k.OK
        assert second.counters[fw_auth.ROLE_CLINICIAN] == used + 1


def test_replay_across_a_power_cut_is_refused(link: BoardLink) -> None:
    with Pump(link) as p:
        _patient(p)
        stop_frame = p._frame(9, 4, [k.STOP_CLINICIAN])[0]  # signed, not yet sent
        link.write(stop_frame)
        assert p.status()["mode"] == k.MODE_STOPPED
        assert p.start() == k.OK
        p.inject_fault("power_cut", 0)
        p.ack(k.ACK_PREMED)                                 # after the reboot, re-initiation (L2-reinit-4h)
        p.ack(k.ACK_SUPERVISION)
        assert p.start() == k.OK
        link.write(stop_frame)                              # the captured STOP, once more
        assert p.status()["mode"] == k.MODE_RUNNING
    refusals = link.sim.board.controller.journal.events(0, security=True)
    assert [(e[2], e[3], e[4]) for e in refusals] == [(journal.EV_AUTH, fw_auth.R_REPLAY, 4)]


def test_keys_cli_new_export_and_provision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "k.json"
    assert cli.keys_main(["new", "--out", str(keys), "--roles", "pharmacy"]) == 0
    assert list(json.loads(keys.read_text())) == ["pharmacy"]
    assert cli.keys_main(["new", "--out", str(keys)]) == 2                  # never overwritten by accident
    assert "exists" in capsys.readouterr().err
    assert cli.keys_main(["new", "--out", str(tmp_path / "x.json"), "--roles", "nurse"]) == 2
    board = tmp_path / "keys.bin"
    assert cli.keys_main(["export", "--keys", str(keys), "--out", str(board)]) == 0
    assert fw_auth.decode_keys(board.read_bytes()) == host_auth.load_keys(keys)
    capsys.readouterr()
    assert cli.keys_main(["provision", "--port", "/dev/ttyACM0", "--keys", str(keys), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert ":keys.new" in out and "auth.bin" not in out     # the replay counters are kept
    assert cli.keys_main(["export", "--keys", str(tmp_path / "missing.json"), "--out", str(board)]) == 2


def test_campaign_of_unauthorised_frames_changes_nothing() -> None:
    """A sample of bench/hardening_auth.py: every kind of forged frame, none changes therapy."""
    from blinpump.hil import unauthorised
    r = unauthorised.run(frames=2100, seed=7)
    assert r.tried == 2100 and set(r.by_kind) == set(unauthorised.KINDS)
    assert r.changes == 0, r.failures
    assert set(r.reasons) == {fw_auth.R_NOT_AUTHENTICATED, fw_auth.R_NO_KEY, fw_auth.R_BAD_MAC,
                              fw_auth.R_REPLAY, fw_auth.R_ROLE}


def test_campaign_catches_a_board_that_forgets_replay_protection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The campaign has teeth: a board that accepts old counters is caught."""
    from blinpump.hil import unauthorised
    monkeypatch.setattr(fw_auth.Counters, "save", lambda self: True)
    original = fw_auth.Auth.admit

    def no_replay_check(self: fw_auth.Auth, role: int, counter: int, need: int) -> int:
        if 1 <= role <= fw_auth.NROLES:
            self.counters.last[role] = 0        # forgets every counter it accepted
        return int(original(self, role, counter, need))
    monkeypatch.setattr(fw_auth.Auth, "admit", no_replay_check)
    r = unauthorised.run(frames=700, seed=7)
    assert r.changes > 0 and any(f.startswith(("replay", "old_counter")) for f in r.failures)


def test_board_reads_its_provisioned_key_file(tmp_path: Path) -> None:
    """firmware/main.py read_keys: a board without valid keys.bin fails closed."""
    from blinpump.firmware import main as fw_main
    path = tmp_path / "keys.bin"
    assert fw_main.read_keys(str(path)) == (fw_main.KEYS_MISSING, None)
    keys = host_auth.new_keys()
    path.write_bytes(host_auth.board_file(keys))
    assert fw_main.read_keys(str(path)) == (fw_main.KEYS_OK, keys)
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF
    path.write_bytes(bytes(data))
    assert fw_main.read_keys(str(path)) == (fw_main.KEYS_BAD, None)


# ---------------------------------------------------------------- provisioning and flashing (issue: nobody in)

def test_reprovisioning_never_resets_the_replay_counters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Re-provisioning the same keys used to erase auth.bin, after which recorded frames replayed.
    Now provisioning copies keys.new and renames it over keys.bin; the counters stay."""
    keys = tmp_path / "k.json"
    assert cli.keys_main(["new", "--out", str(keys)]) == 0
    capsys.readouterr()
    assert cli.keys_main(["provision", "--port", "/dev/ttyACM0", "--keys", str(keys), "--dry-run"]) == 0
    out = " ".join(shlex.split(capsys.readouterr().out))
    assert ":keys.new" in out and "os.rename('keys.new', 'keys.bin')" in out
    assert "auth.bin" not in out
    assert cli.keys_main(["provision", "--port", "/dev/ttyACM0", "--keys", str(keys), "--dry-run",
                          "--reset-counters"]) == 0
    assert "os.remove('auth.bin')" in " ".join(shlex.split(capsys.readouterr().out))


def test_a_recorded_frame_never_replays_after_the_same_keys_are_provisioned_again() -> None:
    from blinpump.hil import unauthorised
    tried, accepted = unauthorised.reprovision_replays(frames=40, seed=3)
    assert tried == 40 and accepted == 0
    # what provisioning did before (auth.bin erased): the recorded frames run again
    assert unauthorised.reprovision_replays(frames=40, seed=3, erase_counters=True)[1] > 0


def test_torn_key_file_after_a_reset_mid_provisioning_falls_back_to_the_complete_copy(tmp_path: Path) -> None:
    from blinpump.firmware import main as fw_main
    keys = host_auth.new_keys()
    good = host_auth.board_file(keys)
    (tmp_path / "keys.bin").write_bytes(good[:17])              # torn
    (tmp_path / "keys.new").write_bytes(good)                   # copied in full before the reset
    state, got = fw_main.read_keys(str(tmp_path / "keys.bin"), str(tmp_path / "keys.new"))
    assert (state, got) == (fw_main.KEYS_RECOVERED, keys)
    assert fw_main.finish_provisioning(str(tmp_path / "keys.bin"), str(tmp_path / "keys.new"))
    assert (tmp_path / "keys.bin").read_bytes() == good and not (tmp_path / "keys.new").exists()
    assert fw_main.read_keys(str(tmp_path / "keys.bin"), str(tmp_path / "keys.new")) == (fw_main.KEYS_OK, keys)
    (tmp_path / "keys.bin").write_bytes(good[:17])
    (tmp_path / "keys.new").write_bytes(good[:9])               # both torn: fail closed
    assert fw_main.read_keys(str(tmp_path / "keys.bin"), str(tmp_path / "keys.new"))[0] == fw_main.KEYS_BAD


def test_flash_refuses_when_no_pump_answers_unless_told_there_is_none(capsys: pytest.CaptureFixture[str]) -> None:
    master, slave = os.openpty()                       # a line nobody answers on
    try:
        silent = os.ttyname(slave)
        assert cli.flash_main(["--port", silent, "--mpremote", "true"]) == 1
        assert "no pump answered" in capsys.readouterr().err
        # told that the board runs no pump, it goes on (and the stand-in mpremote reads back nothing)
        assert cli.flash_main(["--port", silent, "--no-pump", "--mpremote", "true"]) == 1
        err = capsys.readouterr().err
        assert "no pump answered" not in err and "could not read back hashes" in err
    finally:
        os.close(master)
        os.close(slave)
    # a dry run touches nothing and asks nothing
    assert cli.flash_main(["--port", "/dev/ttyACM0", "--dry-run"]) == 0


def test_a_second_host_cannot_open_the_same_port() -> None:
    from blinpump.hil.client import open_serial
    from blinpump.hil.sim import SimBoard
    with SimBoard("cpython") as board:
        first = open_serial(board.path)
        try:
            with pytest.raises(Exception, match="(?i)lock|busy|exclusive"):
                open_serial(board.path)
        finally:
            first.close()


def test_the_documented_key_file_example_loads_and_names_its_roles(tmp_path):
    doc = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text()
    block = doc.split("### The key file")[1].split("```json\n")[1].split("```")[0]
    path = tmp_path / "example.keys.json"
    path.write_text(block)
    keys = host_auth.load_keys(path)
    assert keys == {fw_auth.ROLE_PHARMACY: bytes([1]) * 32, fw_auth.ROLE_CLINICIAN: bytes([2]) * 32}
    path.write_text(block.replace('"clinician"', '"nurse"'))
    with pytest.raises(host_auth.KeyFileError, match="unknown role 'nurse'"):
        host_auth.load_keys(path)
