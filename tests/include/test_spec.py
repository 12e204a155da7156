from pathlib import Path

import pytest
import yaml

from agent_retraining.spec import AGENTS_DIR, SpecError, load_all_specs, load_spec, parse_spec

EXAMPLE = (AGENTS_DIR / "support-bot.yaml").read_text()


def _with(change) -> str:
    raw = yaml.safe_load(EXAMPLE)
    change(raw)
    return yaml.safe_dump(raw)


def test_the_example_specs_are_a_support_bot_with_mixed_features_and_an_llm_router(support_bot):
    assert 4 <= len(support_bot.actions) <= 6
    assert 6 <= len(support_bot.context) <= 10
    assert {f.type for f in support_bot.context.values()} == {"category", "int", "float", "bool"}
    specs, errors = load_all_specs()
    assert [s.agent_id for s in specs] == ["llm-router", "support-bot"]
    assert {f.type for f in specs[0].context.values()} >= {"text", "embedding", "category"}
    assert errors == {}


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        (lambda r: r.pop("actions"), "actions", "Field required"),
        (lambda r: r.update(agent_id="Support_Bot"), "agent_id", "pattern"),
        (lambda r: r["context"]["sentiment"].update(min=2.0), "context.sentiment", "must be below max"),
        (lambda r: r["context"]["channel"].update(vocabulary=[]), "context.channel.category.vocabulary", "at least 1"),
        (
            lambda r: r["context"].update(product={"type": "open_category", "buckets": 5000}),
            "context.product.open_category.buckets",
            "less than or equal to 4096",
        ),
        (
            lambda r: r["context"].update(product={"type": "open_category", "vocabulary": ["a"], "buckets": 8}),
            "context.product.open_category.vocabulary",
            "Extra inputs are not permitted",
        ),
        (
            lambda r: (
                r["context"].update(product={"type": "open_category", "buckets": 8}),
                r["validation"]["tiers"].update({"in_vocabulary:product": "warn"}),
            ),
            "<top level>",
            "in_vocabulary applies to category features, 'product' is open_category",
        ),
        (
            lambda r: r["context"]["channel"].update(type="audio"),
            "context.channel",
            "does not match any of the expected",
        ),
        (lambda r: r["gate"]["floors"].update(min_roc_auc=1.5), "gate.floors.min_roc_auc", "less than or equal to 1"),
        (lambda r: r["gate"].update(max_regresion={}), "gate.max_regresion", "Extra inputs are not permitted"),
        (lambda r: r.update(actions=["a", "a"]), "<top level>", "actions has duplicates"),
        (lambda r: r["training"].update(holdout_days=7), "training", "holdout_days must be smaller"),
        (lambda r: r.update(candidates=["xgboost"]), "candidates.0", "Input should be"),
        (
            lambda r: r["validation"]["tiers"].update(propensity_range="warn"),
            "validation",
            "['propensity_range']: contract rules always block",
        ),
        (
            lambda r: r["validation"]["tiers"].update({"not_null:ts": "warn"}),
            "validation",
            "['not_null:ts']: contract rules always block",
        ),
        (
            lambda r: r["validation"]["tiers"].update({"in_vocabulary:languge": "warn"}),
            "<top level>",
            "'in_vocabulary:languge': no context feature 'languge'",
        ),
        (
            lambda r: r["validation"]["tiers"].update({"in_range:channel": "warn"}),
            "<top level>",
            "in_range applies to number features, 'channel' is category",
        ),
        (
            lambda r: r["validation"]["tiers"].update({"rows_per_day:2026-01-01": "warn"}),
            "<top level>",
            "only context_non_null, drift, in_vocabulary, in_range, text_length, embedding_valid, embedding_norm "
            "take a feature",
        ),
        (
            lambda r: r["gate"].update(evidence={"min_positive_rewards": 0}),
            "gate.evidence.min_positive_rewards",
            "greater than or equal to 1",
        ),
        # every number finite and in a sensible range; a bad one never reaches the DAG file or a library
        (lambda r: r["approval"].update(timeout_hours=float("inf")), "approval.timeout_hours", "finite number"),
        (lambda r: r["approval"].update(timeout_hours=1e300), "approval.timeout_hours", "less than or equal to 720"),
        (lambda r: r["gate"]["floors"].update(min_roc_auc=float("nan")), "gate.floors.min_roc_auc", "finite"),
        (lambda r: r["context"]["sentiment"].update(max=float("inf")), "context.sentiment", "finite number"),
        (lambda r: r["training"].update(seed=2**70), "training.seed", "less than or equal to 4294967295"),
        (lambda r: r.update(schedule="61 * * * *"), "<top level>", "schedule '61 * * * *' is not a cron"),
        (
            lambda r: r["training"]["hyperparameters"].update(torch_mlp={"epochs": 10**9}),
            "training",
            "hyperparameters.torch_mlp.epochs: 1000000000 is not an integer from 1 to 1000",
        ),
        (
            lambda r: r["training"]["hyperparameters"].update(torch_mlp={"hidden": [64] * 20}),
            "training",
            "hyperparameters.torch_mlp.hidden: [64, 64",
        ),
        (
            lambda r: r["training"]["hyperparameters"].update(lightgbm={"machines": "10.0.0.1:12400"}),
            "training",
            "hyperparameters.lightgbm: 'machines' is not a parameter this project trains lightgbm with",
        ),
        (
            lambda r: r["training"]["lightgbm_search"].append({"tree_learner": "data"}),
            "training",
            "lightgbm_search.2: 'tree_learner' is not a parameter",
        ),
        (lambda r: r.update(access={"support-team": "admin"}), "access.support-team", "'read' or 'operate'"),
        (lambda r: r.update(access={"a/b": "read"}), "access.a/b", "should match pattern"),
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


def test_a_spec_may_lower_a_feature_rule_for_a_real_feature(support_bot):
    raw = yaml.safe_load(EXAMPLE)
    raw["validation"]["tiers"] = {"in_vocabulary:language": "warn", "drift:sentiment": "block", "bad_lines": "warn"}
    spec = parse_spec(yaml.safe_dump(raw), "agents/x.yaml")
    assert spec.validation.tiers["in_vocabulary:language"] == "warn"
    assert spec.gate.evidence.min_holdout_rows == 200  # sensible defaults when the spec says nothing


def test_one_broken_spec_leaves_the_others_loadable(tmp_path: Path, monkeypatch):
    from tests.conftest import write_specs_with_one_broken

    broken = write_specs_with_one_broken(tmp_path)
    monkeypatch.setenv("AGENT_SPECS_DIR", str(tmp_path))
    specs, errors = load_all_specs()
    assert [s.agent_id for s in specs] == ["alpha-bot", "beta-bot"]
    assert list(errors) == ["gamma-bot"]
    assert f"{broken}: field 'gate.floors.min_roc_auc'" in str(errors["gamma-bot"])


def test_a_spec_file_that_is_not_utf8_text_hides_only_its_own_agent(tmp_path: Path, monkeypatch):
    from tests.conftest import write_specs_with_one_broken

    write_specs_with_one_broken(tmp_path)
    (tmp_path / "latin-bot.yaml").write_bytes("agent_id: latin-bot\ndescription: caf\xe9\n".encode("latin-1"))
    monkeypatch.setenv("AGENT_SPECS_DIR", str(tmp_path))
    specs, errors = load_all_specs()
    assert [s.agent_id for s in specs] == ["alpha-bot", "beta-bot"]
    assert sorted(errors) == ["gamma-bot", "latin-bot"]
    assert "latin-bot.yaml: cannot be read as UTF-8 text" in str(errors["latin-bot"])


def test_the_old_reward_rate_key_is_refused_saying_what_replaced_it():
    def old_key(raw):
        raw["validation"]["max_reward_rate_change"] = 0.25
        del raw["validation"]["reward_rate"]

    with pytest.raises(SpecError, match=r"max_reward_rate_change is now reward_rate: \{max_change: .*scale: absolute"):
        parse_spec(_with(old_key), "agents/x.yaml")


def test_access_names_team_roles_as_fab_dag_permissions():
    spec = parse_spec(_with(lambda r: r.update(access={"support-team": "read", "ml-ops": "operate"})), "x.yaml")
    assert spec.access_control == {
        "support-team": {"DAGs": {"can_read"}, "DAG Runs": {"can_read"}},
        "ml-ops": {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_read", "can_create"}},
    }
    # no role named: None, so FAB keeps what was granted by hand instead of revoking it
    assert parse_spec(EXAMPLE, "x.yaml").access_control is None
