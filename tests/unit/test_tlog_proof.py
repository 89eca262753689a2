"""The C2SP tlog-proof format: the spec's own example read and written back byte for byte, and malformed proofs refused."""

from __future__ import annotations

import base64

import pytest

from transparency.errors import ProofFailed
from transparency.tlogproof import parse_tlog_proof

SPEC_EXAMPLE = """c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

\u2014 example.com/fancylog hI2DJw[...]1roloI=
\u2014 witness1.example mJirIklj[...]qY9v2B/5bg==
\u2014 witness2.example TnKKVHLX[...]xwYwrSjgow==
\u2014 witness3.example S4X82uH5[...]3oEcROGLFQ==
"""
"""From c2sp.org/tlog-proof (its signatures are shortened there, so they are kept verbatim, never read)."""


def test_the_spec_example_is_read_and_written_back_byte_for_byte() -> None:
    proof = parse_tlog_proof(SPEC_EXAMPLE)
    assert proof.index == 73894
    assert proof.extra == base64.b64decode("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ")
    assert [base64.b64encode(h).decode() for h in proof.path][::4] == [
        "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=", "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk="]
    assert len(proof.path) == 5 and proof.checkpoint.startswith("example.com/fancylog\n109482\n")
    assert proof.text() == SPEC_EXAMPLE
    bare = SPEC_EXAMPLE.replace("extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n", "")
    assert parse_tlog_proof(bare).extra is None and parse_tlog_proof(bare).text() == bare


@pytest.mark.parametrize(("edit", "message"), [
    (("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"), "the first line is not 'c2sp.org/tlog-proof@v1'"),
    (("index 73894", "index 073894"), "line 3: expected 'index N' (a decimal, no leading zeros)"),
    (("index 73894", "index -1"), "line 3: expected 'index N'"),
    (("extra YWdl", "extra !Wdl"), "line 2: the extra is not base64"),
    (("B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=", "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA"), "line 5: the proof hash is not base64"),
    (("B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=", "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXg=="), "line 5: a proof hash has 31 bytes, not 32"),
    (("5vk=\n\nexample", "5vk=\nexample"), "line 9: the proof hash is not base64"),
])
def test_a_malformed_proof_is_refused_naming_its_line(edit: tuple[str, str], message: str) -> None:
    with pytest.raises(ProofFailed, match="^not a tlog-proof: " + message.replace("(", r"\(").replace(")", r"\)")):
        parse_tlog_proof(SPEC_EXAMPLE.replace(*edit))


def test_a_proof_without_its_checkpoint_is_refused() -> None:
    with pytest.raises(ProofFailed, match="^not a tlog-proof: no empty line before the checkpoint$"):
        parse_tlog_proof(SPEC_EXAMPLE.split("\n\n")[0] + "\n")
    with pytest.raises(ProofFailed, match="^not a tlog-proof: no checkpoint after the empty line$"):
        parse_tlog_proof(SPEC_EXAMPLE.split("\n\n")[0] + "\n\n")
