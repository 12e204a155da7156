"""The agents' credentials file that minio-setup turns into one MinIO user per agent: every line is checked, a
refusal names the line and the rule and never repeats a secret, and nothing is written unless every line passes."""

from __future__ import annotations

import json

import pytest

from agent_retraining import s3_access
from agent_retraining.s3_access import AgentCredential, CredentialsError, read_agent_credentials, render
from agent_retraining.storage import Buckets

KNOWN = {"support-bot", "router"}
BUCKETS = Buckets(logs="logs", models="models", artifacts="artifacts")


def _read(tmp_path, text: str):
    path = tmp_path / "agent-credentials"
    path.write_text(text)
    return read_agent_credentials(path, KNOWN)


def test_a_valid_file_gives_one_credential_per_agent(tmp_path):
    credentials = _read(
        tmp_path, "# agent access secret\n\nsupport-bot supportkey supportsecret1\nrouter rk1 routersecret\n"
    )
    assert credentials == [AgentCredential("support-bot", "supportkey", "supportsecret1"),
                           AgentCredential("router", "rk1", "routersecret")]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("support-bot onlytwo", "expected 'agent_id access_key secret_key', found 2 fields"),
        ("someone-else key123 secretsecret", "agent 'someone-else' has no spec"),
        ("support-bot k secretsecret", "the access key must be 3 to 128 letters or digits"),
        ("support-bot key123 short", "the secret key must be 8 to 40 letters or digits"),
        ("support-bot key123 change-me", "the secret key must be 8 to 40 letters or digits"),
        ("support-bot key123 secret$(reboot)x", "the secret key must be 8 to 40 letters or digits"),
    ],
)
def test_a_bad_line_is_refused_naming_the_line_and_the_rule(tmp_path, line, rule):
    with pytest.raises(CredentialsError) as refused:
        _read(tmp_path, f"router rk1 routersecret\n{line}\n")
    assert f"line 2: {rule}" in str(refused.value)
    assert "routersecret" not in str(refused.value)
    assert "reboot" not in str(refused.value)


def test_an_agent_or_an_access_key_listed_twice_is_refused(tmp_path):
    with pytest.raises(CredentialsError) as refused:
        _read(tmp_path, "router rk1 routersecret\nrouter rk2 routersecret\nsupport-bot rk1 othersecret\n")
    assert "line 2: agent 'router' is listed twice" in str(refused.value)
    assert "line 3: the access key is used by another line" in str(refused.value)


def test_render_writes_a_policy_per_user_and_the_agents_user_list(tmp_path):
    credentials = [AgentCredential("router", "rk1", "routersecret")]
    render(tmp_path, BUCKETS, credentials)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "agents.txt", "retraining-agent-router.json", "retraining-pipeline.json", "retraining-reader.json"]  # fmt: skip
    assert (tmp_path / "agents.txt").read_text() == "router rk1 routersecret retraining-agent-router\n"
    assert (tmp_path / "agents.txt").stat().st_mode & 0o007 == 0  # secrets: not for other users
    agent = json.loads((tmp_path / "retraining-agent-router.json").read_text())
    resources = {resource for statement in agent["Statement"] for resource in statement["Resource"]}
    assert resources == {"arn:aws:s3:::logs/router/*", "arn:aws:s3:::models/router/*", "arn:aws:s3:::models"}


def test_an_agent_id_that_could_widen_a_resource_is_refused():
    with pytest.raises(ValueError, match="does not match"):
        s3_access.agent_policy(BUCKETS, "*")


def test_the_command_refuses_a_bad_file_and_writes_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("AGENT_SPECS_DIR", str(tmp_path / "specs"))
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "router.yaml").write_text("agent_id: router\n")
    (tmp_path / "credentials").write_text("router rk1 short\n")
    out = tmp_path / "out"
    assert s3_access.main(["render", str(out), "--credentials", str(tmp_path / "credentials")]) == 1
    assert not out.exists()
    assert "line 1: the secret key must be 8 to 40 letters or digits" in caplog.text
