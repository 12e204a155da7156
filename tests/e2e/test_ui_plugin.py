"""The "Agent models" page, served by a real `airflow api-server` and read in a real browser (Debian's Chromium).

One agent has a night that deployed, a night the data gate refused because its
logs held `<script>` in a context value, a canary beside its champion, and a
spec description holding `<script>` too: the page must show all of it, as text.
A third agent has four weeks of history for its trend chart: producing them with
the real DAG (a month of `make loop`) takes far too long for a test, so its
validated days, nights and manifest are written through the project's storage
functions as the DAGs leave them (tests/include/test_trends.py). Screenshots are
kept in `.local/ui/`.
"""

import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import pytest
import requests
import yaml

from agent_retraining.dev.simulate import World, day_events, write_day
from agent_retraining.manifest import read_manifest
from agent_retraining.storage import put_bytes
from tests.conftest import REPO, load_dag_file, spec_variant
from tests.e2e.airflow_cluster import free_port
from tests.include.test_trends import HOSTILE_VERSION, month_of_history

AGENT = "ui-bot"
OTHER = "ui-other"  # a second agent, whose overview record is broken
TRENDS = "ui-trends"  # a third, with four weeks of history, readable by admin only
START = date(2026, 3, 1)
INJECTED = "<script>alert('logs')</script>"
DESCRIPTION = "<script>alert('spec')</script> support bot on the page"
SCREENSHOTS = REPO / ".local" / "ui"
# user -> FAB role. The teams' roles have no permission of their own: each agent's spec grants its DAGs to them.
USERS = {"admin": "Admin", "alice": "ui-bot-team", "bob": "ui-other-team"}
ACCESS = {AGENT: {"ui-bot-team": "operate"}, OTHER: {"ui-other-team": "read"}}


@pytest.fixture(scope="module")
def agent(support_bot, buckets, airflow_db, s3, tmp_path_factory):
    """A night deployed, the next refused by the data gate, then a canary started beside the champion."""
    from tests.include.test_client import _deploy_model

    specs = tmp_path_factory.mktemp("ui-specs")
    before = os.environ.get("AGENT_SPECS_DIR")
    os.environ["AGENT_SPECS_DIR"] = str(specs)
    training = {**support_bot.training.model_dump(), "window_days": 3, "lightgbm_search": []}
    spec = spec_variant(support_bot, agent_id=AGENT, description=DESCRIPTION, candidates=["logistic_regression"],
                        training=training, access=ACCESS[AGENT])  # fmt: skip
    (specs / f"{AGENT}.yaml").write_text(yaml.safe_dump(spec.model_dump(), sort_keys=False))
    other = spec_variant(spec, agent_id=OTHER, description="the other agent", access=ACCESS[OTHER])
    (specs / f"{OTHER}.yaml").write_text(yaml.safe_dump(other.model_dump(), sort_keys=False))
    put_bytes(s3, buckets.models, f"{OTHER}/manifest.json", b"{not json")  # one agent's record broken
    trends = spec_variant(spec, agent_id=TRENDS, description="an agent with four weeks of history", access={})
    (specs / f"{TRENDS}.yaml").write_text(yaml.safe_dump(trends.model_dump(), sort_keys=False))
    history = month_of_history(s3, buckets, trends, START - timedelta(days=1))
    world = World.for_spec(spec, 0)
    for n in range(4):
        events = day_events(world, START + timedelta(days=n), 800, 1)
        if n == 3:
            for event in events[::10]:
                event["context"]["language"] = INJECTED
        write_day(s3, buckets.logs, spec, START + timedelta(days=n), events)
    dag = load_dag_file("retrain_agents.py").build_retraining_dag(spec)
    runs = [dag.test(logical_date=datetime.combine(START + timedelta(days=n + 1), clock(), UTC)) for n in (2, 3)]
    assert [run.state for run in runs] == ["success", "failed"]
    champion = read_manifest(s3, buckets, AGENT)[0]["version"]
    canary = _deploy_model(s3, buckets, spec, "lightgbm", "2026-03-04", 11, canary_share=0.2)
    yield {"spec": spec, "champion": champion, "canary": canary, "runs": runs, "history": history}
    os.environ.pop("AGENT_SPECS_DIR") if before is None else os.environ.update(AGENT_SPECS_DIR=before)


FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


def _airflow(env: dict, *arguments: str) -> None:
    done = subprocess.run([str(Path(sys.executable).with_name("airflow")), *arguments], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, f"airflow {' '.join(arguments)}: {done.stdout[-2000:]}{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def api_server(agent, tmp_path_factory):
    """`airflow api-server` on the session's Airflow home with the production stack's auth manager (FAB): admin
    reads every DAG; alice's and bob's roles hold only what the two agents' specs grant them, synced the way the
    dag-processor syncs them when it parses the DAG files."""
    home = tmp_path_factory.mktemp("api-server")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__API_AUTH__JWT_SECRET": "ui-test-secret",
        "AIRFLOW__API__SECRET_KEY": "ui-test-session-secret",
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
    }
    _airflow(env, "fab-db", "migrate")
    _airflow(env, "roles", "create", *{role for role in USERS.values() if role != "Admin"})
    for user, role in USERS.items():
        _airflow(env, "users", "create", "--username", user, "--password", f"{user}-test-password", "--role", role,
                 "--email", f"{user}@example.org", "--firstname", user, "--lastname", "test")  # fmt: skip
    _airflow(env, "dags", "reserialize")  # parses dags/ as the dag-processor does, syncing each DAG's access_control
    log = (home / "api-server.log").open("wb")
    server = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "api-server", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert server.poll() is None, (home / "api-server.log").read_text()[-3000:]
        time.sleep(1)
    else:
        pytest.fail("the api-server did not answer in 180 s: " + (home / "api-server.log").read_text()[-3000:])
    tokens = {}
    for user in USERS:
        answer = requests.post(f"{base}/auth/token", json={"username": user, "password": f"{user}-test-password"},
                               timeout=60)  # fmt: skip
        assert answer.status_code == 201, answer.text
        tokens[user] = answer.json()["access_token"]
    yield {"base": base, "token": tokens["admin"], "tokens": tokens}
    server.terminate()
    server.wait(timeout=30)


def _report_key(agent, night: int = 1) -> str:
    """The report.html of the deployed night (0) or the refused one (1)."""
    from agent_retraining.contract import run_prefix

    return run_prefix(AGENT, START + timedelta(days=2 + night), agent["runs"][night].run_id) + "report.html"


def test_every_endpoint_refuses_a_request_without_a_valid_user(api_server, agent):
    base = api_server["base"]
    for path in ("/agent-models/", "/agent-models/api/agents", f"/agent-models/report?key={_report_key(agent)}"):
        assert requests.get(base + path, timeout=30).status_code == 401, path
        assert requests.get(base + path, cookies={"_token": "forged"}, timeout=30).status_code == 403, path
        authorised = requests.get(base + path, cookies={"_token": api_server["token"]}, timeout=60)
        assert authorised.status_code == 200, (path, authorised.text[:500])
    headers = {"Authorization": f"Bearer {api_server['token']}"}
    outside = requests.get(base + "/agent-models/report?key=ui-bot/manifest.json", headers=headers, timeout=30)
    assert outside.status_code == 404  # only run reports of known agents, not any object of the bucket


def test_the_json_tells_what_serves_and_why(api_server, agent):
    headers = {"Authorization": f"Bearer {api_server['token']}"}
    agents = requests.get(api_server["base"] + "/agent-models/api/agents", headers=headers, timeout=60).json()
    ui_bot = next(a for a in agents if a["agent_id"] == AGENT)
    assert ui_bot["live"]["version"] == agent["champion"]
    assert ui_bot["canary"]["version"] == agent["canary"]
    assert [r["outcome"] for r in ui_bot["runs"]] == ["data rejected", "deployed"]  # newest night first
    refused = ui_bot["runs"][0]
    assert refused["data_gate"]["passed"] is False
    assert INJECTED in refused["data_gate"]["failures"][0]
    assert [e["event"] for e in ui_bot["timeline"]][:2] == ["canary started", "night of 2026-03-04: data rejected"]
    assert [(n["day"], n["kind"]) for n in ui_bot["trends"]["nights"]] == [("2026-03-03", "deployed"),
                                                                         ("2026-03-04", "refused")]  # fmt: skip


def _get(api_server, user: str, path: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {api_server['tokens'][user]}"}
    return requests.get(api_server["base"] + path, headers=headers, timeout=60)


def test_each_user_sees_only_the_agents_whose_retraining_dag_they_may_read(api_server, agent):
    def agents(user: str, query: str = "") -> list[str]:
        answer = _get(api_server, user, "/agent-models/api/agents" + query)
        assert answer.status_code == 200, answer.text[:300]
        return [a["agent_id"] for a in answer.json()]

    assert agents("admin") == [AGENT, OTHER, TRENDS]
    assert agents("alice") == [AGENT]
    assert agents("bob") == [OTHER]
    for query in (f"?dag_id=retrain_{OTHER}", "?dag_id=~", f"?dag_id=retrain_{AGENT}&dag_id=retrain_{OTHER}"):
        assert agents("alice", query) == [AGENT], query  # no query parameter widens access
    assert f'id="{AGENT}"' not in _get(api_server, "bob", f"/agent-models/?dag_id=retrain_{AGENT}").text
    report = f"/agent-models/report?key={_report_key(agent)}"
    assert _get(api_server, "alice", report).status_code == 200
    assert _get(api_server, "bob", report).status_code == 404
    assert _get(api_server, "bob", report + f"&dag_id=retrain_{AGENT}").status_code == 404


def test_a_team_runs_only_the_dags_its_agents_spec_grants_it(api_server, agent):
    """Through Airflow's own REST API, with the same FAB roles: `operate` triggers its agent's retraining, `read`
    only sees; neither reaches the other agent's DAG."""

    def trigger(user: str, dag_id: str) -> int:
        headers = {"Authorization": f"Bearer {api_server['tokens'][user]}"}
        answer = requests.post(f"{api_server['base']}/api/v2/dags/{dag_id}/dagRuns", headers=headers,
                               json={"logical_date": None, "conf": {}}, timeout=60)  # fmt: skip
        return answer.status_code

    def dags(user: str) -> set[str]:
        answer = _get(api_server, user, "/api/v2/dags?limit=100&exclude_stale=false")
        assert answer.status_code == 200, answer.text[:300]
        return {d["dag_id"] for d in answer.json()["dags"]}

    assert dags("alice") == {f"retrain_{AGENT}", f"canary_{AGENT}"}
    assert dags("bob") == {f"retrain_{OTHER}", f"canary_{OTHER}"}
    assert trigger("alice", f"retrain_{AGENT}") == 200
    assert trigger("alice", f"retrain_{OTHER}") == 403
    assert trigger("bob", f"retrain_{OTHER}") == 403


def test_no_docs_or_schema_routes_and_a_policy_that_allows_no_script_and_no_foreign_frame(api_server, agent):
    for path in ("/agent-models/docs", "/agent-models/redoc", "/agent-models/openapi.json"):
        assert requests.get(api_server["base"] + path, timeout=30).status_code in (401, 404), path
        assert _get(api_server, "admin", path).status_code == 404, path
    policy = _get(api_server, "admin", "/agent-models/").headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "frame-ancestors 'self'", "form-action 'none'", "base-uri 'none'"):
        assert directive in policy


def test_one_agents_broken_record_is_an_error_in_its_own_section_only(api_server, agent):
    agents = {a["agent_id"]: a for a in _get(api_server, "admin", "/agent-models/api/agents").json()}
    assert agents[OTHER]["error"].startswith("its records could not be read (RecordError)")
    assert agents[AGENT]["live"]["version"] == agent["champion"]
    page = _get(api_server, "admin", "/agent-models/")
    assert page.status_code == 200
    assert "its records could not be read" in page.text.split(f'id="{OTHER}"')[1]
    missing = _get(api_server, "admin", f"/agent-models/report?key={AGENT}/runs/dt=2026-03-09/run=x-1/report.html")
    assert missing.status_code == 404
    assert os.environ["ARTIFACTS_BUCKET"] not in missing.text  # says what failed, not where it looked
    assert "NoSuchKey" not in missing.text


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


def test_the_page_in_a_real_browser(api_server, agent, browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = api_server["base"]
    browser.get(base + "/api/v2/monitor/health")  # the cookie's site first
    browser.add_cookie({"name": "_token", "value": api_server["token"], "path": "/"})
    browser.get(base + "/agent-models/")
    section = browser.find_element(By.ID, AGENT)
    text = section.text
    assert DESCRIPTION in text  # the spec's <script> is text on the page, not a script
    assert agent["champion"] in text
    assert agent["canary"] in text
    assert "data rejected" in text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (no injected script ran)
    for summary in section.find_elements(By.TAG_NAME, "summary"):  # open every rule list and data gate verdict
        summary.click()
    assert INJECTED in section.text  # the logged value, quoted by the refusal, as text
    assert len(section.find_elements(By.CSS_SELECTOR, "svg.trend rect.night")) == 2
    browser.save_screenshot(str(SCREENSHOTS / "agent-models.png"))

    history = agent["history"]
    chart = browser.find_element(By.ID, TRENDS).find_element(By.CSS_SELECTOR, "svg.trend")
    assert len(chart.find_elements(By.CSS_SELECTOR, "g.marker")) == history["markers"]
    assert len(chart.find_elements(By.CSS_SELECTOR, "g.judged")) == history["judged"]
    assert len(chart.find_elements(By.CSS_SELECTOR, "circle.point")) == history["points"]
    assert len(chart.find_elements(By.CSS_SELECTOR, "a > rect.night")) == history["nights"]  # each linked to its run
    assert HOSTILE_VERSION in chart.text  # a logged version, in the legend as text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    chart.screenshot(str(SCREENSHOTS / "agent-models-trends.png"))

    browser.get(base + "/agent-models/report?key=" + _report_key(agent, 1))
    assert browser.find_element(By.TAG_NAME, "h1").text == f"{AGENT}: the run of {START + timedelta(days=3)}"
    assert "data rejected" in browser.find_element(By.CLASS_NAME, "verdict").text
    browser.save_screenshot(str(SCREENSHOTS / "report-refused.png"))
    browser.get(base + "/agent-models/report?key=" + _report_key(agent, 0))
    verdict = browser.find_element(By.CLASS_NAME, "verdict").text
    assert verdict.startswith(f"{AGENT} {START + timedelta(days=2)}: deployed")
    assert len(browser.find_elements(By.TAG_NAME, "svg")) == 5  # policy values, calibration, slices, drift, trend
    report_trend = browser.find_element(By.CSS_SELECTOR, "svg.trend")
    assert [n.get_attribute("class") for n in report_trend.find_elements(By.CSS_SELECTOR, "rect.night")] == [
        "night deployed"
    ]  # the trend up to the report's own night, which it stands for
    browser.save_screenshot(str(SCREENSHOTS / "report.png"))

    browser.get(base + "/plugin/agent-models")  # inside Airflow's UI, under its nav entry
    frame = WebDriverWait(browser, 60).until(expected_conditions.presence_of_element_located((By.TAG_NAME, "iframe")))
    assert frame.get_attribute("src").endswith("/agent-models/")
    browser.switch_to.frame(frame)
    WebDriverWait(browser, 60).until(expected_conditions.presence_of_element_located((By.ID, AGENT)))
    browser.switch_to.default_content()
    browser.save_screenshot(str(SCREENSHOTS / "agent-models-in-airflow.png"))
