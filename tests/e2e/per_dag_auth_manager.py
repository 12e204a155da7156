"""An auth manager that grants per-DAG access, for the UI test: Airflow's SimpleAuthManager, where each user named
in `PER_DAG_ACCESS` (JSON: user -> DAG ids) may read those DAGs and nothing else, as FAB's per-DAG permissions
would. Users not named keep their role's access."""

from __future__ import annotations

import json
import os

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


class PerDagAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        allowed = json.loads(os.environ.get("PER_DAG_ACCESS", "{}")).get(user.get_name())
        if allowed is None:
            return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
        return method == "GET" and details is not None and details.id in allowed
