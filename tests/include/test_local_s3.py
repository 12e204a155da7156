"""The embedded default's settings file: fresh keys, readable by its owner only, never overwritten."""

import stat

from agent_retraining.dev.local_s3 import ENV_TEMPLATE, ensure_env_file, read_env_file


def test_local_env_is_created_with_fresh_keys_readable_by_its_owner_only(tmp_path):
    path = ensure_env_file(tmp_path / "local.env", ENV_TEMPLATE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = read_env_file(path)
    assert values["AWS_ACCESS_KEY_ID"] != values["AWS_SECRET_ACCESS_KEY"]
    assert "__GENERATED__" not in path.read_text()
    other = ensure_env_file(tmp_path / "other.env", ENV_TEMPLATE)
    assert read_env_file(other)["AWS_SECRET_ACCESS_KEY"] != values["AWS_SECRET_ACCESS_KEY"]
    path.write_text("kept")
    assert ensure_env_file(path, ENV_TEMPLATE).read_text() == "kept"  # never overwritten
