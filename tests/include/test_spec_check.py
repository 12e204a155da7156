"""`make check-spec`: a bad spec exits 1 naming the field and the YAML trap behind it; a valid one is explained."""

import subprocess
import sys

import pytest

from agent_retraining.dev.spec_check import main
from agent_retraining.models.features import feature_columns
from agent_retraining.spec import AGENTS_DIR
from tests.conftest import REPO

EXAMPLE = (AGENTS_DIR / "support-bot.yaml").read_text()


def _edited(*replacements: tuple[str, str]) -> str:
    text = EXAMPLE
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


@pytest.fixture
def specs(tmp_path, monkeypatch):
    """Write `<agent_id>.yaml` files into a folder AGENT_SPECS_DIR names, as an operator would."""
    monkeypatch.setenv("AGENT_SPECS_DIR", str(tmp_path))

    def write(text: str, agent_id: str = "support-bot") -> str:
        (tmp_path / f"{agent_id}.yaml").write_text(text)
        return agent_id

    return write


def _line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_yaml_booleans_numbers_and_dates_where_text_is_expected_are_named_with_their_line_and_fix(specs, capsys):
    text = _edited(
        ("vocabulary: [en, de, fr, es, ja]", "vocabulary: [en, de, NO, es, 2026-01-01]"),
        ("  - offer_refund", "  - off"),
        ("max_train_rows: 1000000", "max_train_rows: 1e6"),
        ("release:\n", "notifications:\n  email: [ops@example.com]\n  on: [failed]\nrelease:\n"),
    )
    assert main([specs(text)]) == 1
    err = capsys.readouterr().err
    vocabulary, action = _line_of(text, "NO, es"), _line_of(text, "  - off")
    for expected in (
        "field 'context.language.category.vocabulary.2': Input should be a valid string",
        f"line {vocabulary} (context.language.vocabulary.2): YAML 1.1 reads the unquoted NO as the boolean False, "
        "not as text (quote it: 'NO')",
        f"line {vocabulary} (context.language.vocabulary.4): YAML 1.1 reads the unquoted 2026-01-01 as the date",
        f"line {action} (actions.3): YAML 1.1 reads the unquoted off as the boolean False, not as text (quote it: "
        "'off')",
        f"line {_line_of(text, '  on: [failed]')} (notifications.on): YAML 1.1 reads the unquoted on as the boolean "
        "True, not as text (quote it: 'on')",
        f"line {_line_of(text, 'max_train_rows')} (training.max_train_rows): YAML 1.1 reads the unquoted 1e6 as text, "
        "not as a number (write 1000000)",
    ):
        assert expected in err
    assert err.count("\n  line ") == 5  # one problem a line
    assert "Traceback" not in err


def test_the_dag_files_error_for_a_broken_spec_carries_the_same_fix(specs):
    from agent_retraining.spec import SpecError, load_agent

    specs(_edited(("vocabulary: [chat, email, phone, app]", "vocabulary: [chat, email, phone, yes]")))
    with pytest.raises(SpecError, match=r"reads the unquoted yes as the boolean True, not as text \(quote it: 'yes'\)"):
        load_agent("support-bot")


def test_a_number_yaml_reads_as_text_is_named_only_where_a_number_was_expected(specs, capsys):
    specs(_edited(("vocabulary: [chat, email, phone, app]", "vocabulary: [chat, email, phone, 1e3]")))
    assert main(["support-bot"]) == 0  # "1e3" is a fine category value
    out = capsys.readouterr().out
    assert "channel=1e3, channel=__other__" in out
    assert "reads the unquoted 1e3" not in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("agent_id: [unclosed\n", "not valid YAML"),
        ("- a list\n", "a spec must be a YAML mapping"),
        (EXAMPLE.replace("agent_id: support-bot", "agent_id: other-bot"), "must match the file name"),
    ],
)
def test_a_spec_that_is_no_spec_exits_1_with_the_reason(specs, capsys, text, message):
    assert main([specs(text)]) == 1
    assert message in capsys.readouterr().err


def test_an_unknown_agent_exits_1_naming_the_folder_and_the_agents_there(specs, capsys, tmp_path):
    specs(EXAMPLE)
    assert main(["suport-bot"]) == 1
    assert f"no spec for agent 'suport-bot' in {tmp_path} (known: support-bot)" in capsys.readouterr().err


def test_a_valid_spec_is_explained_column_by_column_and_at_its_traffic(support_bot, capsys):
    assert main(["support-bot", "--events-per-day", "200000"]) == 0
    out = capsys.readouterr().out
    columns = feature_columns(support_bot)
    context = columns[: columns.index("action=answer_from_faq")]
    assert f"The model's input: {len(columns)} columns" in out
    for name in ("channel", "sentiment", "is_returning_customer"):
        own = [c for c in context if c == name or c.startswith((f"{name}=", f"{name}__"))]
        assert f": {', '.join(own)}\n" in out
    assert "  the action, one-hot: " + ", ".join(f"action={a}" for a in support_bot.actions) in out
    assert f"({len(context)} of its {len(context)} columns) crossed with each action: 5 x 25 = 125\n" in out
    # support-bot: 7 days, the newest held out; at least 500 events a day
    assert (
        "at 500 events a day (validation.min_rows_per_day: the least a day holds): 3,000 rows to train on; 500 " in out
    )
    assert "20 positive rewards (gate.evidence) need a reward rate of at least 4.00%" in out
    assert (
        "at 200,000 events a day (EVENTS_PER_DAY): 1,200,000 rows to train on, sampled to max_train_rows 1,000,000"
        in out
    )
    assert "nothing that reads differently from how it is written" in out
    assert "Notifications: no channel (notifications.email, .slack, .notifiers)" in out


def test_the_channels_a_run_reaches_are_listed_and_a_failure_that_reaches_none_is_said(specs, capsys):
    notifications = (
        'notifications:\n  email: [ops@example.com]\n  slack: [slack_oncall]\n  "on": [deployed, deadline_missed]\n'
        "  notifiers:\n    - notifier: my_company.alerts.PagerNotifier\n  deadline_hours: 6\n"
    )
    specs(_edited(("release:\n", notifications + "release:\n")))
    assert main(["support-bot"]) == 0
    out = capsys.readouterr().out
    assert (
        "Notifications on deployed, deadline_missed (a run still unfinished 6 h after it was queued), to:\n"
        "  e-mail to ops@example.com (Airflow connection smtp_default)\n"
        "  Slack (Airflow connection slack_oncall)\n"
        "  my_company.alerts.PagerNotifier\n"
        "  notifications.on leaves out failed: a failed run reaches none of them\n"
    ) in out


def test_a_holdout_too_small_for_the_gate_and_a_canary_too_slow_for_its_days_are_said(specs, capsys):
    specs(_edited(("min_rows_per_day: 500", "min_rows_per_day: 100"), ("mode: direct", "mode: canary")))
    assert main(["support-bot", "--events-per-day", "2000"]) == 0
    out = capsys.readouterr().out
    assert "100 held out, fewer than gate.evidence.min_holdout_rows (200): every run is a named refusal" in out
    # 10% of 100 a day is 10 events: 1,000 take 100 days; 10% of 2,000 take 5
    assert "in about 100 day(s), past, so it would be aborted at release.max_days (7)" in out
    assert "in about 5 day(s), within release.max_days (7)" in out


def test_numbers_that_parse_but_mean_something_else_and_keys_given_twice_are_listed(specs, capsys):
    text = _edited(
        ("seed: 7", "seed: 0755"),
        ("timeout_hours: 24", "timeout_hours: 1:30"),
        ("validation:\n", "validation:\n  max_drift_psi: 0.5\n"),
    )
    assert main([specs(text)]) == 0  # valid, and not what its writer meant
    out = capsys.readouterr().out
    assert f"line {_line_of(text, 'seed: 0755')} (training.seed): YAML 1.1 reads 0755 as the octal number 493" in out
    assert "(approval.timeout_hours): YAML 1.1 reads 1:30 as the base-60 number 90" in out
    assert "(validation): the key 'max_drift_psi' is given 2 times; YAML keeps only the last" in out


def test_the_command_exits_1_without_a_stack_trace(specs, tmp_path):
    specs(_edited(("  - offer_refund", "  - no")))
    done = subprocess.run(
        [sys.executable, "-m", "agent_retraining.dev.spec_check", "support-bot"],
        env={"PYTHONPATH": str(REPO / "include"), "AGENT_SPECS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "reads the unquoted no as the boolean False, not as text (quote it: 'no')" in done.stderr
    assert "Traceback" not in done.stderr
