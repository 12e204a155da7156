from pathlib import Path

import pytest
import yaml

from agent_retraining.spec import AGENTS_DIR, SpecError, load_all_specs, load_spec, parse_spec

EXAMPLE = (AGENTS_DIR / "support-bot.yaml").read_text()


def _with(change) -> str:
    raw = yaml.safe_load(EXAMPLE)
    change(raw)
    return yaml.safe_dump(raw)


def test_the_example_spec_is_a_support_bot_with_mixed_features(support_bot):
    assert 4 <= len(support_bot.actions) <= 6
    assert 6 <= len(support_bot.context) <= 10
    assert {f.type for f in support_bot.context.values()} == {"category", "int", "float", "bool"}
    assert [s.agent_id for s in load_all_specs()] == ["support-bot"]


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        (lambda r: r.pop("actions"), "actions", "Field required"),
        (lambda r: r.update(agent_id="Support_Bot"), "agent_id", "pattern"),
        (lambda r: r["context"]["sentiment"].update(min=2.0), "context.sentiment", "must be below max"),
        (lambda r: r["context"]["channel"].update(vocabulary=[]), "context.channel.category.vocabulary", "at least 1"),
        (
            lambda r: r["context"]["channel"].update(type="text"),
            "context.channel",
            "does not match any of the expected",
        ),
        (lambda r: r["gate"]["floors"].update(min_roc_auc=1.5), "gate.floors.min_roc_auc", "less than or equal to 1"),
        (lambda r: r["gate"].update(max_regresion={}), "gate.max_regresion", "Extra inputs are not permitted"),
        (lambda r: r.update(actions=["a", "a"]), "<top level>", "actions has duplicates"),
        (lambda r: r["training"].update(holdout_days=7), "training", "holdout_days must be smaller"),
        (lambda r: r.update(candidates=["xgboost"]), "candidates.0", "Input should be"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_field_and_rule(change, field, rule):
    with pytest.raises(SpecError) as error:
        parse_spec(_with(change), "agents/x.yaml")
    message = str(error.value)
    assert message.startswith("agents/x.yaml: ")
    assert f"field '{field}" in message
    assert rule in message


def test_yaml_that_is_not_a_mapping_is_refused():
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        parse_spec("- just\n- a list\n", "agents/x.yaml")
    with pytest.raises(SpecError, match="not valid YAML"):
        parse_spec("agent_id: [unclosed", "agents/x.yaml")


def test_the_file_name_must_match_the_agent_id(tmp_path: Path):
    path = tmp_path / "other-bot.yaml"
    path.write_text(EXAMPLE)
    with pytest.raises(SpecError, match="must match the file name 'other-bot'"):
        load_spec(path)
