"""Device addresses, fleet files and which arguments of a job are copied or brought back (no network)."""
from __future__ import annotations

import pytest

from edgekit.errors import EdgekitError
from edgekit.remote.address import parse
from edgekit.remote.fleet import load
from edgekit.remote.job import plan


def test_addresses():
    a = parse("ssh://pi@10.0.0.7")
    assert (a.user, a.host, a.port, str(a), a.known_hosts_name) == ("pi", "10.0.0.7", 22, "ssh://pi@10.0.0.7",
                                                                     "10.0.0.7")
    a = parse("ssh://root@[::1]:2222")
    assert (a.host, a.port, a.known_hosts_name) == ("::1", 2222, "[::1]:2222")
    for bad in ("pi@10.0.0.7", "ssh://pi@", "ssh://pi@h:0", "ssh://pi@h:99999", "ssh://a b@h", "http://h"):
        with pytest.raises(EdgekitError, match="device address|port"):
            parse(bad)


def test_fleet_file(tmp_path):
    f = tmp_path / "devices.toml"
    f.write_text('[[device]]\nname = "pi5"\naddress = "ssh://pi@pi5.local"\nprofile = "raspberry-pi-5"\n'
                 'identity = "keys/id"\n\n[[device]]\nname = "jetson"\naddress = "ssh://nv@10.0.0.9:2200"\n')
    pi5, jetson = load(f)
    assert (pi5.name, pi5.profile, pi5.identity, pi5.edgekit) == ("pi5", "raspberry-pi-5", str(tmp_path / "keys/id"),
                                                                  "edgekit")
    assert (jetson.address.port, jetson.profile) == (2200, None)
    for text, message in [("", "no \\[\\[device\\]\\]"), ('[[device]]\nname = "a"\n', "'address' is missing"),
                          ('[[device]]\nname = "a"\naddress = "ssh://h"\npassword = "x"\n', "never read from a file"),
                          ('[[device]]\nname = "a"\naddress = "h"\n', "not a device address"),
                          ('[[device]]\nname = "a"\naddress = "ssh://h"\n[[device]]\nname = "a"\naddress = "ssh://g"\n',
                           "used twice"), ("[[device", "not TOML")]:
        f.write_text(text)
        with pytest.raises(EdgekitError, match=message):
            load(f)


def test_the_paths_a_job_copies_and_brings_back(tmp_path):
    art, x = tmp_path / "art", tmp_path / "x.npy"
    art.mkdir()
    x.write_bytes(b"")
    inputs, outputs = plan(["run", str(art), "--input", f"x={x}", "--threads", "2", "--save", "out",
                            "--json=r.json", "not-a-path"])
    assert [(i, p, str(f)) for i, p, f in inputs] == [(1, "", str(art)), (3, "x=", str(x))]
    assert [(i, p, str(f), o) for i, p, f, o in outputs] == [(7, "", "out", "--save"),
                                                             (8, "--json=", "r.json", "--json")]
